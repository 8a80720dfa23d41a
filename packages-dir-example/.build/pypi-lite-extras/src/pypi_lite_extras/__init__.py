"""Sample module that uses its dependency, pypi-lite-demo."""

import pypi_lite_demo

__version__ = "0.1.0"


def shout(name="world"):
    """Return pypi_lite_demo's greeting in upper case."""
    return pypi_lite_demo.greet(name).upper()
