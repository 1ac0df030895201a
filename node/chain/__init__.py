"""Collegium chain package."""
