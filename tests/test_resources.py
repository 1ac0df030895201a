"""node.resources: the checkout's directories win inside a checkout; the wheel's package data
otherwise (tests/deploy/test_wheel.py runs the installed case for real); neither is an error
that names both places."""

from __future__ import annotations

from pathlib import Path

import pytest

import node.resources as resources
from node.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_inside_the_checkout_its_sources_are_used() -> None:
    assert resources.source_checkout() == ROOT
    assert resources.contracts_dir() == ROOT / "contracts" / "build"
    assert resources.migrations_dir() == ROOT / "migrations"
    # inside the migrations directory, so the wheel carries it by the same rule
    assert resources.subsystem_migrations_dir() == ROOT / "migrations" / "subsystem"
    assert (resources.subsystem_migrations_dir() / "env.py").is_file()
    assert resources.frontend_dir() == ROOT / "frontend" / "dist"


def test_without_a_checkout_the_bundle_is_used_or_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resources, "_CHECKOUT", tmp_path / "site-packages")
    assert resources.source_checkout() is None
    bundle = tmp_path / "node" / "_bundle"
    monkeypatch.setattr(resources, "bundled", lambda name: bundle / name)
    with pytest.raises(ConfigError, match=r"no migrations files: neither .*_bundle/migrations"):
        resources.migrations_dir()
    (bundle / "migrations").mkdir(parents=True)
    assert resources.migrations_dir() == bundle / "migrations"
    with pytest.raises(KeyError):
        resources.locate("secrets")
