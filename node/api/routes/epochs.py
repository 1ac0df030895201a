"""Epochs, nodes and subsystems: the collegial decision of each epoch and its inputs.

``/epochs/current`` and ``/epochs/{epoch}`` show the seed (and the block it came from), the
boundary block whose registry state was the input, the active nodes left out as not live at
it, the slots with their ranked hosts, the policy's adjustments, and every node's attested
root next to ours.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path
from pydantic import BaseModel

from node.api.deps import NodeDep
from node.epoch import EpochService, EpochUnavailable, EpochView

router = APIRouter(tags=["epochs"])

MAX_EPOCH = 2**64 - 1


class SlotPublic(BaseModel):
    """One slot: role, subsystem (null for system-wide roles) and its ranked hosts."""

    role: str
    subsystem: str | None
    hosts: list[str]
    mine: bool


class AttestationPublic(BaseModel):
    """A node's attested root for the epoch; ``matches`` compares it with this node's root."""

    node: str
    root: str | None
    matches: bool | None


class EpochPublic(BaseModel):
    """An epoch as this node computed it."""

    epoch: int
    seed: str
    source_block: int
    seed_fixed_at: int
    boundary_block: int
    snapshot_block: int  # the registry state assigned: the boundary (epoch 0: first registration)
    root: str | None
    error: str | None
    replicas: dict[str, int]
    default_replicas: dict[str, int]
    subsystems: list[str]
    unserved: list[str]
    adjustments: list[str]
    slots: list[SlotPublic]
    attestations: list[AttestationPublic]
    node: str
    left_out: list[str] = []
    """Active nodes not live at the boundary block (not seen within the liveness window)."""
    kept_all: bool = False
    """No active node was live at the boundary block, so all were kept."""
    liveness_window: int = 0
    """The liveness window, in blocks, in force at the boundary block."""


class NodePublic(BaseModel):
    """An active node's registry record now."""

    address: str
    endpoint: str
    capacity: int
    roles: list[str]
    home: str
    registered_at: int


class SubsystemPublic(BaseModel):
    """A subsystem and its participants now."""

    name: str
    participants: list[str]


def get_epochs(node: NodeDep) -> EpochService:
    """Return the node's epoch service; 404 if it is disabled (by its operator, for good: a
    5xx would say the node failed)."""
    service = getattr(node, "epochs", None)
    if service is None:
        raise HTTPException(404, "the epoch service is disabled on this node")
    return service  # type: ignore[no-any-return]


EpochsDep = Annotated[EpochService, Depends(get_epochs)]


def _hex(value: bytes | None) -> str | None:
    return None if value is None else "0x" + bytes(value).hex()


def _public(service: EpochService, view: EpochView) -> EpochPublic:
    me = view.node.lower()
    slots = [] if view.assignment is None else list(view.assignment.slots)
    return EpochPublic(
        epoch=view.epoch,
        seed="0x" + view.seed.hex(),
        source_block=view.seed_info.source_block,
        seed_fixed_at=view.seed_info.fixed_at,
        boundary_block=view.boundary_block,
        snapshot_block=view.snapshot.block,
        root=_hex(view.root),
        error=None if view.plan.error is None else str(view.plan.error),
        replicas=dict(view.plan.replicas),
        default_replicas=dict(view.plan.default_replicas),
        subsystems=list(view.plan.subsystems),
        unserved=list(view.plan.unserved),
        adjustments=list(view.plan.adjustments),
        slots=[
            SlotPublic(role=s.role, subsystem=s.subsystem, hosts=list(s.hosts), mine=me in s.hosts)
            for s in slots
        ],
        attestations=[
            AttestationPublic(node=a.node, root=_hex(a.root), matches=a.matches)
            for a in service.attestations(view.epoch)
        ],
        node=view.node,
        left_out=[str(a) for a in view.snapshot.left_out],
        kept_all=view.snapshot.kept_all,
        liveness_window=view.snapshot.liveness_window,
    )


@router.get("/epochs/current")
def get_current_epoch(service: EpochsDep) -> EpochPublic:
    """Return the epoch this node acts on now (503 before its first epoch is processed)."""
    view = service.current()
    if view is None:
        raise HTTPException(503, f"no epoch processed yet ({service.last_error or 'starting'})")
    return _public(service, view)


@router.get("/epochs/{epoch}")
def get_epoch(service: EpochsDep, epoch: Annotated[int, Path(ge=0, le=MAX_EPOCH)]) -> EpochPublic:
    """Return epoch ``epoch`` recomputed from its seed and boundary snapshot (404 if unknown)."""
    try:
        view = service.view(epoch)
    except EpochUnavailable as exc:
        raise HTTPException(404, str(exc)) from exc
    return _public(service, view)


@router.get("/nodes")
def list_nodes(node: NodeDep) -> list[NodePublic]:
    """Return the active nodes in the registry now, by address."""
    registry = node.registry
    return sorted(
        (
            NodePublic(
                address=n.address,
                endpoint=n.endpoint,
                capacity=n.capacity,
                roles=list(n.roles),
                home=n.home,
                registered_at=n.registered_at,
            )
            for n in registry.nodes()
        ),
        key=lambda n: n.address.lower(),
    )


@router.get("/subsystems")
def list_subsystems(node: NodeDep) -> list[SubsystemPublic]:
    """Return the subsystems in the registry now (creation order) with their participants."""
    registry = node.registry
    return [
        SubsystemPublic(name=name, participants=list(registry.participants(name)))
        for name in registry.subsystems()
    ]
