"""Collegium db package."""
