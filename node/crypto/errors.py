"""Errors of subsystem encryption; all derive from :class:`node.errors.CollegiumError`."""

from __future__ import annotations

from node.errors import CollegiumError


class CryptoError(CollegiumError):
    """Encryption, decryption or key handling failed."""


class DecryptionFailed(CryptoError):
    """A ciphertext did not authenticate: wrong key, wrong associated data, or tampered bytes."""


class NotARecipient(CryptoError):
    """A key envelope holds no wrapped key for this address (not a participant at that version)."""


class InvalidSignature(CryptoError):
    """A signature is malformed or was not made by the expected address."""


class MalformedObject(CryptoError):
    """A key envelope or sealed object does not follow the documented format."""
