"""Collegium api routes package."""
