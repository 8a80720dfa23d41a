"""Sample module shipped by the ``Fancy.Mixed_Name`` distribution."""

import re

__version__ = "0.3.1"


def normalize(name):
    """Normalize a project name as described in PEP 503."""
    return re.sub(r"[-_.]+", "-", name).lower()
