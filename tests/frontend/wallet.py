"""An injected EIP-1193 test wallet: a throwaway key in Python, exposed to the page.

The page sees ``window.ethereum.request({method, params})``; each call goes to
:meth:`TestWallet.handle` through ``page.expose_function`` and signs with eth-account.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

USER_REJECTED: Final = 4001
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

    def _dispatch(self, method: str, params: list[Any]) -> Any:
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [self.address]
        if method == "eth_chainId":
            return hex(self.chain_id)
        if method in ("personal_sign", "eth_signTypedData_v4") and self.reject:
            raise _WalletRefusal(USER_REJECTED, "User rejected the request.")
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


class _WalletRefusal(Exception):
    def __init__(self, code: int, message: str) -> None:
        self.code = code
        super().__init__(message)
