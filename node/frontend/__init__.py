"""Front-ends: publish a built web app to the content store and the registry.

``publish`` adds the build directory (``frontend/dist``) as a UnixFS directory, records its
CID in the registry (``setFrontend``, system admins only) and pins it. Every node then serves
``/`` from that CID (:mod:`node.frontend.routes`); peers fetch and pin it through the syncer.

``publish_subsystem`` does the same for one subsystem's own UI bundle
(``setSubsystemFrontend``, that subsystem's admins only); it is served at ``/s/<name>/`` by
the hosts of the subsystem's ``fe_subsystem`` role, the system UI being the fallback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from node.errors import CollegiumError
from node.resources import frontend_dir
from node.storage.base import BlockStore

INDEX_FILE: Final = "index.html"
CID_VERSION: Final = 1


class FrontendError(CollegiumError):
    """The front-end cannot be published or served."""


class NotSystemAdmin(FrontendError):
    """Only a system admin of the registry may publish the system front-end."""

    def __init__(self, account: str) -> None:
        self.account = account
        super().__init__(f"{account} is not a system admin of the registry: it cannot publish")


class NotSubsystemAdmin(FrontendError):
    """Only an admin of a subsystem may publish that subsystem's front-end."""

    def __init__(self, account: str, name: str) -> None:
        self.account = account
        self.name = name
        super().__init__(f"{account} is not an admin of subsystem {name!r}: it cannot publish")


def default_build_dir(configured: Path | None) -> Path:
    """Return the build directory: ``configured`` (``Settings.frontend_dir``, from
    ``$COLLEGIUM_FRONTEND_DIR``), else the bundled front-end (the checkout's
    ``frontend/dist``, or the wheel's copy: :mod:`node.resources`)."""
    return configured.expanduser() if configured is not None else frontend_dir()


def check_build_dir(build_dir: Path) -> Path:
    """Return ``build_dir`` resolved; raise ``FrontendError`` unless it holds ``index.html``."""
    resolved = build_dir.expanduser().resolve()
    if not (resolved / INDEX_FILE).is_file():
        raise FrontendError(
            f"{resolved} has no {INDEX_FILE}: "
            "build the front-end first (cd frontend && npm run build)"
        )
    return resolved


def publish(store: BlockStore, registry: Any, build_dir: Path) -> str:
    """Return the CID of ``build_dir`` after adding it to ``store``, recording it in the registry
    and pinning it.

    ``registry`` is a :class:`node.chain.registry.Registry` with a signing account. Raises
    ``FrontendError`` for a missing build, ``NotSystemAdmin`` when the account may not publish,
    ``StoreError``/``ChainError`` when the store or the chain fails.
    """
    directory = check_build_dir(build_dir)
    account = getattr(registry, "account", None)
    if account is None:
        raise FrontendError("the registry binding has no account: it cannot publish")
    if not registry.is_system_admin(account.address):
        raise NotSystemAdmin(str(account.address))
    cid = store.add_path(directory, cid_version=CID_VERSION, pin=True)
    if registry.frontend_cid() != cid:
        registry.set_frontend(cid)
    store.pin(cid)
    return cid


def publish_subsystem(store: BlockStore, registry: Any, name: str, build_dir: Path) -> str:
    """Return the CID of ``build_dir`` after adding it to ``store``, recording it as the
    front-end of subsystem ``name`` in the registry and pinning it.

    Raises ``FrontendError`` for a missing build or an unknown subsystem,
    ``NotSubsystemAdmin`` when the registry's account is not an admin of ``name``,
    ``StoreError``/``ChainError`` when the store or the chain fails.
    """
    directory = check_build_dir(build_dir)
    account = getattr(registry, "account", None)
    if account is None:
        raise FrontendError("the registry binding has no account: it cannot publish")
    if not registry.subsystem_exists(name):
        raise FrontendError(f"no subsystem {name!r} in the registry")
    if not registry.is_subsystem_admin(name, account.address):
        raise NotSubsystemAdmin(str(account.address), name)
    cid = store.add_path(directory, cid_version=CID_VERSION, pin=True)
    if registry.subsystem_frontend(name) != cid:
        registry.set_subsystem_frontend(name, cid)
    store.pin(cid)
    return cid


__all__ = [
    "FrontendError",
    "NotSubsystemAdmin",
    "NotSystemAdmin",
    "check_build_dir",
    "default_build_dir",
    "publish",
    "publish_subsystem",
]
