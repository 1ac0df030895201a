"""docker-compose.yml: valid Compose, and the topology the operations guide promises.

There is no Docker engine here, so the file cannot be run. Two checks instead:
- the Compose Specification itself, through ``compose_spec`` (bindings of the Rust
  ``compose_spec`` crate: unknown keys, bad durations, wrong types are errors), after YAML merge
  keys are resolved the way ``docker compose`` resolves them;
- what that parser leaves out and the topology needs: every ``depends_on`` names a service, every
  named volume is declared, each node has its own volume and a health check, exactly one node
  deploys the registry and the others join it, published ports do not clash.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec import PyCompose

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
NODES = ("node1", "node2", "node3")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _validate(document: dict[str, Any]) -> None:
    """Raise ``ValueError`` if ``document`` is not a valid Compose file."""
    PyCompose.from_yaml(yaml.safe_dump(document)).validate()


def test_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    _validate(compose)
    assert compose["name"] == "collegium"


def test_the_validator_rejects_what_compose_rejects(compose: dict[str, Any]) -> None:
    """The check above can fail: a misspelt key and a bad duration are refused."""
    typo = yaml.safe_load(yaml.safe_dump(compose))
    typo["services"]["node1"]["imagee"] = "x"
    with pytest.raises(ValueError, match="imagee"):
        _validate(typo)
    duration = yaml.safe_load(yaml.safe_dump(compose))
    duration["services"]["chain"]["healthcheck"]["interval"] = "5q"
    with pytest.raises(ValueError, match="duration"):
        _validate(duration)


def test_references_resolve(compose: dict[str, Any]) -> None:
    services = compose["services"]
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for dependency in service.get("depends_on") or {}:
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for mount in service.get("volumes") or []:
            source = str(mount).split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name} mounts undeclared volume {source}"


def test_chain_kubo_and_three_nodes_each_with_own_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["chain"]["image"].startswith("ghcr.io/foundry-rs/foundry")
    assert services["ipfs"]["image"].startswith("ipfs/kubo")
    assert any(str(v).startswith("chain:") for v in services["chain"]["volumes"])
    data_volumes = []
    for name in NODES:
        node = services[name]
        assert node["build"] == "."
        (mount,) = node["volumes"]
        volume, target = str(mount).split(":", 1)
        assert target == "/data"
        data_volumes.append(volume)
        assert node["depends_on"], f"{name} starts before what it needs"
    assert len(set(data_volumes)) == len(NODES), "nodes share a data volume"
    ports = [p for s in services.values() for p in s.get("ports") or []]
    published = [str(p).split(":", 1)[0] for p in ports]
    assert len(published) == len(set(published)), f"published ports clash: {published}"


def test_every_service_has_a_health_check(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name, service in compose["services"].items():
        if "build" in service:
            assert re.search(r"^HEALTHCHECK ", dockerfile, re.M), "node image: no HEALTHCHECK"
        else:
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    # node2/node3 wait for node1 to be healthy, i.e. for the registry to exist
    for name in NODES[1:]:
        assert compose["services"][name]["depends_on"]["node1"]["condition"] == "service_healthy"


def _script(service: dict[str, Any]) -> str:
    command = service["command"]
    if service.get("entrypoint") == ["sh", "-c"]:
        (script,) = command
        return str(script)
    return shlex.join(["collegium", *command])


def test_registry_deployed_once_the_others_join(compose: dict[str, Any]) -> None:
    services = compose["services"]
    deployer = _script(services["node1"])
    assert "--registry" not in deployer and deployer.startswith("collegium up")
    homes = set()
    for name in NODES[1:]:
        script = _script(services[name])
        # first start only: init against node1's registry, then always `up`
        assert script.startswith("[ -f /data/node.json ] || collegium init")
        assert '--registry "$$(python' in script and "http://node1:8000/health" in script
        assert "exec collegium up" in script
        homes.add(re.search(r"--home (\S+)", script).group(1))  # type: ignore[union-attr]
        assert f"HOSTNAME_ALIAS: {name}" in yaml.safe_dump(services[name]["environment"])
    assert len(homes) == 2, "node2 and node3 should host different home subsystems"
