"""Reverts decoded: the custom error, ``require`` string or panic that a contract's revert
data means under its ABI (:class:`ContractRevert`), e.g. ``registry rejected the call:
NotRegisteredNode(0xAbC…)``, from the raw data or from the web3 / eth-tester exception that
carries it.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import keccak, to_checksum_address
from eth_utils.abi import collapse_if_tuple
from hexbytes import HexBytes
from web3.exceptions import ContractLogicError

from node.errors import ChainError

ERROR_STRING_SELECTOR = keccak(text="Error(string)")[:4]
PANIC_SELECTOR = keccak(text="Panic(uint256)")[:4]


class ContractRevert(ChainError):
    """A contract rejected a call or transaction; ``error_name``/``error_args`` say why.

    ``error_name`` is the custom error decoded from the ABI (``"NotRegisteredNode"``),
    ``"Error"`` for ``require`` strings, ``"Panic"`` for Solidity panics, or ``None`` when the
    revert carried no data that the ABI explains.
    """

    def __init__(
        self,
        contract: str,
        error_name: str | None,
        error_args: tuple[Any, ...] = (),
        data: bytes = b"",
        detail: str = "",
    ) -> None:
        self.contract = contract
        self.error_name = error_name
        self.error_args = error_args
        self.data = data
        if error_name is None:
            reason = detail or (f"reverted with data 0x{data.hex()}" if data else "reverted")
        else:
            reason = f"{error_name}({', '.join(_format_value(v) for v in error_args)})"
        super().__init__(f"{contract.lower()} rejected the call: {reason}")


def compute_error_selectors(abi: Sequence[Mapping[str, Any]]) -> dict[bytes, Mapping[str, Any]]:
    """Return the ABI's custom errors keyed by their 4-byte selector."""
    selectors: dict[bytes, Mapping[str, Any]] = {}
    for item in abi:
        if item.get("type") != "error":
            continue
        types = [collapse_if_tuple(dict(i)) for i in item.get("inputs", [])]
        selectors[keccak(text=f"{item['name']}({','.join(types)})")[:4]] = item
    return selectors


def decode_revert(
    contract: str,
    abi: Sequence[Mapping[str, Any]],
    data: bytes,
    detail: str = "",
    error_type: type[ContractRevert] = ContractRevert,
) -> ContractRevert:
    """Return the ``error_type`` error that revert ``data`` means under ``abi``."""
    selector, payload = data[:4], data[4:]
    try:
        if selector == ERROR_STRING_SELECTOR:
            return error_type(contract, "Error", tuple(abi_decode(["string"], payload)), data)
        if selector == PANIC_SELECTOR:
            (code,) = abi_decode(["uint256"], payload)
            return error_type(contract, "Panic", (hex(code),), data)
        item = compute_error_selectors(abi).get(selector)
        if item is not None:
            types = [collapse_if_tuple(dict(i)) for i in item.get("inputs", [])]
            values = tuple(abi_decode(types, payload))
            values = tuple(
                to_checksum_address(v) if t == "address" else v
                for t, v in zip(types, values, strict=True)
            )
            return error_type(contract, str(item["name"]), values, data)
    except (DecodingError, OverflowError, ValueError):
        pass
    return error_type(contract, None, (), data, detail)


def revert_from_exception(
    contract: str,
    abi: Sequence[Mapping[str, Any]],
    exc: BaseException,
    error_type: type[ContractRevert] = ContractRevert,
) -> ContractRevert | None:
    """Return the ``error_type`` error that ``exc`` reports, or None if it is not a revert."""
    data = extract_revert_data(exc)
    if data:
        return decode_revert(contract, abi, data, str(exc), error_type)
    if _is_revert(exc):
        return error_type(contract, None, (), b"", str(exc))
    return None


def extract_revert_data(exc: BaseException) -> bytes | None:
    """Return the raw revert data carried by a web3 or eth-tester exception, if any.

    web3's JSON-RPC path puts it in ``ContractLogicError.data`` (hex); eth-tester's provider
    raises ``TransactionFailed("execution reverted: b'...'")`` with the bytes' repr.
    """
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return bytes(HexBytes(data))
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    message = str(exc.args[0]) if exc.args else ""
    marker = "execution reverted: "
    if marker in message:
        tail = message.split(marker, 1)[1].strip()
        if tail.startswith(("b'", 'b"')):
            try:
                value = ast.literal_eval(tail)
            except (ValueError, SyntaxError):
                return None
            if isinstance(value, bytes):
                return value
    return None


def _is_revert(exc: BaseException) -> bool:
    if isinstance(exc, ContractLogicError):
        return True
    # eth-tester's TransactionFailed (embedded chain), matched without importing eth-tester
    # (and py-evm) into nodes that talk to an RPC chain
    kind = type(exc)
    return kind.__name__ == "TransactionFailed" and kind.__module__ == "eth_tester.exceptions"


def _format_value(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, str) and not value.startswith("0x"):
        return json.dumps(value)
    return str(value)
