"""Rhenus: a sovereign node for European public administrations."""

__version__ = "0.1.0"
