"""Collegium assignment package."""
