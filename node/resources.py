"""Files the node needs besides its code: contract artifacts, Alembic migrations, the built
front-end.

Their sources stay at the top of the repository (``contracts/build``, ``migrations``,
``frontend/dist``). A wheel carries copies of them as package data under ``node/_bundle``
(``setup.py`` copies them at build time), found here with :mod:`importlib.resources`. Inside a
source checkout (an editable install, or the tests) the checkout's own directories win, so a
freshly rebuilt contract or front-end is what the node uses.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Final

from node.errors import ConfigError

BUNDLE_PACKAGE: Final = "node"
BUNDLE_DIR: Final = "_bundle"
#: name in the bundle -> its source directory, relative to the repository root
SOURCES: Final[dict[str, str]] = {
    "contracts": "contracts/build",
    "migrations": "migrations",
    "frontend": "frontend/dist",
}
#: the subsystem databases' Alembic environment, inside the migrations directory
SUBSYSTEM_MIGRATIONS: Final = "subsystem"
_CHECKOUT: Final = Path(__file__).resolve().parents[1]


def source_checkout() -> Path | None:
    """Return the source checkout this package was imported from, or None (a wheel install)."""
    if (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "node").is_dir():
        return _CHECKOUT
    return None


def bundled(name: str) -> Path:
    """Return the wheel's copy of ``name`` (a key of ``SOURCES``); it may not exist."""
    if name not in SOURCES:
        raise KeyError(name)
    return Path(str(resources.files(BUNDLE_PACKAGE).joinpath(BUNDLE_DIR, name)))


def locate(name: str) -> Path:
    """Return the directory of ``name`` (``contracts``, ``migrations`` or ``frontend``):
    the source checkout's when there is one, else the wheel's package data.

    Raises ``ConfigError`` naming both places when neither exists.
    """
    if name not in SOURCES:
        raise KeyError(name)
    checkout = source_checkout()
    if checkout is not None:
        source = checkout / SOURCES[name]
        if source.is_dir():
            return source
    packaged = bundled(name)
    if packaged.is_dir():
        return packaged
    where = f"{checkout / SOURCES[name]} nor " if checkout is not None else ""
    raise ConfigError(
        f"no {name} files: neither {where}{packaged} exists "
        "(reinstall the wheel, or build them in the checkout: see README)"
    )


def contracts_dir() -> Path:
    """Return the directory holding the contract artifacts (``<Contract>.json``)."""
    return locate("contracts")


def migrations_dir() -> Path:
    """Return the Alembic script directory of the index database."""
    return locate("migrations")


def subsystem_migrations_dir() -> Path:
    """Return the Alembic script directory of the subsystem databases."""
    return migrations_dir() / SUBSYSTEM_MIGRATIONS


def frontend_dir() -> Path:
    """Return the built front-end (the directory holding ``index.html``)."""
    return locate("frontend")


__all__ = [
    "BUNDLE_DIR",
    "SOURCES",
    "bundled",
    "contracts_dir",
    "frontend_dir",
    "locate",
    "migrations_dir",
    "source_checkout",
    "subsystem_migrations_dir",
]
