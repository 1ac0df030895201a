"""Collegium router package."""
