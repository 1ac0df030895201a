"""Epochs: the collegial decision of each epoch, read from and attested on the chain.

``snapshot`` reads the registry as it was at an epoch's boundary block; ``policy`` turns that
snapshot into the assignment's input (replica counts, unserved subsystems) and computes it;
``service`` runs it every epoch: fixes the seed, attests the root (``attestation``), reports
disagreement; ``view`` is one epoch as this node sees it, ``routing`` the router's input and
``summary`` the ``/health`` summary.
"""

from node.epoch.policy import (
    DEFAULT_REPLICAS,
    EpochPlan,
    compute_assignment_nodes,
    compute_epoch_plan,
)
from node.epoch.service import (
    Attestation,
    EpochAssignmentSource,
    EpochService,
    EpochUnavailable,
    EpochView,
    compute_local_assignment,
)
from node.epoch.snapshot import Snapshot, SnapshotNode, read_snapshot
from node.epoch.summary import describe_epoch

__all__ = [
    "DEFAULT_REPLICAS",
    "Attestation",
    "EpochAssignmentSource",
    "EpochPlan",
    "EpochService",
    "EpochUnavailable",
    "EpochView",
    "Snapshot",
    "SnapshotNode",
    "compute_assignment_nodes",
    "compute_epoch_plan",
    "compute_local_assignment",
    "describe_epoch",
    "read_snapshot",
]
