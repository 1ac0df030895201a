"""Collegium cli package."""
