"""Collegium storage package."""
