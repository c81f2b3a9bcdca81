"""thinkspace: teach vision-language models to reason in 3D."""

__version__ = "0.1.0"
