"""keccak256, the one hash function of the node (Ethereum's pre-standard SHA-3).

The fast path is safe-pysha3's C ``keccak_256`` (~10x faster than eth-hash's pycryptodome
backend for short inputs; the ingest and assignment benchmarks rely on it); without it,
``eth_utils.keccak`` gives the same digests. :func:`compute_eip55_address` spells an address
in its EIP-55 checksum form from one keccak256 (what ``eth_utils.to_checksum_address`` does
with a Python loop over its 40 digits, at ~15x the cost).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, NewType

from eth_utils import keccak as _eth_keccak

Hash32 = NewType("Hash32", bytes)
"""A 32-byte digest (keccak256 output, Merkle node, subsystem id)."""

try:  # safe-pysha3 is optional: it is a speed-up, never a different answer
    import sha3 as _sha3

    def keccak256(data: bytes) -> bytes:
        """Return keccak256 of ``data``."""
        return _sha3.keccak_256(data).digest()  # type: ignore[no-any-return]

except ImportError:  # pragma: no cover - depends on the environment
    keccak256: Callable[[bytes], bytes] = _eth_keccak  # type: ignore[no-redef]


def as_hex(value: object) -> str:
    """Return a hash, topic or address (bytes, or hex text in any case) as lowercase ``0x``
    hex: the one spelling the node compares them in."""
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()  # type: ignore[call-overload]


ADDRESS_LEN: Final = 20
# per lowercase hex digit: 0x20 where EIP-55 may capitalise it (a-f), else 0
_LETTER_CASE_BIT: Final = bytes.maketrans(b"0123456789abcdef", b"\0" * 10 + b"\x20" * 6)
# per hex digit of the address hash: 0x20 where it is 8 or more (capitalise), else 0
_HASH_CASE_BIT: Final = bytes.maketrans(b"0123456789abcdef", b"\0" * 8 + b"\x20" * 8)


def compute_eip55_address(address: bytes) -> str:
    """Return the EIP-55 checksum spelling (``0x`` + 40 digits) of a 20-byte address.

    A letter digit is capitalised where the same digit of keccak256(lowercase hex) is 8 or
    more. Computed on all 40 digits at once: the case bit (0x20) of each ASCII digit is
    cleared where both the digit is a letter and the hash digit is high.
    """
    if len(address) != ADDRESS_LEN:
        raise ValueError(f"an address is {ADDRESS_LEN} bytes, got {len(address)}")
    lower = address.hex().encode("ascii")
    high = keccak256(lower).hex()[: 2 * ADDRESS_LEN].encode("ascii").translate(_HASH_CASE_BIT)
    letters = lower.translate(_LETTER_CASE_BIT)
    flips = int.from_bytes(high, "big") & int.from_bytes(letters, "big")
    spelled = (int.from_bytes(lower, "big") ^ flips).to_bytes(2 * ADDRESS_LEN, "big")
    return "0x" + spelled.decode("ascii")
