"""The facelib version, in a leaf module that any layer may import (``pyproject.toml`` has the same)."""

__version__ = "0.1.0"
