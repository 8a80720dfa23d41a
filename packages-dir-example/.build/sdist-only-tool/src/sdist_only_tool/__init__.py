"""Sample module shipped only as an sdist."""

import sys

__version__ = "0.9"


def describe(args):
    """Describe a list of command line arguments."""
    return "{} argument(s): {}".format(len(args), " ".join(args))


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    print(describe(args))
    return 0
