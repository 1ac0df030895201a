"""UnixFS reader: path resolution, stat and ranged file reads over any ``get_block`` function.

Pure apart from the ``get_block`` callable (which must return verified bytes or raise
``NotFoundInStore``), so the same code serves the embedded store and the tests' references.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from multiformats import CID

from node.storage.base import DirEntry, NodeKind, NodeStat
from node.storage.cids import CODEC_DAG_PB, CODEC_RAW, format_cid, parse_cid
from node.storage.dagpb import PBNode, UnixFSData, UnixFSType, decode_pb_node, decode_unixfs
from node.storage.errors import (
    InvalidPath,
    IsADirectory,
    NotADirectory,
    NotFoundInStore,
    UnsupportedNode,
)

GetBlock = Callable[[CID], bytes]


@dataclass(frozen=True)
class DecodedNode:
    """A block decoded as UnixFS: its kind, and for dag-pb the node and its UnixFS data."""

    kind: NodeKind
    block: bytes
    pb: PBNode | None = None
    unixfs: UnixFSData | None = None


def compute_path_segments(path: str) -> list[str]:
    """Return the names along ``path`` (``"a/b.txt"`` → ``["a", "b.txt"]``).

    Empty segments are ignored. Raises ``InvalidPath`` for ``.``/``..`` segments or NUL bytes.
    """
    segments = []
    for segment in path.split("/"):
        if not segment:
            continue
        if segment in (".", "..") or "\x00" in segment:
            raise InvalidPath(f"invalid path segment {segment!r} in {path!r}")
        segments.append(segment)
    return segments


def decode_node(cid: CID, block: bytes) -> DecodedNode:
    """Return ``block`` (the bytes of ``cid``) decoded as a UnixFS node.

    Raises ``UnsupportedNode`` for codecs other than dag-pb/raw, HAMT shards and non-UnixFS dag-pb.
    """
    codec = cid.codec.name
    if codec == CODEC_RAW:
        return DecodedNode("raw", block)
    if codec != CODEC_DAG_PB:
        raise UnsupportedNode(f"codec {codec} of {format_cid(cid)} is not UnixFS")
    pb = decode_pb_node(block)
    if pb.data is None:
        raise UnsupportedNode(f"{format_cid(cid)} is a dag-pb node without UnixFS data")
    unixfs = decode_unixfs(pb.data)
    if unixfs.type in (UnixFSType.FILE, UnixFSType.RAW):
        kind: NodeKind = "file"
    elif unixfs.type == UnixFSType.DIRECTORY:
        kind = "dir"
    elif unixfs.type == UnixFSType.SYMLINK:
        kind = "symlink"
    else:
        raise UnsupportedNode(f"UnixFS type {unixfs.type.name} of {format_cid(cid)} not supported")
    return DecodedNode(kind, block, pb, unixfs)


def compute_content_size(node: DecodedNode) -> int:
    """Return the content length of a file/raw/symlink node, or the DAG size of a directory."""
    if node.kind == "raw":
        return len(node.block)
    assert node.pb is not None and node.unixfs is not None
    if node.kind == "dir":
        return len(node.block) + sum(link.tsize or 0 for link in node.pb.links)
    if node.kind == "symlink":
        return len(node.unixfs.data or b"")
    if node.unixfs.filesize is not None:
        return node.unixfs.filesize
    return len(node.unixfs.data or b"") + sum(node.unixfs.blocksizes)


def get_child_cids(cid: CID, block: bytes) -> list[CID]:
    """Return the CIDs ``block`` links to (none for raw blocks and non-dag-pb codecs)."""
    if cid.codec.name != CODEC_DAG_PB:
        return []
    return [parse_cid(link.hash) for link in decode_pb_node(block).links]


def resolve_path(get_block: GetBlock, root: CID, path: str) -> CID:
    """Return the CID reached by following ``path`` from the directory ``root``.

    Raises ``NotADirectory`` when a segment is looked up in a file, ``NotFoundInStore`` when no
    entry has that name, ``InvalidPath`` for ``..``-style segments.
    """
    cid = root
    for segment in compute_path_segments(path):
        node = decode_node(cid, get_block(cid))
        if node.kind != "dir":
            raise NotADirectory(f"{format_cid(cid)} is a {node.kind}, cannot look up {segment!r}")
        assert node.pb is not None
        for link in node.pb.links:
            if link.name == segment:
                cid = parse_cid(link.hash)
                break
        else:
            raise NotFoundInStore(f"no entry named {segment!r} in {format_cid(cid)}")
    return cid


def stat_node(get_block: GetBlock, cid: CID) -> NodeStat:
    """Return the ``NodeStat`` of ``cid``, listing entries if it is a directory."""
    node = decode_node(cid, get_block(cid))
    entries: list[DirEntry] = []
    if node.kind == "dir":
        assert node.pb is not None
        for link in node.pb.links:
            child = parse_cid(link.hash)
            try:
                child_node = decode_node(child, get_block(child))
                kind: NodeKind = child_node.kind
                size = compute_content_size(child_node)
            except NotFoundInStore:
                kind, size = "unknown", link.tsize or 0
            entries.append(DirEntry(link.name or "", format_cid(child), size, kind))
    return NodeStat(format_cid(cid), node.kind, compute_content_size(node), tuple(entries))


def iter_file_range(
    get_block: GetBlock, cid: CID, offset: int = 0, length: int | None = None
) -> Iterator[bytes]:
    """Yield the bytes ``[offset, offset + length)`` of the file ``cid``, fetching only the
    blocks that overlap the range.

    Raises ``IsADirectory`` if ``cid`` is a directory, ``UnsupportedNode`` on malformed files.
    """
    node = decode_node(cid, get_block(cid))
    if node.kind == "dir":
        raise IsADirectory(f"{format_cid(cid)} is a directory")
    size = compute_content_size(node)
    end = size if length is None else min(size, offset + length)
    if offset >= end:
        return
    yield from _iter_node_range(get_block, cid, node, offset, end)


def _iter_node_range(
    get_block: GetBlock, cid: CID, node: DecodedNode, start: int, end: int
) -> Iterator[bytes]:
    if node.kind == "raw":
        piece = node.block[start:end]
        if piece:
            yield piece
        return
    assert node.pb is not None and node.unixfs is not None
    if node.kind == "symlink":
        piece = (node.unixfs.data or b"")[start:end]
        if piece:
            yield piece
        return
    data = node.unixfs.data or b""
    pos = len(data)
    if start < pos:
        yield data[start:end]
    if len(node.unixfs.blocksizes) != len(node.pb.links):
        raise UnsupportedNode(
            f"{format_cid(cid)}: {len(node.pb.links)} links but "
            f"{len(node.unixfs.blocksizes)} blocksizes"
        )
    for link, blocksize in zip(node.pb.links, node.unixfs.blocksizes, strict=True):
        child_start, child_end = pos, pos + blocksize
        pos = child_end
        if child_end <= start:
            continue
        if child_start >= end:
            break
        child = parse_cid(link.hash)
        child_node = decode_node(child, get_block(child))
        yield from _iter_node_range(
            get_block,
            child,
            child_node,
            max(start - child_start, 0),
            min(end, child_end) - child_start,
        )
