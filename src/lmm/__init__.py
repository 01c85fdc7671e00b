"""lmm: a local memory layer for coding agents."""

__version__ = "0.1.0"
