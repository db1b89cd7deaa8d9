"""The package version (a leaf module: importable from any layer)."""

__version__ = "0.1.0"
