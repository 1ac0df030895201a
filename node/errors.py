"""The one error root of Collegium, like web3.py's ``Web3Exception``.

Every error Collegium raises on purpose derives from :class:`CollegiumError`; each
package adds its own subclasses next to its code and they carry expected vs. actual
values where that helps (``RootMismatchError`` style).
"""

from __future__ import annotations


class CollegiumError(Exception):
    """Base class of every error raised on purpose by Collegium."""


class ConfigError(CollegiumError):
    """The node's configuration or data directory is missing or invalid."""


class ChainError(CollegiumError):
    """A chain call or transaction failed."""


class StoreError(CollegiumError):
    """The content store could not complete an operation."""


class NotFoundInStore(StoreError):
    """A CID is not present in the content store."""


class InvalidCID(StoreError):
    """A string is not a valid CID."""


class AssignmentError(CollegiumError):
    """The assignment constraints cannot be met (e.g. too little capacity)."""


class ValidationError(CollegiumError):
    """A request (e.g. a business transaction) is malformed or not acceptable."""
