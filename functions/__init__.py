"""Braindumpster backend: voice notes in, tasks out."""

__version__ = "0.1.0"
