"""The exit codes of every ``collegium`` command, in one table (like ``httpie/status.py``)."""

from __future__ import annotations

from enum import IntEnum, unique


@unique
class ExitStatus(IntEnum):
    """Program exit status code constants."""

    SUCCESS = 0
    ERROR = 1
    INVALID_INPUT = 2  # unreadable, malformed or impossible input (also usage errors)
    MISMATCH = 3  # an audit found a difference (verify, verify-tx, reindex)
    UNREACHABLE = 4  # a node, chain RPC or gateway did not answer
    NOT_ADMIN = 5  # the wallet lacks the admin right the command needs
    NOT_FOUND = 6  # the CID or path is not in the store
