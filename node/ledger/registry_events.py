"""The follower's writes: registry logs decoded and applied to the index, in SQL.

:class:`EventDecoder` turns a registry log into ``(event name, JSON-able args)`` for the
events the follower indexes (:data:`INDEXED_EVENTS`); :func:`store_range` stores one range's
events (``registry_events``), applies them to the derived tables (``node.ledger.derived``)
and keeps the range's block hashes (``indexed_blocks``) in one SQL transaction;
:func:`roll_back_index` deletes what was indexed above a fork point and rebuilds the derived
tables. Reading the chain, and deciding what to index or roll back, is
:class:`node.ledger.follower.ChainFollower`'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from sqlalchemy import delete
from sqlalchemy.orm import Session
from web3 import Web3

from node.chain.registry import get_registry_artifact
from node.db.models import Anchor, IndexedBlock, RegistryEvent
from node.hashing import as_hex
from node.ledger import reorg
from node.ledger.derived import ParticipantChange, apply_event, rebuild_derived

REORG_WINDOW = 256

#: Events the follower indexes (every other registry event is ignored).
INDEXED_EVENTS = (
    "Anchored",
    "SubsystemCreated",
    "ParticipantAdded",
    "ParticipantRemoved",
    "NodeRegistered",
    "NodeUpdated",
    "NodeLeft",
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | HexBytes):
        return "0x" + bytes(value).hex()
    return value


class EventDecoder:
    """Decode the registry's logs of :data:`INDEXED_EVENTS` (any other log: None)."""

    def __init__(self, w3: Web3, address: ChecksumAddress) -> None:
        contract = w3.eth.contract(address=address, abi=list(get_registry_artifact().abi))
        self._events = {
            as_hex(contract.events[name]().topic): contract.events[name]()
            for name in INDEXED_EVENTS
        }

    def decode(self, entry: Any) -> tuple[str, dict[str, Any]] | None:
        """Return ``(event name, args)`` of log ``entry``, or None if it is not indexed."""
        topics = entry.get("topics") or []
        if not topics:
            return None
        event = self._events.get(as_hex(topics[0]))
        if event is None:
            return None
        processed = event.process_log(entry)
        return str(processed["event"]), {k: _jsonable(v) for k, v in processed["args"].items()}


def store_range(
    session: Session,
    decoder: EventDecoder,
    logs: Sequence[Any],
    blocks: dict[int, Any],
    *,
    head: int,
    last: int,
    node_address: str,
) -> tuple[list[ParticipantChange], int]:
    """Store the range's events, apply them and keep its block hashes, then commit; return
    the participations that changed and the number of events stored."""
    changes: list[ParticipantChange] = []
    stored = 0
    for entry in logs:
        decoded = decoder.decode(entry)
        if decoded is None:
            continue
        name, args = decoded
        event = RegistryEvent(
            block_number=int(entry["blockNumber"]),
            log_index=int(entry["logIndex"]),
            tx_hash=as_hex(entry["transactionHash"]),
            name=name,
            args=json.dumps(args, sort_keys=True),
        )
        session.merge(event)
        changed = apply_event(session, event, args, node_address=node_address)
        if changed is not None:
            changes.append(changed)
        stored += 1
    keep_block_hashes(session, blocks, head, last)
    session.commit()
    return changes, stored


def keep_block_hashes(session: Session, blocks: dict[int, Any], head: int, last: int) -> None:
    """Store the hashes of ``blocks``; forget those older than ``REORG_WINDOW``."""
    for number, block in blocks.items():
        session.merge(
            IndexedBlock(
                number=number,
                hash=as_hex(block["hash"]),
                parent_hash=as_hex(block["parentHash"]),
            )
        )
    session.execute(
        delete(IndexedBlock).where(
            IndexedBlock.number < head - REORG_WINDOW, IndexedBlock.number < last
        )
    )


def roll_back_index(session: Session, fork: int, *, own_checksum: str, node_address: str) -> None:
    """Delete every event, other nodes' anchor and leaf, and block hash indexed above block
    ``fork``, rebuild the derived tables and commit."""
    session.execute(delete(RegistryEvent).where(RegistryEvent.block_number > fork))
    reorg.drop_other_leaves_above(session, own_checksum, fork)
    session.execute(delete(Anchor).where(Anchor.block_number > fork, Anchor.node != own_checksum))
    session.execute(delete(IndexedBlock).where(IndexedBlock.number > fork))
    rebuild_derived(session, node_address=node_address)
    session.commit()
