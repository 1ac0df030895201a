"""Checking a proof bundle as a third party: only a chain RPC URL and an IPFS gateway.

A bundle is what ``GET /api/v1/transactions/{id}/proof`` returns (see ``docs/ledger.md``).
:func:`verify_bundle` trusts nothing in it and checks, in order:

1. ``leaf``: the gateway serves the block named ``cid`` (``/ipfs/{cid}?format=raw``); it
   hashes to the CID's digest and equals the bundle's leaf;
2. ``signature``: the leaf decodes as a canonical leaf, its EIP-712 signature recovers to
   a signer, and its digest is ``tx_id``; the leaf's domain is the bundle's chain and
   registry;
3. ``inclusion``: the RFC 9162 inclusion path leads from the leaf hash at ``leaf_index``
   to ``root`` for a tree of ``tree_size`` leaves;
4. ``chain``: the RPC serves the bundle's chain id, and the registry's anchor
   ``anchor_index`` (read-only call) has that root and tree size and was made by ``node``.

Each check is reported; any failure makes the bundle invalid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from node.errors import CollegiumError
from node.ledger.hasher import hash_leaf
from node.ledger.transaction import decode_leaf
from node.ledger.verify import ProofError, verify_inclusion
from node.storage.cids import CODEC_RAW, is_block_valid, parse_cid

BUNDLE_VERSION = 1
GATEWAY_TIMEOUT_SECONDS = 30.0
CHAIN_TIMEOUT_SECONDS = 30.0
REQUIRED_FIELDS = (
    "chain_id", "registry", "tx_id", "cid", "leaf_index", "tree_size", "root", "path",
    "anchor_index", "node",
)  # fmt: skip


class BundleError(CollegiumError):
    """The bundle is malformed (missing or ill-typed fields)."""


class Unreachable(CollegiumError):
    """The chain RPC or the IPFS gateway could not be reached."""


@dataclass(frozen=True)
class Check:
    """One check of a bundle: its name, whether it passed, and what was found."""

    name: str
    ok: bool
    detail: str


@dataclass
class BundleReport:
    """The result of :func:`verify_bundle`."""

    tx_id: str
    checks: list[Check] = field(default_factory=list)
    signer: str | None = None
    confirmations: int | None = None

    @property
    def ok(self) -> bool:
        """Return True when every check passed (and there was at least one)."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> bool:
        """Record one check; return ``ok``."""
        self.checks.append(Check(name, ok, detail))
        return ok

    def as_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        return {
            "tx_id": self.tx_id,
            "ok": self.ok,
            "signer": self.signer,
            "confirmations": self.confirmations,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
        }


def _hex_bytes(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise BundleError(f"bundle field {name} must be 0x-hex, got {value!r}")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise BundleError(f"bundle field {name} is not hex: {exc}") from exc


def parse_bundle(bundle: Any) -> dict[str, Any]:
    """Return ``bundle`` checked for shape; raise ``BundleError`` naming the bad field."""
    if not isinstance(bundle, dict):
        raise BundleError("a bundle is a JSON object")
    missing = [name for name in REQUIRED_FIELDS if name not in bundle]
    if missing:
        raise BundleError(f"bundle lacks {', '.join(missing)}")
    if bundle.get("version", BUNDLE_VERSION) != BUNDLE_VERSION:
        raise BundleError(f"unknown bundle version {bundle.get('version')!r}")
    if bundle.get("hash", "keccak256") != "keccak256":
        raise BundleError(f"unknown tree hash {bundle.get('hash')!r} (this verifier: keccak256)")
    for name in ("chain_id", "leaf_index", "tree_size", "anchor_index"):
        if not isinstance(bundle[name], int) or bundle[name] < 0:
            raise BundleError(f"bundle field {name} must be a non-negative integer")
    if not isinstance(bundle["path"], list):
        raise BundleError("bundle field path must be a list of 0x-hex hashes")
    return bundle


def fetch_leaf(gateway: str, cid: str) -> bytes:
    """Return the raw block ``cid`` from an IPFS trustless gateway (not yet checked).

    Raises ``Unreachable`` if the gateway does not answer with the block.
    """
    url = f"{gateway.rstrip('/')}/ipfs/{cid}"
    try:
        response = httpx.get(
            url,
            params={"format": "raw"},
            headers={"Accept": "application/vnd.ipld.raw"},
            timeout=GATEWAY_TIMEOUT_SECONDS,
            follow_redirects=True,
        )
    except httpx.HTTPError as exc:
        raise Unreachable(f"gateway {gateway} unreachable: {exc}") from exc
    if response.status_code != 200:
        raise Unreachable(f"gateway {gateway} answered {response.status_code} for {cid}")
    return bytes(response.content)


def _check_leaf(report: BundleReport, bundle: dict[str, Any], gateway: str) -> bytes | None:

    try:
        cid = parse_cid(str(bundle["cid"]))
    except CollegiumError as exc:
        report.add("leaf", False, f"cid {bundle['cid']!r} is not a CID: {exc}")
        return None
    if cid.codec.name != CODEC_RAW:
        report.add("leaf", False, f"leaf CID codec is {cid.codec.name}, expected raw")
        return None
    block = fetch_leaf(gateway, str(bundle["cid"]))
    if not is_block_valid(cid, block):
        report.add("leaf", False, f"gateway bytes for {bundle['cid']} do not hash to the CID")
        return None
    if "leaf" in bundle and _hex_bytes(bundle["leaf"], "leaf") != block:
        report.add("leaf", False, "the bundle's leaf differs from the block under its CID")
        return None
    report.add("leaf", True, f"{len(block)} bytes from the gateway hash to {bundle['cid']}")
    return block


def _check_signature(
    report: BundleReport, bundle: dict[str, Any], leaf: bytes, *, untrusted: bool = False
) -> None:
    """Check the leaf's signature; an ``untrusted`` leaf (the bundle's own bytes, not the
    block under its CID) fails whatever it recovers to: any bytes recover to some address."""
    try:
        signed = decode_leaf(leaf)
    except CollegiumError as exc:
        report.add("signature", False, f"leaf does not verify: {exc}")
        return
    if untrusted:
        report.add(
            "signature", False,
            f"not the content under the CID: the bundle's leaf recovers to {signed.signer}, "
            "which proves nothing",
        )  # fmt: skip
        return
    report.signer = signed.signer
    problems = []
    if signed.tx_id != str(bundle["tx_id"]).lower():
        problems.append(f"EIP-712 digest {signed.tx_id} is not tx_id {bundle['tx_id']}")
    if signed.domain.chain_id != bundle["chain_id"]:
        problems.append(f"leaf is for chain {signed.domain.chain_id}, not {bundle['chain_id']}")
    if signed.domain.verifying_contract.lower() != str(bundle["registry"]).lower():
        problems.append(f"leaf is for registry {signed.domain.verifying_contract}")
    if problems:
        report.add("signature", False, "; ".join(problems))
    else:
        report.add("signature", True, f"EIP-712 signature by {signed.signer}, digest = tx_id")


def _check_inclusion(report: BundleReport, bundle: dict[str, Any], leaf: bytes) -> None:
    try:
        verify_inclusion(
            bundle["leaf_index"],
            bundle["tree_size"],
            hash_leaf(leaf),
            [_hex_bytes(p, "path") for p in bundle["path"]],
            _hex_bytes(bundle["root"], "root"),
        )
    except ProofError as exc:
        report.add("inclusion", False, str(exc))
        return
    report.add(
        "inclusion",
        True,
        f"leaf {bundle['leaf_index']} of {bundle['tree_size']} leads to root {bundle['root']}",
    )


def _check_chain(report: BundleReport, bundle: dict[str, Any], chain_url: str) -> None:
    # lazily: web3 is heavy; importing node.ledger.bundle (node.client) must stay light
    from web3 import HTTPProvider, Web3

    from node.chain.registry import Registry

    w3 = Web3(HTTPProvider(chain_url, request_kwargs={"timeout": CHAIN_TIMEOUT_SECONDS}))
    try:
        chain_id = int(w3.eth.chain_id)
    except Exception as exc:
        raise Unreachable(f"chain RPC {chain_url} unreachable: {exc}") from exc
    if chain_id != bundle["chain_id"]:
        report.add(
            "chain", False, f"RPC serves chain {chain_id}, bundle is for {bundle['chain_id']}"
        )
        return
    registry = Registry(w3, str(bundle["registry"]))  # read-only: no account
    try:
        anchor = registry.get_anchor(bundle["anchor_index"])
        head = int(w3.eth.block_number)
    except CollegiumError as exc:
        report.add("chain", False, f"anchor {bundle['anchor_index']} unreadable: {exc}")
        return
    root = "0x" + bytes(anchor.root).hex()
    problems = []
    if root != str(bundle["root"]).lower():
        problems.append(f"on-chain root {root} != bundle root {bundle['root']}")
    if anchor.tree_size != bundle["tree_size"]:
        problems.append(f"on-chain tree size {anchor.tree_size} != {bundle['tree_size']}")
    if str(anchor.node).lower() != str(bundle["node"]).lower():
        problems.append(f"anchor made by {anchor.node}, not {bundle['node']}")
    if problems:
        report.add("chain", False, "; ".join(problems))
        return
    report.confirmations = head - anchor.block_number + 1
    report.add(
        "chain",
        True,
        f"anchor {bundle['anchor_index']} in block {anchor.block_number} "
        f"({report.confirmations} confirmations) has this root and size",
    )


def verify_bundle(bundle: Any, *, chain_url: str, gateway_url: str) -> BundleReport:
    """Return the report of every check of ``bundle`` against the chain and the gateway.

    Raises ``BundleError`` if the bundle is malformed and ``Unreachable`` if the chain
    RPC or the gateway cannot be reached (a mismatch is a failed check, not an error).
    """
    data = parse_bundle(bundle)
    report = BundleReport(tx_id=str(data["tx_id"]))
    leaf = _check_leaf(report, data, gateway_url)
    if leaf is None and "leaf" in data:
        leaf = _hex_bytes(data["leaf"], "leaf")  # still check the rest of what we were given
        _check_signature(report, data, leaf, untrusted=True)
        _check_inclusion(report, data, leaf)
    elif leaf is not None:
        _check_signature(report, data, leaf)
        _check_inclusion(report, data, leaf)
    _check_chain(report, data, chain_url)
    return report
