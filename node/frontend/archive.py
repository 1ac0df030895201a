"""A front-end build uploaded as one archive (``.tar``, ``.tar.gz`` or ``.zip``), unpacked in
memory into a file tree for ``BlockStore.add_tree`` (the CID ``ipfs add -r`` gives the same
files on disk).

Only regular files and directories are taken; a link, a device, an absolute path, a ``..``
or a name the UnixFS importer would refuse makes the archive invalid (``BadArchive``). The
unpacked size and the file count are bounded (a small archive may unpack to gigabytes). When
the archive holds one top-level folder (``dist/index.html``…), that folder is the build.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
import zlib
from typing import Final

from node.frontend import INDEX_FILE, FrontendError

#: Upload size: the archive as sent (the node's body limit for this route).
MAX_ARCHIVE_BYTES: Final = 16 * 1024 * 1024
#: Unpacked size of all files together.
MAX_UNPACKED_BYTES: Final = 64 * 1024 * 1024
MAX_FILES: Final = 4096
MAX_PATH_CHARS: Final = 1024
GZIP_MAGIC: Final = b"\x1f\x8b"
ZIP_MAGIC: Final = b"PK\x03\x04"
TAR_MAGIC_OFFSET: Final = 257

Tree = dict[str, "bytes | Tree"]


class BadArchive(FrontendError):
    """The upload is not a usable build archive (400)."""


def unpack_build(data: bytes) -> Tree:
    """Return the build in ``data`` (a tar, gzip'd tar or zip) as a tree of name -> bytes or
    sub-tree, rooted at the folder holding ``index.html``. Raises ``BadArchive``."""
    if data[:2] == GZIP_MAGIC:
        data = _gunzip(data)
    if data[:4] == ZIP_MAGIC:
        files = _zip_files(data)
    elif data[TAR_MAGIC_OFFSET : TAR_MAGIC_OFFSET + 5] == b"ustar":
        files = _tar_files(data)
    else:
        raise BadArchive("not a .tar, .tar.gz or .zip archive")
    return _root_of(_tree_of(files))


def _gunzip(data: bytes) -> bytes:
    out = io.BytesIO()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            while chunk := stream.read(1024 * 1024):
                out.write(chunk)
                if out.tell() > MAX_UNPACKED_BYTES + 1024 * 1024:  # files + tar headers
                    raise BadArchive(f"the archive unpacks to more than {MAX_UNPACKED_BYTES} bytes")
    except (OSError, EOFError, zlib.error) as exc:
        raise BadArchive(f"a broken gzip stream: {exc}") from exc
    return out.getvalue()


def _tar_files(data: bytes) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if member.isdir():
                    continue
                if not member.isfile():
                    raise BadArchive(f"{member.name!r} is not a regular file or folder")
                total = _count(files, total, member.size)
                extracted = tar.extractfile(member)
                assert extracted is not None  # a regular file
                files[_clean(member.name)] = extracted.read()
    except tarfile.TarError as exc:
        raise BadArchive(f"a broken tar archive: {exc}") from exc
    return files


def _zip_files(data: bytes) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    total = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                mode = info.external_attr >> 16
                if mode and (mode & 0o170000) not in (0, 0o100000):
                    raise BadArchive(f"{info.filename!r} is not a regular file or folder")
                total = _count(files, total, info.file_size)
                content = archive.read(info)
                if len(content) != info.file_size:
                    raise BadArchive(f"{info.filename!r} is not the size the archive says")
                files[_clean(info.filename)] = content
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError) as exc:
        raise BadArchive(f"a broken zip archive: {exc}") from exc
    return files


def _count(files: dict[str, bytes], total: int, size: int) -> int:
    if len(files) >= MAX_FILES:
        raise BadArchive(f"more than {MAX_FILES} files")
    total += size
    if total > MAX_UNPACKED_BYTES:
        raise BadArchive(f"the files add up to more than {MAX_UNPACKED_BYTES} bytes")
    return total


def _clean(name: str) -> str:
    """Return ``name`` as a relative path with ``/`` separators; refuse anything else."""
    if len(name) > MAX_PATH_CHARS or "\\" in name or "\x00" in name:
        raise BadArchive(f"an unusable file name {name[:80]!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or not parts or ".." in parts:
        raise BadArchive(f"{name[:80]!r} points outside the build")
    return "/".join(parts)


def _tree_of(files: dict[str, bytes]) -> Tree:
    root: Tree = {}
    for path, content in files.items():
        *folders, leaf = path.split("/")
        node = root
        for folder in folders:
            child = node.setdefault(folder, {})
            if not isinstance(child, dict):
                raise BadArchive(f"{path!r}: {folder!r} is both a file and a folder")
            node = child
        if leaf in node:
            raise BadArchive(f"{path!r} appears twice")
        node[leaf] = content
    return root


def _root_of(tree: Tree) -> Tree:
    if isinstance(tree.get(INDEX_FILE), bytes):
        return tree
    if len(tree) == 1:
        (only,) = tree.values()
        if isinstance(only, dict) and isinstance(only.get(INDEX_FILE), bytes):
            return only
    raise BadArchive(
        f"no {INDEX_FILE} at the top of the archive (or of its one top-level folder): "
        "archive the built front-end (e.g. dist/)"
    )


def count_files(tree: Tree) -> tuple[int, int]:
    """Return (files, bytes) in ``tree``."""
    files = size = 0
    for value in tree.values():
        if isinstance(value, dict):
            f, s = count_files(value)
            files, size = files + f, size + s
        else:
            files, size = files + 1, size + len(value)
    return files, size
