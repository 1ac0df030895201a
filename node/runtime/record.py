"""The node's record (``node.json``) and where its data lives.

``init_node`` creates the data directory, the node wallet and the record; the record keeps
what ``collegium init`` decided (home subsystem, capacity, roles, data locations, operator)
and what the first ``up`` completed (chain, registry, deployment block).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_utils import is_address, to_checksum_address

from node.assignment.constants import ROLES_BY_BIT
from node.chain.keys import create_keystore
from node.chain.registry import RegistryError, compute_roles_mask
from node.config import DEFAULT_HOME_SUBSYSTEM, Settings
from node.errors import ConfigError

ALL_ROLES: tuple[str, ...] = ROLES_BY_BIT  # a node offers every role unless told otherwise
DEFAULT_CAPACITY = 4


def roles_to_mask(roles: list[str] | tuple[str, ...]) -> int:
    """Return the registry bit mask of ``roles``; raise ``ConfigError`` for unknown ones."""
    try:
        return compute_roles_mask(roles)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from exc


@dataclass
class NodeRecord:
    """What ``collegium init`` decides and the first ``up`` completes (``node.json``)."""

    address: str
    home: str = DEFAULT_HOME_SUBSYSTEM
    capacity: int = DEFAULT_CAPACITY
    roles: list[str] = field(default_factory=lambda: list(ALL_ROLES))
    chain_url: str | None = None
    registry: str | None = None
    chain_id: int | None = None
    deployed_block: int | None = None
    endpoint: str | None = None
    # where data lives, chosen at init (flags and COLLEGIUM_* variables of `up` override them)
    database_url: str | None = None
    blocks_dir: str | None = None
    chain_dir: str | None = None
    store_quota: int | None = None
    operator: str | None = None  # the operator's wallet (`init --admin`), not the node key

    @classmethod
    def load(cls, path: Path) -> NodeRecord:
        """Return the record stored at ``path``; raise ``ConfigError`` if absent."""
        if not path.exists():
            raise ConfigError(f"{path} not found: run `collegium init` first")
        try:
            record = cls(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{path} is not a valid node record: {exc}") from exc
        if record.registry is not None and not is_address(record.registry):
            raise ConfigError(
                f"{path} names registry {record.registry!r}, which is not an address: "
                "fix it or delete the file and run `collegium init` again"
            )
        return record

    def save(self, path: Path) -> None:
        """Write the record to ``path`` atomically."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)


def with_record_locations(settings: Settings, record: NodeRecord | None = None) -> Settings:
    """Return ``settings`` with the data locations chosen at ``collegium init`` (node.json)
    filled in where the flags and the environment left them unset."""
    if record is None:
        if not settings.node_file.exists():
            return settings
        record = NodeRecord.load(settings.node_file)
    update: dict[str, Any] = {}
    if settings.database_url is None and record.database_url:
        update["database_url"] = record.database_url
    if settings.blocks_dir is None and record.blocks_dir:
        update["blocks_dir"] = Path(record.blocks_dir)
    if settings.chain_dir is None and record.chain_dir:
        update["chain_dir"] = Path(record.chain_dir)
    if settings.store_quota is None and record.store_quota:
        update["store_quota"] = record.store_quota
    return settings.model_copy(update=update) if update else settings


def checked_registry_address(value: str) -> str:
    """Return ``value`` as a checksummed address; raise ``ConfigError`` for an empty or
    malformed one (an empty ``--registry ""`` must never reach ``node.json``)."""
    text = value.strip()
    if not text:
        raise ConfigError("--registry is empty: give the registry's 0x address")
    if not is_address(text):
        raise ConfigError(f"--registry {value!r} is not an address (0x and 40 hex digits)")
    return str(to_checksum_address(text))


def registry_of(node_url: str, *, timeout: float = 120.0, poll: float = 1.0) -> str:
    """Return the registry address that the node at ``node_url`` names in ``GET /health``,
    checked; retry while it does not answer (it may be starting) for ``timeout`` seconds.

    Raises ``ConfigError`` when it never answers or names no valid address.
    """
    url = node_url.rstrip("/") + "/health"
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        try:
            response = httpx.get(url, timeout=5.0)
            if response.status_code == 200:
                value = response.json().get("registry")
                if isinstance(value, str) and value:
                    return checked_registry_address(value)
                last = f"it names no registry ({value!r})"
            else:
                last = f"HTTP {response.status_code}"
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            last = str(exc) or type(exc).__name__
        if time.monotonic() >= deadline:
            raise ConfigError(f"cannot read the registry from {url}: {last}")
        time.sleep(poll)


def init_node(
    settings: Settings,
    password: str,
    *,
    home: str = DEFAULT_HOME_SUBSYSTEM,
    capacity: int = DEFAULT_CAPACITY,
    roles: tuple[str, ...] = ALL_ROLES,
    registry: str | None = None,
    operator: str | None = None,
) -> NodeRecord:
    """Create the data directory, the node wallet and ``node.json``; return the record.

    Raises ``ConfigError`` if the directory already holds a node.
    """
    roles_to_mask(roles)
    if registry is not None:
        registry = checked_registry_address(registry)
    if operator is not None:
        if not is_address(operator) or int(operator, 16) == 0:
            raise ConfigError(f"--admin must be a wallet address (0x + 40 hex), not {operator!r}")
        operator = str(to_checksum_address(operator))
    if capacity <= 0:
        raise ConfigError(f"capacity must be positive, got {capacity}")
    if settings.node_file.exists():
        raise ConfigError(f"{settings.data_dir} already holds a node ({settings.node_file})")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    address = create_keystore(settings.keystore_path, password)
    record = NodeRecord(
        address=str(address),
        home=home,
        capacity=capacity,
        roles=list(roles),
        chain_url=settings.chain_url,
        registry=registry,
        database_url=settings.database_url,
        blocks_dir=str(settings.blocks_dir.expanduser()) if settings.blocks_dir else None,
        chain_dir=str(settings.chain_dir.expanduser()) if settings.chain_dir else None,
        store_quota=int(settings.store_quota) if settings.store_quota else None,
        operator=operator,
    )
    record.save(settings.node_file)
    return record
