"""The gateway's CAR answer: a whole DAG (or one block) as one CARv1 stream, depth first.

``GET /ipfs/{cid}?format=car`` (or ``Accept: application/vnd.ipld.car``) streams the blocks
the store holds under ``cid``, each exactly once (``dups=n``), in depth-first, first-seen
order (``order=dfs``): a block always comes after the block that links to it, so a client
can check as it reads that every block belongs to the DAG it asked for. Only blocks that
``GET /ipfs/{cid}?format=raw`` already serves to anyone are served (the DAG's own blocks
from the local store, re-hashed as they are read); a stranger gets nothing through a CAR
that it could not get block by block, and no more bytes in one request than a whole-file
``GET /ipfs/{cid}`` gives (the same rate limit counts both as one request).

Parameters (the trustless gateway spec): ``dag-scope`` ``all`` (default) or ``block``;
``car-version`` ``1``; ``car-order`` ``dfs`` or ``unk``; ``car-dups`` ``n`` or ``y`` (the
answer never repeats a block and says ``dups=n``). A CAR with a content path, another
``dag-scope`` (``entity``, ``entity-bytes``) or version is refused with 400.

| constant            | value   | meaning                                                     |
|---------------------|---------|-------------------------------------------------------------|
| ``MAX_CAR_BLOCKS``  | 65,536  | a stream ends after this many blocks                        |
| ``MAX_CAR_BYTES``   | 256 MiB | a DAG declaring more (dag-pb link sizes) is refused with    |
|                     |         | 400 ``car-too-large`` before streaming; a stream ends there |

A stream that meets a block the store lacks (or holds corrupted) ends early, as the spec
says: the CAR is then incomplete and the client fetches the rest elsewhere. So a CAR is sent
with ``Cache-Control: no-cache``, not as immutable as the other answers for a CID.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from multiformats import CID

from node.storage.base import BlockStore
from node.storage.car import CAR_MEDIA_TYPE, encode_header, encode_section
from node.storage.cids import (
    CODEC_DAG_PB,
    check_cid_bytes,
    compute_block_key_of_cid_bytes,
    format_cid,
    format_cid_bytes,
    get_codec_of_cid_bytes,
)
from node.storage.dagpb import decode_pb_node
from node.storage.errors import BlockCorrupted, NotFoundInStore, StoreError

log = logging.getLogger(__name__)

MAX_CAR_BLOCKS: Final = 65_536
MAX_CAR_BYTES: Final = 256 * 1024 * 1024
CAR_CONTENT_TYPE: Final = f"{CAR_MEDIA_TYPE}; version=1; order=dfs; dups=n"
DAG_SCOPES: Final = ("all", "block")


class CarRequestError(Exception):
    """A CAR request the gateway will not answer: ``kind`` names the problem (400)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class CarRequest:
    """What a CAR request asks for: the root and how much of its DAG."""

    root: CID
    scope: str

    @property
    def name(self) -> str:
        """Return the root's CID string."""
        return format_cid(self.root)

    @property
    def etag(self) -> str:
        """Return the response's ETag (unique per root and scope, as the spec asks)."""
        return f'"{format_cid(self.root)}.car.dfs.n.{self.scope}"'


def parse_car_request(root: CID, segments: list[str], params: Mapping[str, str]) -> CarRequest:
    """Return the CAR request for ``root`` with the query ``params``; raises
    ``CarRequestError`` for a path or a parameter value this gateway does not serve."""
    if segments:
        raise CarRequestError(
            "unsupported-car-path", "a CAR is served for a bare CID only (no content path)"
        )
    if "entity-bytes" in params:
        raise CarRequestError("unsupported-car-scope", "entity-bytes is not supported")
    scope = params.get("dag-scope", "all")
    if scope not in DAG_SCOPES:
        raise CarRequestError(
            "unsupported-car-scope", f"dag-scope {scope!r} is not supported (all, block)"
        )
    checks = {"car-version": ("1",), "car-order": ("dfs", "unk"), "car-dups": ("n", "y")}
    for name, allowed in checks.items():
        value = params.get(name)
        if value is not None and value not in allowed:
            raise CarRequestError(
                "unsupported-car-parameter", f"{name}={value!r} is not supported ({allowed})"
            )
    return CarRequest(root, scope)


def compute_declared_size(root: CID, block: bytes) -> int:
    """Return the DAG size ``root`` declares: its own bytes plus its dag-pb links' sizes."""
    if root.codec.name != CODEC_DAG_PB:
        return len(block)
    try:
        links = decode_pb_node(block).links
    except StoreError:
        return len(block)
    return len(block) + sum(link.tsize or 0 for link in links)


def check_car_size(request: CarRequest, block: bytes) -> None:
    """Raise ``CarRequestError`` (``car-too-large``) if the DAG of ``request`` declares more
    than ``MAX_CAR_BYTES``."""
    if request.scope == "block":
        return
    declared = compute_declared_size(request.root, block)
    if declared > MAX_CAR_BYTES:
        raise CarRequestError(
            "car-too-large",
            f"the DAG declares {declared} bytes, more than one CAR carries ({MAX_CAR_BYTES});"
            " ask for its sub-DAGs, or blocks with ?format=raw",
        )


def iter_car_stream(
    store: BlockStore,
    request: CarRequest,
    root_block: bytes,
    on_corrupted: Callable[[str], None],
) -> Iterator[bytes]:
    """Yield the CAR of ``request``: header, root (already read), then the DAG depth first.

    Ends early (an incomplete CAR) at a block the store lacks or holds corrupted (reported to
    ``on_corrupted``), or at ``MAX_CAR_BLOCKS`` / ``MAX_CAR_BYTES``. CIDs stay binary.
    """
    root = bytes(request.root)
    yield encode_header([request.root])
    yield encode_section(root, root_block)
    if request.scope == "block":
        return
    sent = {compute_block_key_of_cid_bytes(root)}
    total = len(root_block)
    stack = list(reversed(_links(root, root_block)))
    while stack:
        cid = stack.pop()
        try:
            check_cid_bytes(cid)
            key = compute_block_key_of_cid_bytes(cid)
        except StoreError:  # a link that is no CID: nothing to send for it
            log.warning("CAR of %s: a link is not a CID: %s", request.name, cid.hex())
            continue
        if key in sent:
            continue
        if len(sent) >= MAX_CAR_BLOCKS or total > MAX_CAR_BYTES:
            log.warning("CAR of %s cut at %d blocks, %d bytes", request.name, len(sent), total)
            return
        name = format_cid_bytes(cid)
        try:
            data = store.get_block(name)
        except NotFoundInStore:
            log.info("CAR of %s ends early: block %s is not here", request.name, name)
            return
        except BlockCorrupted as exc:
            on_corrupted(exc.cid)
            return
        sent.add(key)
        total += len(data)
        yield encode_section(cid, data)
        stack.extend(reversed(_links(cid, data)))


def _links(cid: bytes, data: bytes) -> list[bytes]:
    """Return the binary CIDs a block links to (dag-pb only; a block that does not decode is
    sent as a leaf, as the store's own walks treat it)."""
    if get_codec_of_cid_bytes(cid) != CODEC_DAG_PB:
        return []
    try:
        return [link.hash for link in decode_pb_node(data).links]
    except StoreError as exc:
        log.warning("block %s in a CAR has no readable links: %s", format_cid_bytes(cid), exc)
        return []
