"""``POST /rpc``: the node's chain as Ethereum JSON-RPC, so auditors and wallets can read it.

With the embedded chain this is the only way to reach it from outside the process.
Only read methods and ``eth_sendRawTransaction`` (already signed by the sender) pass.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from node.api.deps import NodeDep

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
JSONRPC_INVALID_REQUEST = -32600
JSONRPC_METHOD_NOT_FOUND = -32601


def _error(req_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "error": {"code": code, "message": message}}


def _one(node: Any, call: Any) -> dict[str, Any]:
    if not isinstance(call, dict) or not isinstance(call.get("method"), str):
        return _error(None, JSONRPC_INVALID_REQUEST, "not a JSON-RPC request object")
    req_id = call.get("id")
    method = call["method"]
    if method not in ALLOWED_METHODS:
        return _error(req_id, JSONRPC_METHOD_NOT_FOUND, f"method {method} is not served here")
    return dict(node.chain.json_rpc(method, call.get("params", []), req_id))


@router.post("/rpc", summary="Ethereum JSON-RPC of the node's chain (read + raw transactions)")
async def rpc(request: Request, node: NodeDep) -> JSONResponse:
    """Forward a JSON-RPC request (or batch) to the node's chain."""
    from starlette.concurrency import run_in_threadpool

    try:
        payload = await request.json()
    except ValueError:
        return JSONResponse(_error(None, -32700, "parse error"), status_code=400)
    if isinstance(payload, list):
        return JSONResponse([await run_in_threadpool(_one, node, c) for c in payload])
    return JSONResponse(await run_in_threadpool(_one, node, payload))
