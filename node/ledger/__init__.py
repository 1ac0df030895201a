"""Collegium ledger package."""
