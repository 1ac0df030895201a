"""UnixFS importer: bytes, files and directories to blocks, laid out exactly as kubo's ``ipfs add``.

Constants (kubo defaults, ``ipfs add`` without chunker/layout flags):

| name                 | value    | kubo / boxo source                                |
|----------------------|----------|---------------------------------------------------|
| ``CHUNK_SIZE``       | 262144   | ``chunker.DefaultBlockSize`` (``size-262144``)    |
| ``MAX_LINKS``        | 174      | ``helpers.DefaultLinksPerBlock``                  |
| ``HAMT_SHARDING_SIZE`` | 262144 | ``Import.UnixFSHAMTDirectorySizeThreshold``       |

Layout: boxo ``importer/balanced`` — the first chunk is the root; while data remains, a new root
one level deeper adopts the old root as its first child and is filled depth-first, each internal
node taking up to ``MAX_LINKS`` children. Leaves are raw blocks (``raw_leaves``, the default with
CIDv1) or UnixFS ``File`` nodes carrying the chunk (CIDv0). Internal nodes are UnixFS ``File``
nodes with ``filesize`` and one ``blocksizes`` entry per child; links have the empty name.

Functions here are pure apart from the ``sink`` callback, which receives every block
(``(binary_cid, bytes)``) children first, so a consumer may store each block as it comes:
a node is emitted only after every block it links to.
"""

from __future__ import annotations

import os
import stat as stat_mod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, Union

from node.storage.cids import CODEC_DAG_PB, CODEC_RAW, compute_cid_bytes
from node.storage.dagpb import PBLink, UnixFSData, UnixFSType, encode_pb_node, encode_unixfs
from node.storage.errors import DirectoryTooLarge, StoreError

CHUNK_SIZE: Final = 262144
MAX_LINKS: Final = 174
HAMT_SHARDING_SIZE: Final = 262144

#: ``(binary_cid, block_bytes)`` consumer of the blocks an import produces.
BlockSink = Callable[[bytes, bytes], None]
#: An in-memory directory: name -> file bytes or sub-directory (see ``import_tree``).
FileTree = Mapping[str, Union[bytes, "FileTree"]]


@dataclass(frozen=True)
class ImportParams:
    """How to import: CID version and leaf format (``raw_leaves=None`` means kubo's default)."""

    cid_version: int = 1
    raw_leaves: bool | None = None
    chunk_size: int = CHUNK_SIZE
    max_links: int = MAX_LINKS
    hidden: bool = False  # include dot-files when adding a directory (kubo ``--hidden``)

    def __post_init__(self) -> None:
        if self.cid_version not in (0, 1):
            raise StoreError(f"unknown CID version {self.cid_version}")

    @property
    def leaves_are_raw(self) -> bool:
        """Return whether leaves are raw blocks: kubo implies raw leaves with CIDv1 only."""
        return self.raw_leaves if self.raw_leaves is not None else self.cid_version == 1


@dataclass(frozen=True)
class DagLink:
    """The root of an imported DAG: binary CID, cumulative size (``Tsize``), content bytes."""

    cid: bytes
    tsize: int
    filesize: int


def iter_chunks(stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield ``stream`` in chunks of exactly ``chunk_size`` bytes (the last may be shorter)."""
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            return
        while len(chunk) < chunk_size:  # short read from a pipe or socket: keep filling
            more = stream.read(chunk_size - len(chunk))
            if not more:
                break
            chunk += more
        yield chunk
        if len(chunk) < chunk_size:
            return


def iter_bytes_chunks(data: bytes, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield ``data`` in chunks of ``chunk_size`` bytes."""
    view = memoryview(data)
    for start in range(0, len(data), chunk_size):
        yield bytes(view[start : start + chunk_size])


class _Lookahead:
    """A chunk iterator that can tell whether it is exhausted (boxo ``DagBuilderHelper.Done``)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._next: bytes | None = None
        self._advance()

    def _advance(self) -> None:
        for chunk in self._it:
            if chunk:
                self._next = chunk
                return
        self._next = None

    def done(self) -> bool:
        return self._next is None

    def pop(self) -> bytes:
        chunk = self._next
        assert chunk is not None
        self._advance()
        return chunk


def _emit_pb(node: bytes, params: ImportParams, sink: BlockSink) -> bytes:
    cid = compute_cid_bytes(node, codec=CODEC_DAG_PB, version=params.cid_version)
    sink(cid, node)
    return cid


def compute_leaf(chunk: bytes, params: ImportParams, sink: BlockSink) -> DagLink:
    """Return the link to a leaf holding ``chunk`` after emitting its block.

    Raw leaves are CIDv1 ``raw`` blocks; otherwise a UnixFS ``File`` node with ``Data`` and
    ``filesize`` (``Data`` absent for the empty file, as go-unixfs ``SetData(nil)``).
    """
    if params.leaves_are_raw:
        cid = compute_cid_bytes(chunk, codec=CODEC_RAW, version=1)
        sink(cid, chunk)
        return DagLink(cid, len(chunk), len(chunk))
    message = UnixFSData(UnixFSType.FILE, data=chunk or None, filesize=len(chunk))
    node = encode_pb_node((), encode_unixfs(message))
    return DagLink(_emit_pb(node, params, sink), len(node), len(chunk))


def compute_file_node(
    children: Sequence[DagLink], params: ImportParams, sink: BlockSink
) -> DagLink:
    """Return the link to an internal UnixFS ``File`` node over ``children``, emitting it."""
    filesize = sum(child.filesize for child in children)
    message = UnixFSData(
        UnixFSType.FILE,
        filesize=filesize,
        blocksizes=tuple(child.filesize for child in children),
    )
    links = [PBLink(child.cid, "", child.tsize) for child in children]
    node = encode_pb_node(links, encode_unixfs(message))
    tsize = len(node) + sum(child.tsize for child in children)
    return DagLink(_emit_pb(node, params, sink), tsize, filesize)


def import_chunks(chunks: Iterable[bytes], params: ImportParams, sink: BlockSink) -> DagLink:
    """Return the root of the balanced UnixFS DAG of a file given as ``chunks``.

    Chunks are consumed lazily: only one chunk and one path of internal nodes are in memory.
    """
    source = _Lookahead(chunks)
    if source.done():
        return compute_leaf(b"", params, sink)

    def fill(first: DagLink | None, depth: int) -> DagLink:
        children = [] if first is None else [first]
        while len(children) < params.max_links and not source.done():
            if depth == 1:
                children.append(compute_leaf(source.pop(), params, sink))
            else:
                children.append(fill(None, depth - 1))
        return compute_file_node(children, params, sink)

    root = compute_leaf(source.pop(), params, sink)
    depth = 1
    while not source.done():
        root = fill(root, depth)
        depth += 1
    return root


def import_bytes(data: bytes, params: ImportParams, sink: BlockSink) -> DagLink:
    """Return the root of the UnixFS DAG of ``data`` (as ``ipfs add`` of a file of those bytes)."""
    if len(data) <= params.chunk_size:  # one chunk (or none): the leaf is the root
        return compute_leaf(data, params, sink)
    return import_chunks(iter_bytes_chunks(data, params.chunk_size), params, sink)


def import_symlink(target: str, params: ImportParams, sink: BlockSink) -> DagLink:
    """Return the link to a UnixFS ``Symlink`` node pointing at ``target``, emitting it."""
    message = UnixFSData(UnixFSType.SYMLINK, data=os.fsencode(target))
    node = encode_pb_node((), encode_unixfs(message))
    return DagLink(_emit_pb(node, params, sink), len(node), 0)


def import_directory(
    entries: Sequence[tuple[str, DagLink]], params: ImportParams, sink: BlockSink
) -> DagLink:
    """Return the link to a basic UnixFS directory over ``entries``, emitting it.

    Links are sorted by the bytes of their names, as go-merkledag encodes them.
    Raises ``DirectoryTooLarge`` where kubo would switch to a HAMT-sharded directory.
    """
    estimated = sum(len(name.encode("utf-8")) + len(link.cid) for name, link in entries)
    if estimated >= HAMT_SHARDING_SIZE:
        raise DirectoryTooLarge(
            f"directory of {len(entries)} entries (~{estimated} bytes of links) would be "
            "HAMT-sharded by kubo; sharded directories are not supported"
        )
    ordered = sorted(entries, key=lambda item: item[0].encode("utf-8"))
    links = [PBLink(link.cid, name, link.tsize) for name, link in ordered]
    node = encode_pb_node(links, encode_unixfs(UnixFSData(UnixFSType.DIRECTORY)))
    tsize = len(node) + sum(link.tsize for _, link in ordered)
    return DagLink(_emit_pb(node, params, sink), tsize, 0)


def import_path(path: Path, params: ImportParams, sink: BlockSink) -> DagLink:
    """Return the root of ``path`` imported as ``ipfs add -r`` would (file, symlink or directory).

    Inside directories, names starting with ``.`` are skipped unless ``params.hidden``; symlinks
    are stored as UnixFS symlinks (not followed). Raises ``StoreError`` for special files.
    """
    info = os.lstat(path)
    if stat_mod.S_ISLNK(info.st_mode):
        return import_symlink(os.readlink(path), params, sink)
    if stat_mod.S_ISREG(info.st_mode):
        with open(path, "rb") as stream:
            return import_chunks(iter_chunks(stream, params.chunk_size), params, sink)
    if stat_mod.S_ISDIR(info.st_mode):
        entries: list[tuple[str, DagLink]] = []
        for name in sorted(os.listdir(path)):
            if name.startswith(".") and not params.hidden:
                continue
            entries.append((name, import_path(path / name, params, sink)))
        return import_directory(entries, params, sink)
    raise StoreError(f"unrecognized file type for {path}: not a file, directory or symlink")


def import_tree(tree: FileTree, params: ImportParams, sink: BlockSink) -> DagLink:
    """Return the root of the in-memory directory ``tree`` imported as ``import_path`` imports
    the same files from disk (no temporary files): the same blocks, so the same CIDs.

    Raises ``DirectoryTooLarge`` where kubo would shard a directory.
    """
    entries: list[tuple[str, DagLink]] = []
    for name, item in tree.items():
        if isinstance(item, bytes):
            entries.append((name, import_bytes(item, params, sink)))
        else:
            entries.append((name, import_tree(item, params, sink)))
    return import_directory(entries, params, sink)
