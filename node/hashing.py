"""keccak256, the one hash function of the node (Ethereum's pre-standard SHA-3).

The fast path is safe-pysha3's C ``keccak_256`` (~10x faster than eth-hash's pycryptodome
backend for short inputs; the ingest and assignment benchmarks rely on it); without it,
``eth_utils.keccak`` gives the same digests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NewType

from eth_utils import keccak as _eth_keccak

Hash32 = NewType("Hash32", bytes)
"""A 32-byte digest (keccak256 output, Merkle node, subsystem id)."""

try:  # safe-pysha3 is optional: it is a speed-up, never a different answer
    import sha3 as _sha3

    def keccak256(data: bytes) -> bytes:
        """Return keccak256 of ``data``."""
        return bytes(_sha3.keccak_256(data).digest())

except ImportError:  # pragma: no cover - depends on the environment
    keccak256: Callable[[bytes], bytes] = _eth_keccak  # type: ignore[no-redef]


def as_hex(value: object) -> str:
    """Return a hash, topic or address (bytes, or hex text in any case) as lowercase ``0x``
    hex: the one spelling the node compares them in."""
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()  # type: ignore[call-overload]
