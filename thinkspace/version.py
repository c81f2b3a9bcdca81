"""The package version, in a module of its own so any module can name it without importing the root."""

__version__ = "0.1.0"  # the same as pyproject.toml's `version`
