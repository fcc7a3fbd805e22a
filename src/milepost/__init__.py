"""Milepost: escrow-backed milestone payments."""

__version__ = "0.1.0"
