"""A Python client of a Collegium node (``docs/client.md``); the CLI is built on it.

Everything a person does is signed here with their own key; the node only relays::

    from eth_account import Account
    from node.client import Client

    me = Account.from_key(key)
    client = Client("http://127.0.0.1:8000", me)
    client.request_join("main", "hello")              # gasless: the node pays the gas
    tx = client.send_tx(kind="invoice", amount="10", currency="EUR", wait=True)
    report = client.verify(tx["id"], chain_url=client.url + "/rpc", gateway_url=client.url)

``verify`` checks the proof bundle with only a chain RPC and an IPFS gateway (the node's REST
API just hands over the bundle): the leaf's hash, the signer, the inclusion path and the root
anchored in the registry (``node.ledger.bundle.verify_bundle``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any, Final

import httpx
from eth_account.signers.local import LocalAccount

from node.chain.actions import ZERO_ADDRESS, Action, check_action, default_deadline, sign_action
from node.errors import CollegiumError
from node.ledger.bundle import verify_bundle
from node.ledger.transaction import BusinessTx, Domain, sign_tx

DEFAULT_TIMEOUT: Final = 60.0
API: Final = "/api/v1"


class ClientError(CollegiumError):
    """The node refused a request: ``status`` and the problem's ``detail`` say why."""

    def __init__(self, status: int, detail: str, kind: str = "") -> None:
        self.status = status
        self.detail = detail
        self.kind = kind
        super().__init__(f"{status} {kind or 'error'}: {detail}")


class Client:
    """One node's API, acting as ``wallet`` (None: read only)."""

    def __init__(
        self, url: str, wallet: LocalAccount | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.url = url.rstrip("/")
        self.wallet = wallet
        self.http = httpx.Client(base_url=self.url, timeout=timeout)
        self._domain: Domain | None = None

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, API + path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientError(
                0, f"node at {self.url} is not reachable: {exc}", "unreachable"
            ) from exc
        if response.status_code >= 400:
            try:
                body = response.json()
                detail, kind = str(body.get("detail")), str(body.get("type", "")).rsplit("/", 1)[-1]
            except ValueError:
                detail, kind = response.text[:500], ""
            raise ClientError(response.status_code, detail, kind)
        return response.json()

    def _me(self) -> LocalAccount:
        if self.wallet is None:
            raise CollegiumError("this client has no wallet: give it a key to act")
        return self.wallet

    def domain(self) -> Domain:
        """Return the node's EIP-712 domain (chain id, registry address)."""
        if self._domain is None:
            doc = self._call("GET", "/transactions/typed-data")
            self._domain = Domain(int(doc["domain"]["chainId"]), doc["domain"]["verifyingContract"])
        return self._domain

    # ------------------------------------------------------------------ signed actions

    def act(
        self,
        action: str,
        *,
        subsystem: str = "",
        account: str = ZERO_ADDRESS,
        data: str = "",
        deadline: int | None = None,
    ) -> dict[str, Any]:
        """Sign ``action`` with the wallet (its next nonce, a deadline an hour ahead) and have
        the node relay it; return the relay receipt (``tx_hash``, ``block_number``)."""
        me = self._me()
        domain = self.domain()
        nonce = int(self._call("GET", f"/actions/nonce/{me.address}")["nonce"])
        act = check_action(
            Action(
                action=action,
                signer=me.address,
                nonce=nonce,
                deadline=default_deadline() if deadline is None else deadline,
                subsystem=subsystem,
                account=account,
                data=data,
            )  # fmt: skip
        )
        signature = sign_action(act, domain.chain_id, domain.verifying_contract, me)
        return dict(self._call("POST", "/actions", json={**act.as_dict(), "signature": signature}))

    def create_subsystem(self, name: str) -> dict[str, Any]:
        """Create subsystem ``name``; the wallet becomes its admin and first participant."""
        return self.act("createSubsystem", subsystem=name)

    def request_join(self, name: str, message: str = "") -> dict[str, Any]:
        """Ask to join ``name`` (an admin approves or denies)."""
        return self.act("requestJoin", subsystem=name, data=message)

    def approve(self, name: str, address: str) -> dict[str, Any]:
        """Approve ``address``'s join request: it becomes a participant (admins)."""
        return self.act("addParticipant", subsystem=name, account=address)

    def deny(self, name: str, address: str) -> dict[str, Any]:
        """Deny ``address``'s join request (admins)."""
        return self.act("denyJoin", subsystem=name, account=address)

    def add_participant(self, name: str, address: str) -> dict[str, Any]:
        """Add participant ``address`` to ``name`` (admins)."""
        return self.act("addParticipant", subsystem=name, account=address)

    def remove_participant(self, name: str, address: str) -> dict[str, Any]:
        """Remove participant ``address`` from ``name`` (admins)."""
        return self.act("removeParticipant", subsystem=name, account=address)

    def add_admin(self, name: str | None, address: str) -> dict[str, Any]:
        """Make ``address`` an admin of ``name``, or a system admin when ``name`` is None."""
        if name is None:
            return self.act("addSystemAdmin", account=address)
        return self.act("addSubsystemAdmin", subsystem=name, account=address)

    def remove_admin(self, name: str | None, address: str) -> dict[str, Any]:
        """Remove admin ``address`` of ``name`` (or a system admin when ``name`` is None)."""
        if name is None:
            return self.act("removeSystemAdmin", account=address)
        return self.act("removeSubsystemAdmin", subsystem=name, account=address)

    def set_subsystem_frontend(self, name: str, cid: str) -> dict[str, Any]:
        """Publish ``cid`` as the front-end of ``name`` (admins)."""
        return self.act("setSubsystemFrontend", subsystem=name, data=cid)

    # ------------------------------------------------------------------ reads

    def subsystem(self, name: str) -> dict[str, Any]:
        """Return ``name``'s public record (participants, front-end CID)."""
        return dict(self._call("GET", f"/subsystems/{name}"))

    def subsystems(self) -> list[str]:
        """Return every subsystem name."""
        return [str(s["name"]) for s in self._call("GET", "/subsystems")]

    def admins(self, name: str | None = None) -> list[str]:
        """Return the admins of ``name``, or the system admins when ``name`` is None."""
        path = "/admins" if name is None else f"/subsystems/{name}/admins"
        return list(self._call("GET", path)["admins"])

    def fund(self, address: str, wei: int) -> dict[str, Any]:
        """Have the node give ``address`` ``wei`` on a dev chain (403 on any other)."""
        return dict(self._call("POST", "/dev/fund", json={"address": address, "wei": wei}))

    def join_requests(self, name: str) -> list[dict[str, Any]]:
        """Return the pending join requests of ``name``."""
        return list(self._call("GET", f"/subsystems/{name}/join-requests")["requests"])

    def join_status(self, name: str, address: str | None = None) -> dict[str, Any]:
        """Return ``address``'s (default: the wallet's) standing with ``name``."""
        who = address or self._me().address
        return dict(self._call("GET", f"/subsystems/{name}/join-requests/{who}"))

    # ------------------------------------------------------------------ business transactions

    def make_tx(self, **fields: Any) -> dict[str, Any]:
        """Return a signed submission body; ``fields`` override the defaults (subsystem main,
        no parties, amount 0 in XXX (ISO 4217: no currency), empty memo and payload, a random
        nonce, the current time)."""
        me = self._me()
        values: dict[str, Any] = {"subsystem": "main", "kind": "note", "parties": [],
                                  "amount": "0", "currency": "XXX", "memo": "", "payload": "",
                                  "nonce": secrets.randbelow(2**63),
                                  "timestamp": int(time.time())}  # fmt: skip
        values.update(fields)
        tx = BusinessTx(**{**values, "parties": tuple(values["parties"])})
        signature = sign_tx(self.domain(), tx, me.key)
        return {"transaction": values, "signer": me.address, "signature": "0x" + signature.hex()}

    def send_tx(self, *, wait: bool = False, **fields: Any) -> dict[str, Any]:
        """Sign and submit one business transaction; with ``wait`` until it is anchored."""
        params = {"wait": "true"} if wait else {}
        return dict(self._call("POST", "/transactions", params=params, json=self.make_tx(**fields)))

    def send_batch(self, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Sign and submit several transactions at once; return each item's result."""
        body = {"items": [self.make_tx(**fields) for fields in items]}
        return list(self._call("POST", "/transactions/batch", json=body)["results"])

    def get_tx(self, tx_id: str) -> dict[str, Any]:
        """Return one transaction (body, signer, CID, status, anchor)."""
        return dict(self._call("GET", f"/transactions/{tx_id}"))

    def wait_anchored(self, tx_id: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Poll until ``tx_id`` is anchored; return it (raise ``ClientError`` 408 on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            tx = self.get_tx(tx_id)
            if tx.get("status") == "anchored":
                return tx
            if time.monotonic() > deadline:
                raise ClientError(408, f"{tx_id} not anchored within {timeout:.0f} s", "timeout")
            time.sleep(0.5)

    def proof(self, tx_id: str) -> dict[str, Any]:
        """Return the proof bundle of an anchored transaction."""
        return dict(self._call("GET", f"/transactions/{tx_id}/proof"))

    def verify(self, tx_id: str, *, chain_url: str, gateway_url: str) -> Any:
        """Fetch ``tx_id``'s proof bundle and check it with only ``chain_url`` (JSON-RPC) and
        ``gateway_url`` (IPFS): returns a ``node.ledger.bundle.BundleReport`` (``.ok``)."""
        return verify_bundle(self.proof(tx_id), chain_url=chain_url, gateway_url=gateway_url)
