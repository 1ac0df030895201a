"""Replication services: a subsystem's log of sealed objects, replicated as ciphertext and
indexed by any host (``replica.py``)."""
