"""Koda: a personal AI coding agent for the terminal."""

from koda._version import __version__

__all__ = ["__version__"]
