"""``POST /rpc``: the node's chain as Ethereum JSON-RPC, so auditors and wallets can read it.

With the embedded chain this is the only way to reach it from outside the process.
Only read methods and ``eth_sendRawTransaction`` (already signed by the sender) pass.

What a stranger can make the chain do is bounded (settings ``rpc_*``): calls per second per
client in a bucket of their own (each call of a batch counts; 429 beyond it), calls per batch,
gas of an ``eth_call`` (a larger or missing ``gas`` is lowered to the cap, as geth's
``RPCGasCap`` does) and of an ``eth_estimateGas`` answer, and on the embedded chain the
seconds one such call may hold the chain (it is stopped then: py-evm is interrupted) and a
raw transaction's chain id (EIP-155; see ``EmbeddedChain.json_rpc``).
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from node.api.deps import NodeDep
from node.api.problems import problem
from node.api.ratelimit import TokenBuckets

router = APIRouter(tags=["chain"])

ALLOWED_METHODS = frozenset(
    {
        "eth_chainId",
        "net_version",
        "web3_clientVersion",
        "eth_blockNumber",
        "eth_getBalance",
        "eth_getCode",
        "eth_getStorageAt",
        "eth_getTransactionCount",
        "eth_getBlockByNumber",
        "eth_getBlockByHash",
        "eth_getTransactionByHash",
        "eth_getTransactionReceipt",
        "eth_call",
        "eth_estimateGas",
        "eth_gasPrice",
        "eth_maxPriorityFeePerGas",
        "eth_feeHistory",
        "eth_getLogs",
        "eth_sendRawTransaction",
    }
)
GAS_CAPPED_METHODS = frozenset({"eth_call", "eth_estimateGas"})
JSONRPC_INVALID_REQUEST = -32600
JSONRPC_METHOD_NOT_FOUND = -32601
JSONRPC_LIMIT_EXCEEDED = -32005


def _error(req_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "error": {"code": code, "message": message}}


def _cap_gas(params: Any, cap: int) -> bool:
    """Lower the ``gas`` of a call object in ``params[0]`` to ``cap`` (set it if missing);
    return whether it was lowered or set. A malformed ``gas`` is left to the chain."""
    if not isinstance(params, list) or not params or not isinstance(params[0], dict):
        return False
    gas = params[0].get("gas")
    try:
        asked = None if gas is None else int(gas, 16) if isinstance(gas, str) else int(gas)
    except (TypeError, ValueError):
        return False
    if asked is not None and asked <= cap:
        return False
    params[0] = {**params[0], "gas": hex(cap)}
    return True


def _one(node: Any, call: Any) -> dict[str, Any]:
    if not isinstance(call, dict) or not isinstance(call.get("method"), str):
        return _error(None, JSONRPC_INVALID_REQUEST, "not a JSON-RPC request object")
    req_id = call.get("id")
    method = call["method"]
    if method not in ALLOWED_METHODS:
        return _error(req_id, JSONRPC_METHOD_NOT_FOUND, f"method {method} is not served here")
    params = call.get("params", [])
    if method not in GAS_CAPPED_METHODS:
        return dict(node.chain.json_rpc(method, params, req_id))
    settings = node.settings
    cap = int(settings.rpc_gas_cap)
    capped = method == "eth_call" and _cap_gas(params, cap)
    answer = dict(
        node.chain.json_rpc(method, params, req_id, call_time_cap=settings.rpc_call_timeout)
    )
    error = answer.get("error")
    if capped and isinstance(error, dict) and "gas" in str(error.get("message", "")).lower():
        error["message"] = f"{error['message']} (gas capped at {cap} by this node: rpc_gas_cap)"
    result = answer.get("result")
    if method == "eth_estimateGas" and isinstance(result, str) and int(result, 16) > cap:
        message = f"the call needs {int(result, 16)} gas, more than this node's rpc_gas_cap {cap}"
        return _error(req_id, JSONRPC_LIMIT_EXCEEDED, message)
    return answer


def _rpc_buckets(request: Request, settings: Any) -> TokenBuckets | None:
    """Return the app's /rpc token buckets (made on first use), or None if disabled."""
    rate = float(settings.rpc_rate_limit)
    if rate <= 0:
        return None
    buckets: TokenBuckets | None = getattr(request.app.state, "rpc_buckets", None)
    if buckets is None:
        buckets = request.app.state.rpc_buckets = TokenBuckets(rate, int(settings.rpc_rate_burst))
    return buckets


def _over_rate(request: Request, settings: Any, calls: int) -> JSONResponse | None:
    """Take ``calls`` tokens of the client's /rpc bucket; return a 429 problem if it ran dry."""
    buckets = _rpc_buckets(request, settings)
    if buckets is None:
        return None
    key = request.client.host if request.client else "unknown"
    for _ in range(calls):
        wait = buckets.take(key)
        if wait > 0:
            detail = (
                f"/rpc rate limit of {buckets.rate:g} calls/s (burst {buckets.burst}) exceeded; "
                f"retry in {wait:.2f}s (rpc_rate_limit)"
            )
            response = problem(429, "too many requests", detail, "rpc-rate-limited")
            response.headers["retry-after"] = str(max(1, math.ceil(wait)))
            return response
    return None


@router.post("/rpc", summary="Ethereum JSON-RPC of the node's chain (read + raw transactions)")
async def rpc(request: Request, node: NodeDep) -> JSONResponse:
    """Forward a JSON-RPC request (or batch) to the node's chain."""
    try:
        payload = await request.json()
    except ValueError:
        return JSONResponse(_error(None, -32700, "parse error"), status_code=400)
    settings = node.settings
    if isinstance(payload, list):
        limit = int(settings.rpc_max_batch)
        if not payload or len(payload) > limit:
            message = f"a batch holds 1 to {limit} calls (rpc_max_batch), not {len(payload)}"
            return JSONResponse(_error(None, JSONRPC_INVALID_REQUEST, message), status_code=400)
        refused = _over_rate(request, settings, len(payload))
        if refused is not None:
            return refused
        return JSONResponse([await run_in_threadpool(_one, node, c) for c in payload])
    refused = _over_rate(request, settings, 1)
    if refused is not None:
        return refused
    return JSONResponse(await run_in_threadpool(_one, node, payload))
