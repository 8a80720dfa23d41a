"""Tiny demo module for the pypi-lite sample package directory."""

__version__ = "@VERSION@"


def greet(name="world"):
    """Return a greeting that mentions the installed version."""
    return "Hello, {}! (pypi-lite-demo {})".format(name, __version__)
