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

``publish_subsystem_frontend(name, build_dir)`` does what the browser's Admin page does, from
any machine: it signs in (SIWE with the node's domain, chain id and a fresh nonce from the
node, delegating to a session key held only in this process), uploads the build as a gzip'd
tar with requests signed by that session key, then signs ``setSubsystemFrontend`` and has the
node relay it.
"""

from __future__ import annotations

import gzip
import io
import secrets
import tarfile
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import httpx
from eth_account.signers.local import LocalAccount

from node.auth.client import SessionAuth, open_session
from node.chain.actions import ZERO_ADDRESS, Action, check_action, default_deadline, sign_action
from node.errors import CollegiumError
from node.frontend import INDEX_FILE
from node.frontend.archive import MAX_ARCHIVE_BYTES, MAX_FILES, MAX_UNPACKED_BYTES
from node.ledger.bundle import verify_bundle
from node.ledger.transaction import BusinessTx, Domain, sign_tx

DEFAULT_TIMEOUT: Final = 60.0
API: Final = "/api/v1"
#: How long the session key a ``sign_in`` delegates to may act (a CLI run needs minutes).
SIGN_IN_TTL: Final = timedelta(minutes=15)
MIB: Final = 1024 * 1024


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
        self.session: SessionAuth | None = None  # set by sign_in
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
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise _refusal(response)
        return response.json()

    def _unreachable(self, exc: Exception) -> ClientError:
        return ClientError(0, f"node at {self.url} is not reachable: {exc}", "unreachable")

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

    # ------------------------------------------------------------------ signed-in requests

    def sign_in(self, ttl: timedelta = SIGN_IN_TTL) -> SessionAuth:
        """Sign in with the wallet as the browser does and return the session's request signer.

        The wallet signs one EIP-4361 (SIWE) message carrying the node's domain, scheme and
        chain id and a fresh single-use nonce from ``GET /auth/nonce``; it delegates the
        system's read/write abilities to a P-256 session key made here and held only in this
        process, for ``ttl`` (``node.auth.client.open_session``). ``POST /auth/login`` checks
        it at once. Every later user request (``upload_subsystem_frontend``) is signed with
        that key, so any node may relay it. Raises ``ClientError`` (401: the login refused).
        """
        me = self._me()
        try:
            self.session = open_session(self.url, me, ttl=ttl)
        except httpx.HTTPStatusError as exc:
            refused = _refusal(exc.response)
            if refused.status == 401:
                refused = ClientError(
                    401,
                    f"the node refused the sign-in ({refused.detail}): check the node URL and "
                    "this machine's clock",
                    refused.kind,
                )
            raise refused from None
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        return self.session

    def _signed(self) -> SessionAuth:
        """Return the session's request signer, signing in first if needed."""
        return self.session if self.session is not None else self.sign_in()

    def upload_frontend_archive(self, name: str, archive: bytes) -> dict[str, Any]:
        """Post a build archive (``.tar``, ``.tar.gz`` or ``.zip`` bytes) of ``name``'s
        front-end, signed in; return ``{"subsystem", "cid", "files", "bytes"}``: the build is
        stored and pinned at the node, not published yet. ``ClientError`` 403 for a wallet that
        is not an admin of ``name`` (nothing stored), 413 for an archive over the node's limit.
        """
        try:
            return dict(
                self._call(
                    "POST",
                    f"/subsystems/{quote(name, safe='')}/frontend",
                    content=archive,
                    headers={"content-type": "application/octet-stream"},
                    auth=self._signed(),
                )
            )
        except ClientError as exc:
            if exc.status == 413:
                raise ClientError(
                    413, f"the build archive is too big for the node: {exc.detail}", exc.kind
                ) from None
            raise

    def upload_subsystem_frontend(self, name: str, build_dir: Path) -> dict[str, Any]:
        """Pack ``build_dir`` (:func:`pack_build`) and upload it as ``name``'s front-end
        (:meth:`upload_frontend_archive`); return the node's answer (``cid`` …)."""
        return self.upload_frontend_archive(name, pack_build(build_dir))

    def publish_subsystem_frontend(self, name: str, build_dir: Path) -> dict[str, Any]:
        """Upload ``build_dir`` as ``name``'s front-end, then sign ``setSubsystemFrontend``
        with its CID and have the node relay it (skipped when that CID is already published);
        return the upload's answer plus ``tx_hash`` and ``block_number`` (None when skipped).
        ``/s/<name>/`` serves it. The node refuses a wallet that is not an admin of ``name``
        (``ClientError`` 403) before storing anything."""
        stored = self.upload_subsystem_frontend(name, build_dir)
        receipt: dict[str, Any] = {"tx_hash": None, "block_number": None}
        if self.subsystem(name)["frontend_cid"] != stored["cid"]:
            receipt = self.set_subsystem_frontend(name, str(stored["cid"]))
        return {**stored, "tx_hash": receipt["tx_hash"], "block_number": receipt["block_number"]}

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


def _refusal(response: httpx.Response) -> ClientError:
    """Return the ``ClientError`` of a refused request (its problem+json detail and type)."""
    try:
        body = response.json()
        detail, kind = str(body.get("detail")), str(body.get("type", "")).rsplit("/", 1)[-1]
    except (ValueError, AttributeError):
        detail, kind = response.text[:500], ""
    return ClientError(response.status_code, detail, kind)


def _build_files(root: Path) -> Iterator[Path]:
    """Yield the regular files under ``root`` (sorted), skipping names that start with ``.``
    as ``ipfs add -r`` does; raise ``CollegiumError`` for a link or a special file."""
    for path in sorted(root.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            raise CollegiumError(f"{path} is a link or a special file: a build holds files only")
        if path.is_dir():
            yield from _build_files(path)
        else:
            yield path


def pack_build(build_dir: Path, limit: int = MAX_ARCHIVE_BYTES) -> bytes:
    """Return ``build_dir`` (which must hold ``index.html``) as a gzip'd tar, the same bytes
    for the same files (sorted names, no owners or times). Hidden files are left out, as
    ``ipfs add -r`` leaves them out, so the node's CID is the one an on-node publish gives.
    Raises ``CollegiumError`` for a missing build, a link, or an archive over ``limit`` bytes
    (the node's upload limit: it would answer 413 after the whole upload)."""
    root = build_dir.expanduser().resolve()
    if not (root / INDEX_FILE).is_file():
        raise CollegiumError(f"{root} has no {INDEX_FILE}: build the front-end first")
    files = list(_build_files(root))
    if len(files) > MAX_FILES or sum(p.stat().st_size for p in files) > MAX_UNPACKED_BYTES:
        raise CollegiumError(
            f"the build in {root} has more than {MAX_FILES} files or "
            f"{MAX_UNPACKED_BYTES // MIB} MiB: the node accepts no larger upload"
        )
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.size, info.mode = path.stat().st_size, 0o644
            with path.open("rb") as content:
                tar.addfile(info, content)
    archive = gzip.compress(raw.getvalue(), mtime=0)
    if len(archive) > limit:
        raise CollegiumError(
            f"the build in {root} packs to {len(archive)} bytes ({len(archive) / MIB:.1f} MiB), "
            f"over the node's upload limit of {limit} bytes ({limit / MIB:.0f} MiB): "
            "make it smaller (minify, drop source maps) or publish it on the node's machine"
        )
    return archive
