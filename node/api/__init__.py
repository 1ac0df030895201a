"""Collegium api package."""
