"""Uploading a subsystem's front-end build (``POST /api/v1/subsystems/{name}/frontend``) and
publishing it with the admin's signed, relayed ``setSubsystemFrontend``; the archive reader."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path
from typing import Final

import httpx
import pytest
from eth_account import Account

from node.client import Client, ClientError
from node.frontend.archive import MAX_ARCHIVE_BYTES, BadArchive, unpack_build
from tests.auth.siwe_helpers import bearer_login
from tests.frontend.test_publish import tiny_bundle
from tests.support.node import InProcessNode

UPLOAD: Final = "/api/v1/subsystems/{}/frontend"


def tar_of(directory: Path, top: str = ".", gz: bool = False) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz" if gz else "w") as tar:
        tar.add(directory, arcname=top)
    return out.getvalue()


def zip_of(directory: Path, top: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, f"{top}/{path.relative_to(directory)}")
    return out.getvalue()


def test_an_admin_uploads_a_build_and_publishes_it_signed(
    node: InProcessNode, tmp_path: Path
) -> None:
    owner, stranger = Account.create(), Account.create()
    Client(node.url, owner).create_subsystem("loom")
    bundle = tiny_bundle(tmp_path, "loom")
    expected = node.node.store.add_path(bundle, cid_version=1, pin=False, only_hash=True)
    size = sum(p.stat().st_size for p in bundle.rglob("*.*"))
    url = node.url + UPLOAD.format("loom")
    mine = bearer_login(node.url, owner)

    assert httpx.post(url, content=tar_of(bundle), timeout=10).status_code == 401
    refused = httpx.post(url, content=tar_of(bundle), headers=bearer_login(node.url, stranger))
    assert refused.status_code == 403 and "not an admin of 'loom'" in refused.json()["detail"]
    unknown = httpx.post(node.url + UPLOAD.format("nowhere"), content=b"x", headers=mine)
    assert unknown.status_code == 404
    junk = httpx.post(url, content=b"not an archive", headers=mine, timeout=10)
    assert junk.status_code == 400 and ".zip" in junk.json()["detail"]
    big = httpx.post(url, content=b"\0" * (MAX_ARCHIVE_BYTES + 1), headers=mine, timeout=30)
    assert big.status_code == 413 and str(MAX_ARCHIVE_BYTES) in big.json()["detail"]

    for archive in (tar_of(bundle), tar_of(bundle, "dist", gz=True), zip_of(bundle, "build")):
        done = httpx.post(url, content=archive, headers=mine, timeout=30)
        assert done.status_code == 201, done.text
        assert done.json() == {"subsystem": "loom", "cid": expected, "files": 2, "bytes": size}
    assert expected in node.node.store.pins()

    with pytest.raises(ClientError) as not_admin:  # the relayed action refused too
        Client(node.url, stranger).set_subsystem_frontend("loom", expected)
    assert not_admin.value.status == 403
    assert (
        httpx.get(node.url + "/s/loom/", timeout=10)
        .headers["x-collegium-frontend"]
        .startswith("system fallback")
    )  # cached for 10 s, but the relay below forgets it
    Client(node.url, owner).set_subsystem_frontend("loom", expected)
    served = httpx.get(node.url + "/s/loom/", timeout=10)
    assert served.content == (bundle / "index.html").read_bytes()
    assert node.node.chain.w3.eth.get_balance(owner.address) == 0


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (tarfile.TarInfo("../evil.html"), "outside the build"),
        (tarfile.TarInfo("/etc/index.html"), "outside the build"),
    ],
)
def test_an_archive_cannot_reach_outside_the_build(member: tarfile.TarInfo, reason: str) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("index.html"), io.BytesIO(b""))
        tar.addfile(member, io.BytesIO(b""))
    with pytest.raises(BadArchive, match=reason):
        unpack_build(out.getvalue())


def test_an_archive_without_index_or_with_a_link_is_refused() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        link = tarfile.TarInfo("index.html")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(BadArchive, match="not a regular file"):
        unpack_build(out.getvalue())
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a/index.html", b"")
        archive.writestr("b/index.html", b"")
    with pytest.raises(BadArchive, match="no index.html"):
        unpack_build(out.getvalue())
