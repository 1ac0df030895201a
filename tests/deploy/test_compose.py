"""docker-compose.yml: valid Compose, the topology the operations guide promises, and a check
for each defect the first real bring-up found (test_compose_up.py brings it up for real).

Static checks, so they run wherever the suite runs:
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
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec import PyCompose

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENTRYPOINT = ROOT / "deploy" / "chain" / "entrypoint.sh"
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
    assert re.search(r"^HEALTHCHECK .*--start-period=", dockerfile, re.M), "image: no start period"
    for name, service in compose["services"].items():
        check = service.get("healthcheck", {})
        assert check.get("test"), f"{name} has no health check"
        assert check.get("start_period"), f"{name}'s health check has no start_period"
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
        # first start only: init against node1's registry (checked, retried), then always `up`
        assert script.startswith("{ [ -f /data/node.json ] || collegium init")
        assert "--registry-from http://node1:8000;" in script and '--registry "' not in script
        assert "exec collegium up" in script and f"--public-url http://{name}:8000" in script
        homes.add(re.search(r"--home (\S+)", script).group(1))  # type: ignore[union-attr]
    assert len(homes) == 2, "node2 and node3 should host different home subsystems"


def test_chain_keeps_blocks_coming_and_its_state_safe(compose: dict[str, Any]) -> None:
    """Defects 1-3: blocks on an idle chain, historical states across restarts, periodic saves."""
    chain = compose["services"]["chain"]
    args = chain["entrypoint"]
    assert args[:2] == ["/bin/sh", "/collegium/chain-entrypoint.sh"]
    assert "--block-time" in args and float(args[args.index("--block-time") + 1]) <= 2
    mounts = [str(mount).split(":") for mount in chain["volumes"]]
    script = next(ROOT / source for source, target, *_ in mounts if target == args[1])
    assert script == ENTRYPOINT and script.is_file()
    # the state options the script adds (tests/deploy/test_chain_entrypoint.py runs it)
    text = script.read_text()
    assert "--dump-state .save" in text and "--load-state $STATE" in text
    assert "--preserve-historical-states" in text
    interval = re.search(r"--state-interval \"\$\{CHAIN_STATE_INTERVAL:-(\d+)\}\"", text)
    assert interval and int(interval.group(1)) <= 10


def test_one_image_built_once(compose: dict[str, Any]) -> None:
    """Defect 6: the nodes share one image name; only node1 builds it."""
    services = compose["services"]
    images = {services[name].get("image") for name in NODES}
    assert len(images) == 1 and None not in images, images
    builders = [name for name in NODES if "build" in services[name]]
    assert builders == ["node1"], builders
    assert services["node1"]["build"]["args"]["PYTHON_IMAGE"].endswith(":-python:3.11-slim}")


def test_no_admin_port_beyond_loopback(compose: dict[str, Any]) -> None:
    """Defect 8: the chain's unauthenticated JSON-RPC on loopback only; kubo's RPC never."""
    services = compose["services"]
    for port in services["chain"].get("ports") or []:
        assert str(port).startswith("127.0.0.1:"), f"chain port published beyond loopback: {port}"
    assert not services["ipfs"].get("ports"), "kubo publishes a port"
    for name, service in services.items():
        for port in service.get("ports") or []:
            assert not str(port).endswith((":5001", ":8545")) or str(port).startswith(
                "127.0.0.1:"
            ), f"{name} publishes {port}"


def test_restart_policy_password_and_kubo_health(compose: dict[str, Any]) -> None:
    """Defect 9: every service restarts; no default password; kubo's check asks the daemon."""
    for name, service in compose["services"].items():
        assert service.get("restart") in ("unless-stopped", "always"), f"{name}: no restart"
    password = compose["x-node"]["environment"]["COLLEGIUM_PASSWORD"]
    assert password.startswith("${COLLEGIUM_PASSWORD:?"), f"default password: {password}"
    assert "change-me" not in COMPOSE.read_text()
    test = compose["services"]["ipfs"]["healthcheck"]["test"]
    assert any(str(part).startswith("--api=") for part in test), test


def test_postgres_is_an_optional_profile(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["profiles"] == ["postgres"]
    assert "postgres" not in yaml.safe_dump(compose["x-node"]["depends_on"])


def test_dockerignore_keeps_the_context_small() -> None:
    """Defect 5 (statically; test_compose_up.py measures the real context)."""
    text = (ROOT / ".dockerignore").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]
    assert lines[0] == "*", "the context should be an allow-list"
    assert not any(line.startswith("!") and ("node_modules" in line or ".git" in line)
                   for line in lines)  # fmt: skip


def _compose_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    try:
        from tests.deploy.engine import EngineUnavailable, compose_plugin_env

        env = compose_plugin_env(tmp_path / "config")
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    env.pop("COLLEGIUM_PASSWORD", None)
    env.update(extra)
    return env


def test_docker_compose_config_accepts_the_real_file(tmp_path: Path) -> None:
    """``docker compose config -q`` (Compose v2 itself, no engine needed) on the real file;
    without COLLEGIUM_PASSWORD it refuses, naming the variable."""
    if shutil.which("docker") is None:
        pytest.skip("no docker client")
    command = ["docker", "compose", "-f", str(COMPOSE), "config", "-q"]
    ok = subprocess.run(command, env=_compose_env(tmp_path, COLLEGIUM_PASSWORD="x"),
                        capture_output=True, text=True, check=False)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run(command, env=_compose_env(tmp_path), capture_output=True,
                             text=True, check=False)  # fmt: skip
    assert missing.returncode != 0 and "COLLEGIUM_PASSWORD" in missing.stderr
