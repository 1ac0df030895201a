"""The kubo backend: the same ``BlockStore`` interface over a kubo node's RPC API (``/api/v0``).

Uses ``ipfshttpclient`` 0.7, whose ``connect()`` refuses kubo >= 0.8 (``VersionMismatch``): we
build ``ipfshttpclient.Client`` directly, which skips that check. Every block read from kubo is
re-hashed here, so a misbehaving node cannot hand us wrong bytes.

RPC calls used: ``add`` (``cid-version``, ``raw-leaves``, ``only-hash``, ``pin``), ``cat``
(``offset``, ``length``), ``block/get``, ``block/put`` (``cid-codec``, ``mhtype``), ``pin/add``,
``pin/ls`` (``type=recursive``), ``files/stat``, ``ls``.

What was tested: only against the kubo-RPC-compatible test server in
``tests/storage/kubo_rpc.py`` (FastAPI over the embedded store), since no kubo binary is available
here. The parameter names follow kubo's RPC documentation; behaviour against a real kubo node
(notably its error texts, mapped below) is unverified.
"""

from __future__ import annotations

import io
import ipaddress
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import ipfshttpclient
from ipfshttpclient import exceptions as ipfs_exc

from node.storage.base import DirEntry, NodeKind, NodeStat
from node.storage.cids import CODEC_RAW, check_block, format_cid, parse_cid
from node.storage.errors import (
    InvalidCID,
    IsADirectory,
    KuboError,
    NotADirectory,
    NotFoundInStore,
    StoreError,
)
from node.storage.importer import FileTree
from node.storage.reader import compute_path_segments

DEFAULT_API_BASE: Final = "api/v0"
DEFAULT_TIMEOUT_S: Final = 120.0
RAM_SCRATCH_DIR: Final = "/dev/shm"  # staging copies for add_tree: RAM, when there is one
#: UnixFS ``Type`` numbers as kubo's ``ls`` reports them.
_LS_TYPES: Final[dict[int, NodeKind]] = {0: "file", 1: "dir", 2: "file", 4: "symlink"}

_NOT_FOUND_HINTS: Final = ("not found", "no link named", "no such file", "does not exist")
_DIRECTORY_HINTS: Final = ("is a directory",)
_NOT_DIRECTORY_HINTS: Final = ("not a directory", "cannot traverse", "is not a directory")
_INVALID_HINTS: Final = ("invalid cid", "invalid path", "failed to parse", "selected encoding")


def compute_multiaddr(api_url: str) -> tuple[str, str]:
    """Return ``(multiaddr, base path)`` for a kubo RPC URL such as ``http://127.0.0.1:5001``.

    Raises ``KuboError`` if the URL is not ``http(s)://host[:port][/base]``.
    """
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise KuboError(f"kubo RPC URL must look like http://127.0.0.1:5001, got {api_url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        protocol = "ip4" if ipaddress.ip_address(parts.hostname).version == 4 else "ip6"
    except ValueError:
        protocol = "dns"
    base = parts.path.strip("/") or DEFAULT_API_BASE
    return f"/{protocol}/{parts.hostname}/tcp/{port}/{parts.scheme}", base


def _translate(exc: Exception, what: str) -> StoreError:
    """Return the ``StoreError`` matching an ``ipfshttpclient`` error raised doing ``what``."""
    message = str(exc)
    lowered = message.lower()
    if isinstance(exc, ipfs_exc.ErrorResponse):
        for hints, error in (
            (_NOT_FOUND_HINTS, NotFoundInStore),
            (_DIRECTORY_HINTS, IsADirectory),
            (_NOT_DIRECTORY_HINTS, NotADirectory),
            (_INVALID_HINTS, InvalidCID),
        ):
            if any(hint in lowered for hint in hints):
                return error(f"{what}: {message}")
    return KuboError(f"{what}: kubo RPC failed: {message}")


def _ipfs_path(cid: str, path: str) -> str:
    segments = compute_path_segments(path)
    canonical = format_cid(parse_cid(cid))  # raises InvalidCID before any request
    return "/ipfs/" + "/".join([canonical, *segments])


def _flag(value: bool) -> str:
    return "true" if value else "false"


class KuboStore:
    """``BlockStore`` over a kubo node's RPC API (see the module docstring for what was tested)."""

    backend = "kubo"

    def __init__(self, api_url: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        addr, base = compute_multiaddr(api_url)
        self.api_url = api_url
        # Not ipfshttpclient.connect(): it rejects every kubo >= 0.8 with VersionMismatch.
        self._client: Any = ipfshttpclient.Client(addr, base, timeout=timeout)

    def close(self) -> None:
        """Close the client's HTTP connections."""
        self._client.close()

    @staticmethod
    def _add_opts(cid_version: int, pin: bool, only_hash: bool) -> dict[str, str]:
        if cid_version not in (0, 1):
            raise StoreError(f"unknown CID version {cid_version}")
        return {
            "cid-version": str(cid_version),
            "raw-leaves": _flag(cid_version == 1),
            "only-hash": _flag(only_hash),
            "pin": _flag(pin),
        }

    def add_bytes(
        self, data: bytes, *, cid_version: int = 1, pin: bool = True, only_hash: bool = False
    ) -> str:
        """Return the CID kubo gives ``data`` (``ipfs add --cid-version N``); ``KuboError``."""
        opts = self._add_opts(cid_version, pin, only_hash)
        try:
            cid = self._client.add_bytes(data, opts=opts)
        except ipfs_exc.Error as exc:
            raise _translate(exc, "add") from None
        return format_cid(parse_cid(str(cid)))

    def add_path(
        self, path: Path, *, cid_version: int = 1, pin: bool = True, only_hash: bool = False
    ) -> str:
        """Return the root CID kubo gives a file or directory (``ipfs add -r``, dot-files skipped).

        Raises ``NotFoundInStore`` if ``path`` does not exist, ``KuboError`` on RPC failure.
        """
        path = Path(path)
        if not path.exists():
            raise NotFoundInStore(f"{path} does not exist")
        self._add_opts(cid_version, pin, only_hash)  # validates cid_version
        # Client.add() writes its own keyword arguments over ``opts`` (raw-leaves defaults to
        # False there), so these must go as its keywords, not as opts.
        options = {
            "cid_version": cid_version,
            "raw_leaves": cid_version == 1,
            "only_hash": only_hash,
            "pin": pin,
        }
        try:
            if path.is_dir():
                result = self._client.add(str(path), recursive=True, pattern="**", **options)
            else:
                result = self._client.add(str(path), **options)
        except ipfs_exc.Error as exc:
            raise _translate(exc, "add") from None
        entries = result if isinstance(result, list) else [result]
        if not entries:
            raise KuboError(f"add {path}: kubo returned no entries")
        root = next((e for e in entries if e["Name"] == path.name), entries[-1])
        return format_cid(parse_cid(str(root["Hash"])))

    def add_tree(
        self, tree: FileTree, *, cid_version: int = 1, pin: bool = True, only_hash: bool = False
    ) -> str:
        """Return the root CID kubo gives the in-memory directory ``tree`` (name -> bytes or
        sub-tree), imported from a staging copy on disk (in RAM when there is one)."""
        scratch = RAM_SCRATCH_DIR if os.path.isdir(RAM_SCRATCH_DIR) else None
        with tempfile.TemporaryDirectory(prefix="collegium-tree-", dir=scratch) as tmp:
            root = Path(tmp) / "tree"
            write_tree(root, tree)
            return self.add_path(root, cid_version=cid_version, pin=pin, only_hash=only_hash)

    def cat(self, cid: str, path: str = "") -> bytes:
        """Return the bytes of the file ``cid``/``path``.

        Raises ``InvalidCID``, ``NotFoundInStore``, ``IsADirectory``, ``KuboError``.
        """
        return b"".join(self.iter_cat(cid, path))

    def iter_cat(
        self, cid: str, path: str = "", *, offset: int = 0, length: int | None = None
    ) -> Iterator[bytes]:
        """Return an iterator over bytes ``[offset, offset + length)`` of ``cid``/``path``.

        Raises like ``cat``; kubo checks blocks against their CIDs itself.
        """
        if offset < 0 or (length is not None and length < 0):
            raise StoreError("offset and length must not be negative")
        target = _ipfs_path(cid, path)
        if length == 0:
            return iter(())
        try:
            data = self._client.cat(target, offset=offset or None, length=length)
        except ipfs_exc.Error as exc:
            raise _translate(exc, f"cat {target}") from None
        return iter((bytes(data),))

    def get_block(self, cid: str) -> bytes:
        """Return block ``cid`` from kubo, re-hashed here.

        Raises ``NotFoundInStore``, ``BlockMismatch`` (kubo returned other bytes), ``KuboError``.
        """
        parsed = parse_cid(cid)
        try:
            data = bytes(self._client.block.get(format_cid(parsed)))
        except ipfs_exc.Error as exc:
            raise _translate(exc, f"block/get {cid}") from None
        check_block(parsed, data, stored=False)
        return data

    def put_block(self, cid: str, data: bytes) -> None:
        """Store block ``cid`` in kubo after checking ``data`` hashes to it.

        Raises ``BlockMismatch`` before any request if it does not, ``KuboError`` if kubo stores it
        under another multihash.
        """
        parsed = parse_cid(cid)
        check_block(parsed, data, stored=False)
        opts = {"cid-codec": parsed.codec.name, "mhtype": parsed.hashfun.name}
        try:
            answer = self._client.block.put(io.BytesIO(data), opts=opts)
        except ipfs_exc.Error as exc:
            raise _translate(exc, f"block/put {cid}") from None
        stored = parse_cid(str(answer["Key"]))
        if bytes(stored.digest) != bytes(parsed.digest):
            raise KuboError(f"kubo stored {cid} as {format_cid(stored)}")

    def put_blocks(self, blocks: Iterable[tuple[str, bytes]]) -> None:
        """Store ``blocks`` in kubo (kubo keeps its own durability); every block is checked
        first, so a ``BlockMismatch`` stores none."""
        blocks = list(blocks)
        for cid, data in blocks:
            check_block(parse_cid(cid), data, stored=False)
        for cid, data in blocks:
            self.put_block(cid, data)

    def has(self, cid: str) -> bool:
        """Return whether kubo has block ``cid`` locally (asked offline, bytes re-hashed).

        Raises ``InvalidCID``, ``BlockMismatch`` if kubo's copy is wrong, ``KuboError``.
        """
        parsed = parse_cid(cid)
        try:
            data = bytes(self._client.block.get(format_cid(parsed), offline=True))
        except ipfs_exc.Error as exc:
            error = _translate(exc, f"block/get {cid}")
            if isinstance(error, NotFoundInStore):
                return False
            raise error from None
        check_block(parsed, data, stored=False)
        return True

    def pin(self, cid: str) -> None:
        """Pin ``cid`` recursively in kubo; raises ``NotFoundInStore`` or ``KuboError``."""
        target = format_cid(parse_cid(cid))
        try:
            self._client.pin.add(target, recursive=True)
        except ipfs_exc.Error as exc:
            raise _translate(exc, f"pin/add {cid}") from None

    def pin_many(self, cids: list[str]) -> None:
        """Pin every CID of ``cids`` recursively, one after the other (kubo has no transaction
        around several pins); ``NotFoundInStore`` or ``KuboError`` at the first failure."""
        for cid in cids:
            self.pin(cid)

    def usage(self) -> dict[str, Any]:
        """Return nothing: kubo keeps its own repository accounts (``ipfs repo stat``)."""
        return {}

    def pins(self) -> list[str]:
        """Return kubo's recursive pins, sorted, in canonical CID form; raises ``KuboError``."""
        try:
            answer = self._client.pin.ls(type="recursive")
        except ipfs_exc.Error as exc:
            raise _translate(exc, "pin/ls") from None
        return sorted(format_cid(parse_cid(str(key))) for key in answer["Keys"])

    def stat(self, cid: str, path: str = "") -> NodeStat:
        """Return kind, size and entries of ``cid``/``path`` from ``files/stat`` and ``ls``.

        Entry sizes are what kubo's ``ls`` reports. Raises ``InvalidCID``, ``NotFoundInStore``,
        ``KuboError``.
        """
        target = _ipfs_path(cid, path)
        try:
            info = self._client.files.stat(target)
        except ipfs_exc.Error as exc:
            raise _translate(exc, f"files/stat {target}") from None
        resolved = parse_cid(str(info["Hash"]))
        kubo_type = str(info["Type"])
        kind: NodeKind
        if resolved.codec.name == CODEC_RAW:
            kind = "raw"
        elif kubo_type == "directory":
            kind = "dir"
        elif kubo_type == "symlink":
            kind = "symlink"
        else:
            kind = "file"
        if kind != "dir":
            return NodeStat(format_cid(resolved), kind, int(info["Size"]))
        try:
            listing = self._client.ls(target)
        except ipfs_exc.Error as exc:
            raise _translate(exc, f"ls {target}") from None
        entries = []
        for link in listing["Objects"][0]["Links"]:
            child = parse_cid(str(link["Hash"]))
            child_kind = (
                "raw"
                if child.codec.name == CODEC_RAW
                else _LS_TYPES.get(int(link["Type"]), "unknown")
            )
            entries.append(
                DirEntry(str(link["Name"]), format_cid(child), int(link["Size"]), child_kind)
            )
        return NodeStat(format_cid(resolved), "dir", int(info["CumulativeSize"]), tuple(entries))


def write_tree(root: Path, tree: FileTree) -> None:
    """Write the in-memory directory ``tree`` (name -> bytes or sub-tree) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, value in tree.items():
        if isinstance(value, bytes):
            (root / name).write_bytes(value)
        else:
            write_tree(root / name, value)


__all__ = ["KuboStore", "compute_multiaddr", "write_tree"]
