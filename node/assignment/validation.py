"""Validation of user input: every check raises ``InvalidTopologyError`` naming the field."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from eth_utils import is_checksum_address

from node.assignment.constants import ADDRESS_LENGTH, ROLES, SEED_LENGTH
from node.assignment.errors import InvalidTopologyError

_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX_SEED = re.compile(r"0x[0-9a-fA-F]{64}")


def parse_address(value: object, path: str) -> str:
    """Return ``value`` as a lowercase ``0x`` address; mixed case must pass EIP-55."""
    if not isinstance(value, str) or _HEX_ADDRESS.fullmatch(value) is None:
        raise InvalidTopologyError(
            path, f"expected a 0x-prefixed 20-byte hex address, got {value!r}"
        )
    body = value[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(value):
        raise InvalidTopologyError(path, f"mixed-case address {value!r} fails its EIP-55 checksum")
    assert len(bytes.fromhex(body)) == ADDRESS_LENGTH
    return "0x" + body.lower()


def parse_seed(value: object, path: str) -> bytes:
    """Return the 32-byte seed given as ``0x`` and 64 hex digits."""
    if isinstance(value, bytes | bytearray) and len(value) == SEED_LENGTH:
        return bytes(value)
    if not isinstance(value, str) or _HEX_SEED.fullmatch(value) is None:
        raise InvalidTopologyError(path, f"expected 0x and 64 hex digits (32 bytes), got {value!r}")
    return bytes.fromhex(value[2:])


def parse_uint(value: object, path: str, minimum: int, maximum: int) -> int:
    """Return ``value`` if it is an integer (not a bool) in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTopologyError(path, f"expected an integer, got {value!r}")
    if not minimum <= value <= maximum:
        raise InvalidTopologyError(path, f"expected {minimum} <= value <= {maximum}, got {value}")
    return value


def parse_subsystem_name(value: object, path: str) -> str:
    """Return ``value`` if it is a non-empty string that encodes to UTF-8."""
    if not isinstance(value, str) or value == "":
        raise InvalidTopologyError(path, f"expected a non-empty subsystem name, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidTopologyError(path, f"subsystem name is not valid Unicode: {value!r}") from exc
    return value


def parse_role(value: object, path: str) -> str:
    """Return ``value`` if it is one of the four role ids."""
    if not isinstance(value, str) or value not in ROLES:
        raise InvalidTopologyError(path, f"unknown role {value!r}; expected one of {list(ROLES)}")
    return value


def parse_string_list(value: object, path: str) -> list[object]:
    """Return ``value`` as a list, rejecting a bare string (which is iterable too)."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidTopologyError(path, f"expected a list, got {value!r}")
    return list(value)
