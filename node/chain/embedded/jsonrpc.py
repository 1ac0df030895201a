"""The embedded chain's answers in standard JSON-RPC, for outside clients (``/rpc``).

The provider speaks eth-tester's dialect (snake_case keys, int quantities);
:func:`answer_json_rpc` decodes hex params and encodes results as a real node would
(camelCase keys, 0x quantities), and turns every failure into a JSON-RPC error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from eth_utils import to_bytes
from web3.providers.eth_tester.middleware import request_formatters, result_formatters
from web3.types import RPCEndpoint, RPCResponse

from node.chain.constants import JSONRPC_SERVER_ERROR
from node.chain.embedded.evm import CollegiumDevChain
from node.chain.embedded.interrupt import CallTimeout
from node.errors import ChainError

JSONRPC_EXECUTION_REVERTED: Final = 3
JSONRPC_METHOD_NOT_FOUND: Final = -32601
JSONRPC_INVALID_PARAMS: Final = -32602
JSONRPC_LIMIT_EXCEEDED: Final = -32005  # EIP-1474 "limit exceeded"
CALL_SLOT_WAIT: Final = 0.5
"""Seconds an outside eth_call waits for the one running before it (short ones take ms)."""
LOGS_BLOOM_BYTES: Final = 256

TimedRequest = Callable[[RPCEndpoint, Any, float | None], RPCResponse]
"""A provider's ``make_timed_request``: method, params, time cap in seconds (None: none)."""


def compute_json_rpc_value(value: Any) -> Any:
    """Return ``value`` as standard JSON-RPC: ints as 0x quantities, bytes as 0x data,
    remaining snake_case keys in camelCase; bools, strings, floats and None unchanged."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        out = {_camel(str(k)): compute_json_rpc_value(v) for k, v in value.items()}
        bloom = value.get("logsBloom", value.get("logs_bloom"))
        if isinstance(bloom, int) and not isinstance(bloom, bool):
            out["logsBloom"] = "0x" + bloom.to_bytes(LOGS_BLOOM_BYTES, "big").hex()
        return out
    if isinstance(value, list | tuple):
        return [compute_json_rpc_value(item) for item in value]
    return value


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def compute_foreign_transaction_refusal(
    params: Any, chain: CollegiumDevChain, chain_id: int
) -> dict[str, Any] | None:
    """Return the JSON-RPC error for a raw transaction (``params[0]``) not signed for
    ``chain_id``, or None.

    py-evm mines a transaction signed for any chain id, and a legacy one signed without
    any (pre-EIP-155): both could be replayed here from another chain.
    """
    try:
        raw = to_bytes(hexstr=str(params[0]))
        signed_id = chain.get_vm().get_transaction_builder().decode(raw).chain_id
    except Exception as exc:  # noqa: BLE001 -- anything undecodable is refused
        return {"code": JSONRPC_INVALID_PARAMS, "message": f"not a signed transaction: {exc}"}
    if signed_id == chain_id:
        return None
    signed_for = "no chain id (pre-EIP-155)" if signed_id is None else f"chain id {signed_id}"
    message = (
        f"transaction signed for {signed_for}; this chain accepts only chain id "
        f"{chain_id} (EIP-155)"
    )
    return {"code": JSONRPC_INVALID_PARAMS, "message": message}


def answer_json_rpc(
    request: TimedRequest,
    dev_address: str,
    method: str,
    params: Any,
    request_id: Any,
    time_cap: float | None,
) -> dict[str, Any]:
    """Return the standard JSON-RPC 2.0 response object for one request run by ``request``
    (the provider's ``make_timed_request``), stopped after ``time_cap`` seconds (None: no cap).

    ``eth_call`` and ``eth_estimateGas`` are sent from ``dev_address`` unless they name a
    sender. Failures become JSON-RPC errors (code 3 for a revert, -32601 for an unknown
    method, -32005 for a call past ``time_cap``, -32000 otherwise); raise ChainError only if
    the chain is closed.
    """
    envelope: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
    try:
        args = list(params) if isinstance(params, list | tuple) else []
        if method in ("eth_call", "eth_estimateGas") and args and isinstance(args[0], dict):
            # eth-tester needs a sender that can pay for the call's gas: the dev key.
            args[0] = {"from": dev_address, **args[0]}
            if len(args) > 1 and args[1] == "pending":
                # every transaction is mined at once: "pending" state equals "latest",
                # and eth-tester has no pending estimate (it answers -32601)
                args[1] = "latest"
        request_formatter = request_formatters.get(RPCEndpoint(method))
        if request_formatter is not None:
            args = list(request_formatter(args))
        response = request(RPCEndpoint(method), args, time_cap)
        if "error" in response:
            error = dict(response["error"])
            if str(error.get("message", "")).startswith("Unknown RPC Endpoint"):
                error["code"] = JSONRPC_METHOD_NOT_FOUND
            envelope["error"] = error
            return envelope
        result = response.get("result")
        result_formatter = (result_formatters or {}).get(RPCEndpoint(method))
        if result_formatter is not None:
            result = result_formatter(result)
        result = compute_json_rpc_value(result)
        if method == "eth_getTransactionReceipt" and isinstance(result, dict):
            result.pop("stateRoot", None)  # eth-tester's placeholder; post-Byzantium: none
        envelope["result"] = result
    except ChainError:
        raise
    except CallTimeout:
        message = f"{method} stopped after {time_cap:g}s, this node's limit (rpc_call_timeout)"
        envelope["error"] = {"code": JSONRPC_LIMIT_EXCEEDED, "message": message}
    except Exception as exc:  # noqa: BLE001 -- every failure becomes a JSON-RPC error
        message = str(exc) or type(exc).__name__
        code = (
            JSONRPC_EXECUTION_REVERTED
            if message.startswith("execution reverted")
            else JSONRPC_SERVER_ERROR
        )
        envelope["error"] = {"code": code, "message": message}
    return envelope
