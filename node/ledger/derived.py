"""The tables derived from the registry's events: subsystems, participants, nodes, anchors.

The chain follower (``node.ledger.follower``) stores every registry event it indexes
(``registry_events``, the source of truth) and applies it here to the derived tables:

| event | derived row |
|---|---|
| ``Anchored`` (another node's) | ``anchors`` (this node's own are written by anchoring) |
| ``SubsystemCreated`` | ``subsystems`` |
| ``ParticipantAdded`` / ``ParticipantRemoved`` | ``participants`` (added / deleted) |
| ``NodeRegistered`` / ``NodeUpdated`` / ``NodeLeft`` | ``nodes`` (active / inactive) |

After a reorg the derived tables are rebuilt from the events that remain
(:func:`rebuild_derived`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from eth_utils import to_checksum_address
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from node.db.models import Anchor, Participant, RegisteredNode, RegistryEvent, Subsystem

#: (subsystem, address) whose participation changed; (name, None) for a new subsystem
ParticipantChange = tuple[str | None, str | None]
Applier = Callable[[Session, RegistryEvent, dict[str, Any]], ParticipantChange | None]


def apply_event(
    session: Session, event: RegistryEvent, args: dict[str, Any], *, node_address: str
) -> ParticipantChange | None:
    """Apply one event to the derived tables; return the (subsystem, address) whose
    participation changed, if any. ``node_address`` (lowercase) is this node's: its own
    ``Anchored`` events are skipped."""
    if event.name == "Anchored" and str(args["node"]).lower() == node_address:
        return None  # the ledger service indexes this node's own anchors
    apply = APPLIERS.get(event.name)
    if apply is None:
        session.flush()
        return None
    return apply(session, event, args)


def _apply_anchored(session: Session, event: RegistryEvent, args: dict[str, Any]) -> None:
    session.merge(
        Anchor(
            index=int(args["index"]),
            root=str(args["root"]),
            tree_size=int(args["treeSize"]),
            count=int(args["count"]),
            batch_cid=str(args["batchCid"]),
            subsystem=str(args["subsystem"]),
            node=to_checksum_address(args["node"]),
            block_number=event.block_number,
            chain_tx_hash=event.tx_hash,
        )
    )
    session.flush()


def _apply_subsystem_created(
    session: Session, event: RegistryEvent, args: dict[str, Any]
) -> ParticipantChange:
    session.merge(
        Subsystem(
            name=str(args["name"]),
            id=str(args["id"]),
            creator=to_checksum_address(args["creator"]),
            block_number=event.block_number,
        )
    )
    return (str(args["name"]), None)


def _apply_participant(
    session: Session, event: RegistryEvent, args: dict[str, Any], *, added: bool
) -> ParticipantChange:
    subsystem = session.scalar(select(Subsystem.name).where(Subsystem.id == args["id"]))
    if subsystem is None:  # created before start_block: resolve by the id later
        subsystem = str(args["id"])
    address = to_checksum_address(args["account"])
    if added:
        block = event.block_number
        session.merge(Participant(subsystem=subsystem, address=address, block_number=block))
    else:
        session.execute(
            delete(Participant).where(
                Participant.subsystem == subsystem, Participant.address == address
            )
        )
    session.flush()
    return (subsystem, address)


def _apply_node_registered(session: Session, event: RegistryEvent, args: dict[str, Any]) -> None:
    session.merge(
        RegisteredNode(
            address=to_checksum_address(args["node"]),
            endpoint=str(args["endpoint"]),
            capacity=int(args["capacity"]),
            roles_mask=int(args["rolesMask"]),
            home=str(args["home"]),
            active=True,
            block_number=event.block_number,
        )
    )
    session.flush()


def _apply_node_left(session: Session, event: RegistryEvent, args: dict[str, Any]) -> None:
    row = session.get(RegisteredNode, to_checksum_address(args["node"]))
    if row is not None:
        row.active = False
        row.block_number = event.block_number
    session.flush()


APPLIERS: dict[str, Applier] = {
    "Anchored": _apply_anchored,
    "SubsystemCreated": _apply_subsystem_created,
    "ParticipantAdded": lambda s, e, a: _apply_participant(s, e, a, added=True),
    "ParticipantRemoved": lambda s, e, a: _apply_participant(s, e, a, added=False),
    "NodeRegistered": _apply_node_registered,
    "NodeUpdated": _apply_node_registered,
    "NodeLeft": _apply_node_left,
}


def rebuild_derived(session: Session, *, node_address: str) -> None:
    """Recompute ``subsystems``, ``participants`` and ``nodes`` from the stored events."""
    for table in (Participant, Subsystem, RegisteredNode):
        session.execute(delete(table))
    session.flush()
    events: Sequence[RegistryEvent] = session.scalars(
        select(RegistryEvent)
        .where(RegistryEvent.name != "Anchored")
        .order_by(RegistryEvent.block_number, RegistryEvent.log_index)
    ).all()
    for event in events:
        apply_event(session, event, json.loads(event.args), node_address=node_address)
