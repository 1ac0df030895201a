"""The composition root: open every part of a node from its data directory.

``open_node`` wires the wallet, the chain backend, the registry binding, the content
store, the index database and the ledger service, deploying and registering on the
first start. Everything else receives these parts; nothing else opens them.

One module per job, read in this order: ``record`` (``node.json``, data locations,
``init_node``), ``registration`` (deploy, register, hand over, publish the front-end),
``workers`` (peer sync, block clock, chain follower, epoch service), ``context``
(``NodeContext``: the opened parts, ``/health``, ``close``) and ``wiring`` (``open_node``).
"""

from node.runtime.context import NodeContext
from node.runtime.record import (
    ALL_ROLES,
    DEFAULT_CAPACITY,
    NodeRecord,
    checked_registry_address,
    init_node,
    registry_of,
    roles_to_mask,
    with_record_locations,
)
from node.runtime.registration import DEV_FUNDING_WEI, hand_over_to_operator
from node.runtime.wiring import open_node

__all__ = [
    "ALL_ROLES",
    "DEFAULT_CAPACITY",
    "DEV_FUNDING_WEI",
    "NodeContext",
    "NodeRecord",
    "checked_registry_address",
    "hand_over_to_operator",
    "init_node",
    "open_node",
    "registry_of",
    "roles_to_mask",
    "with_record_locations",
]
