"""An injected EIP-1193 test wallet: a throwaway key in Python, exposed to the page.

The page sees ``window.ethereum.request({method, params})``; each call goes to
:meth:`TestWallet.handle` through ``page.expose_function`` and signs with eth-account.
Like a browser wallet, ``eth_sendTransaction`` fills in nonce, gas and gas price from its
JSON-RPC endpoint (``rpc_url``: the node's ``/rpc``), signs and sends the raw transaction;
``eth_signTransaction`` signs the fields it is given. ``can_send=False`` makes the wallet
answer ``eth_sendTransaction`` with 4200 (unsupported), as signing-only wallets do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from web3 import Web3

USER_REJECTED: Final = 4001
UNAUTHORIZED: Final = 4100
INTERNAL_ERROR: Final = -32603
SIGNING_METHODS: Final = frozenset(
    {"personal_sign", "eth_signTypedData_v4", "eth_sendTransaction", "eth_signTransaction"}
)
TX_FIELDS: Final = ("nonce", "gas", "gasPrice", "value", "chainId")
UNSUPPORTED_METHOD: Final = 4200
BRIDGE_NAME: Final = "__collegiumTestWallet"

INIT_SCRIPT: Final = f"""
window.ethereum = {{
  isCollegiumTestWallet: true,
  async request({{ method, params }}) {{
    const out = JSON.parse(await window.{BRIDGE_NAME}(method, JSON.stringify(params ?? [])));
    if (out.error) {{
      const err = new Error(out.error.message);
      err.code = out.error.code;
      throw err;
    }}
    return out.result;
  }},
  on() {{}},
  removeListener() {{}},
}};
"""


@dataclass
class TestWallet:
    """A wallet holding a fresh key; ``reject`` makes it refuse every signature."""

    chain_id: int
    account: LocalAccount = field(default_factory=Account.create)
    reject: bool = False
    rpc_url: str = ""
    can_send: bool = True
    calls: list[str] = field(default_factory=list)

    __test__ = False  # not a pytest class

    @property
    def address(self) -> str:
        """Return the wallet's checksum address."""
        return str(self.account.address)

    def install(self, context: Any) -> None:
        """Inject the wallet into every page of the Playwright ``context``."""
        context.expose_function(BRIDGE_NAME, self.handle)
        context.add_init_script(INIT_SCRIPT)

    def handle(self, method: str, params_json: str) -> str:
        """Return the JSON ``{"result": …}`` or ``{"error": {code, message}}`` of one request."""
        self.calls.append(method)
        params = json.loads(params_json)
        try:
            return json.dumps({"result": self._dispatch(method, params)})
        except _WalletRefusal as exc:
            return json.dumps({"error": {"code": exc.code, "message": str(exc)}})
        except Exception as exc:  # what the chain said (a revert, a bad nonce): an RPC error
            return json.dumps({"error": {"code": INTERNAL_ERROR, "message": str(exc)}})

    def _dispatch(self, method: str, params: list[Any]) -> Any:
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [self.address]
        if method == "eth_chainId":
            return hex(self.chain_id)
        if method == "eth_sendTransaction" and not self.can_send:
            raise _WalletRefusal(UNSUPPORTED_METHOD, f"method {method} is not supported")
        if method in SIGNING_METHODS and self.reject:
            raise _WalletRefusal(USER_REJECTED, "User rejected the request.")
        if method in ("eth_sendTransaction", "eth_signTransaction"):
            return self._transaction(method, params[0])
        if method == "personal_sign":
            text = params[0]
            message = (
                encode_defunct(hexstr=text) if text.startswith("0x") else encode_defunct(text=text)
            )
            return "0x" + bytes(self.account.sign_message(message).signature).hex()
        if method == "eth_signTypedData_v4":
            typed = json.loads(params[1])
            signed = Account.sign_typed_data(self.account.key, full_message=typed)
            return "0x" + bytes(signed.signature).hex()
        raise _WalletRefusal(UNSUPPORTED_METHOD, f"method {method} is not supported")

    def _transaction(self, method: str, request: dict[str, Any]) -> str:
        if str(request.get("from", "")).lower() != self.address.lower():
            raise _WalletRefusal(
                UNAUTHORIZED, f"{request.get('from')} is not this wallet's account"
            )
        tx: dict[str, Any] = {"to": Web3.to_checksum_address(request["to"]),
                              "data": request.get("data", "0x")}  # fmt: skip
        for name in TX_FIELDS:
            if name in request:
                tx[name] = int(request[name], 16)
        tx.setdefault("value", 0)
        tx.setdefault("chainId", self.chain_id)
        if method == "eth_signTransaction":
            return "0x" + bytes(self.account.sign_transaction(tx).raw_transaction).hex()
        w3 = Web3(Web3.HTTPProvider(self.rpc_url))
        tx.setdefault("nonce", w3.eth.get_transaction_count(self.account.address))
        tx.setdefault("gasPrice", w3.eth.gas_price)
        estimate = {"from": self.account.address, "to": tx["to"], "data": tx["data"]}
        tx.setdefault("gas", w3.eth.estimate_gas(estimate, "latest"))  # type: ignore[arg-type]
        raw = self.account.sign_transaction(tx).raw_transaction
        return "0x" + bytes(w3.eth.send_raw_transaction(raw)).hex()


class _WalletRefusal(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)
