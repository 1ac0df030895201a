"""Collegium: a blockchain-anchored open business ledger node."""

__version__ = "0.1.0"
