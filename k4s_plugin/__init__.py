"""k4s: Kubernetes + u-root utilities, as a Pants 2.17 plugin (see register.py)."""

# The plugin's version: the one place it is written (pyproject.toml reads it).
__version__ = "0.5.0"
