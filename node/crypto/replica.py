"""Kept only for ``node/storage/sync.py``, which imports :func:`compute_references` from here
and is being changed in parallel (issue 17 item 1); new code imports ``node.crypto.sealed``.
A subsystem's log itself is ``node.replication.replica``."""

from __future__ import annotations

from node.crypto.sealed import compute_references

__all__ = ["compute_references"]
