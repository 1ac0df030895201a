"""Joining the registry: deploy it on a first start, register (or update) this node, hand
the admin rights over to the operator, and publish the bundled front-end."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from node.chain.registry import Registry
from node.config import Settings
from node.errors import ChainError, ConfigError
from node.frontend import CID_VERSION, FrontendError, check_build_dir, default_build_dir, publish
from node.runtime.record import NodeRecord, roles_to_mask

log = logging.getLogger(__name__)

DEV_FUNDING_WEI = 10**21


def join_registry(
    settings: Settings, record: NodeRecord, chain: Any, account: Any, chain_url: str | None
) -> tuple[Registry, bool]:
    """Return the node's registry binding (deployed on first start) and whether this start
    deployed it; the node is registered and its record saved.

    Raises ``ConfigError`` on another chain than the one the node joined, or if its
    registry has no code on this chain.
    """
    if record.chain_id is not None and record.chain_id != chain.chain_id:
        raise ConfigError(
            f"chain id {chain.chain_id} differs from the {record.chain_id} this node joined"
        )
    if chain.kind == "rpc" and int(chain.w3.eth.get_balance(account.address)) == 0:
        _fund_on_dev_chain(chain, account.address)
    deploying = record.registry is None
    if record.registry is None:
        log.info("deploying the registry (epoch period %d blocks)", settings.epoch_period)
        record.registry = str(Registry.deploy(chain.w3, account, settings.epoch_period).address)
        record.deployed_block = int(chain.w3.eth.block_number)
    elif not chain.w3.eth.get_code(to_checksum_address(record.registry)):
        raise ConfigError(f"no registry contract at {record.registry} on this chain")
    record.chain_id = chain.chain_id
    record.chain_url = chain_url
    record.endpoint = settings.endpoint
    record.save(settings.node_file)
    registry = Registry(chain.w3, record.registry, account)
    _ensure_registered(registry, settings, record)
    return registry, deploying


def bundled_frontend_cid(store: Any, configured: Path | None) -> str | None:
    """Return the CID the front-end shipped with this node (or ``configured``: the
    ``frontend_dir`` setting) would have (nothing stored)."""
    try:
        directory = check_build_dir(default_build_dir(configured))
    except (FrontendError, ConfigError) as exc:
        log.warning("no bundled front-end: %s", exc)
        return None
    return str(store.add_path(directory, cid_version=CID_VERSION, pin=False, only_hash=True))


def publish_frontend_if_missing(registry: Any, store: Any, configured: Path | None) -> None:
    """Publish the bundled front-end (store + registry) when the registry has none and this
    node's wallet may: the node that deploys a registry does so as part of the deploy, and
    again at its next start if it stopped in between. Anything else only logs."""
    if registry.frontend_cid() or not registry.is_system_admin(registry.account.address):
        return
    try:
        cid = publish(store, registry, default_build_dir(configured))
    except (FrontendError, ConfigError) as exc:
        log.warning("the bundled front-end is not published: %s", exc)
        return
    log.info("published the bundled front-end: %s", cid)


def _fund_on_dev_chain(chain: Any, address: str) -> None:
    """Give ``address`` gas money on a dev chain (anvil); raise ``ConfigError`` elsewhere."""
    try:
        chain.fund(address, DEV_FUNDING_WEI)
    except ChainError as exc:
        raise ConfigError(
            f"node address {address} has no balance on this chain; send it some ether "
            f"(automatic funding works only on dev chains: {exc})"
        ) from exc


def hand_over_to_operator(registry: Any, home: str, operator: str) -> None:
    """Make ``operator`` a system admin and the admin (and a participant) of ``home``, then
    drop the node key's admin rights: it keeps only what a node needs (registering, anchoring,
    attesting, relaying). Each step is skipped if already done, so a retry completes it."""
    node_address = registry.account.address
    if not registry.is_system_admin(operator):
        registry.add_system_admin(operator)
    if not registry.is_subsystem_admin(home, operator):
        registry.add_subsystem_admin(home, operator)
    if not registry.is_participant(home, operator):
        registry.add_participant(home, operator)
    if registry.is_subsystem_admin(home, node_address):
        registry.remove_subsystem_admin(home, node_address)
    if registry.is_system_admin(node_address):
        registry.remove_system_admin(node_address)
    log.info("operator %s is system admin and admin of %r; the node key is not", operator, home)


def _ensure_registered(registry: Any, settings: Settings, record: NodeRecord) -> None:
    """Create the home subsystem if missing and register (or update) this node."""
    if not registry.subsystem_exists(record.home):
        registry.create_subsystem(record.home)
    mask = roles_to_mask(record.roles)
    if not registry.is_node(registry.account.address):
        registry.register_node(settings.endpoint, record.capacity, mask, record.home)
        return
    info = registry.get_node(registry.account.address)
    wanted = (settings.endpoint, record.capacity, mask, record.home)
    if (info.endpoint, info.capacity, info.roles_mask, info.home) != wanted:
        registry.update_node(*wanted)
