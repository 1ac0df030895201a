"""Constants, preset and configuration of the assignment (tabled in docs/assignment.md)."""

from __future__ import annotations

from typing import Final

# --- Roles -------------------------------------------------------------------------------------
# Role ids are the strings of the JSON interface. ``ROLES`` is in byte order of the ids, which
# is also the order of the slots in the output and the order in which slots are filled.
ROLE_BE_SUBSYSTEM: Final = "be_subsystem"
ROLE_BE_SYSTEM: Final = "be_system"
ROLE_FE_SUBSYSTEM: Final = "fe_subsystem"
ROLE_FE_SYSTEM: Final = "fe_system"
ROLES: Final[tuple[str, ...]] = (
    ROLE_BE_SUBSYSTEM,
    ROLE_BE_SYSTEM,
    ROLE_FE_SUBSYSTEM,
    ROLE_FE_SYSTEM,
)
# Roles with one slot per subsystem; the others have a single system-wide slot.
ROLES_BY_BIT: Final[tuple[str, ...]] = (
    ROLE_FE_SYSTEM,
    ROLE_FE_SUBSYSTEM,
    ROLE_BE_SYSTEM,
    ROLE_BE_SUBSYSTEM,
)
"""Every role in the registry's bit order (role ``ROLES_BY_BIT[i]`` is bit ``i`` of a mask)."""
SUBSYSTEM_ROLES: Final[frozenset[str]] = frozenset({ROLE_BE_SUBSYSTEM, ROLE_FE_SUBSYSTEM})
# Roles whose hosts must be members (participants' nodes) of the slot's subsystem.
MEMBERS_ONLY_ROLES: Final[frozenset[str]] = frozenset({ROLE_BE_SUBSYSTEM})

# --- Domains (4 bytes each, like consensus-specs ``DomainType``) -------------------------------
DOMAIN_FE_SYSTEM: Final = bytes.fromhex("01000000")
DOMAIN_FE_SUBSYSTEM: Final = bytes.fromhex("02000000")
DOMAIN_BE_SYSTEM: Final = bytes.fromhex("03000000")
DOMAIN_BE_SUBSYSTEM: Final = bytes.fromhex("04000000")
DOMAIN_SLOT: Final = bytes.fromhex("05000000")
DOMAIN_ASSIGNMENT: Final = bytes.fromhex("06000000")
DOMAIN_NODE: Final = bytes.fromhex("07000000")
DOMAIN_ADJUSTMENT: Final = bytes.fromhex("08000000")
ROLE_DOMAINS: Final[dict[str, bytes]] = {
    ROLE_FE_SYSTEM: DOMAIN_FE_SYSTEM,
    ROLE_FE_SUBSYSTEM: DOMAIN_FE_SUBSYSTEM,
    ROLE_BE_SYSTEM: DOMAIN_BE_SYSTEM,
    ROLE_BE_SUBSYSTEM: DOMAIN_BE_SUBSYSTEM,
}

# --- Fixed-width encodings (bytes, big-endian) -------------------------------------------------
DOMAIN_LENGTH: Final = 4
SEED_LENGTH: Final = 32
ADDRESS_LENGTH: Final = 20
EPOCH_LENGTH: Final = 8  # uint64
COUNT_LENGTH: Final = 4  # uint32, for slot and host counts
ZERO_SUBSYSTEM_KEY: Final = bytes(32)  # subsystem key of a system-wide slot

# --- Score (weighted rendezvous, straw2 with a table-interpolated integer log2) ---------------
# One keccak per slot (the slot hash) and one per node and epoch (the node hash), both 64-bit;
# a pair's draw is ``mix64(slot_hash ^ node_hash)``, all arithmetic modulo 2**64.
HASH_BITS: Final = 64  # bits of a slot hash, a node hash and a draw (uint64)
HASH_MASK: Final = 2**HASH_BITS - 1
MIX_SHIFT_1: Final = 30  # splitmix64 finalizer (Stafford's Mix13): shifts and multipliers
MIX_MULTIPLIER_1: Final = 0xBF58476D1CE4E5B9
MIX_SHIFT_2: Final = 27
MIX_MULTIPLIER_2: Final = 0x94D049BB133111EB
MIX_SHIFT_3: Final = 31
DRAW_BITS: Final = 48  # leading bits of the draw used as the uniform variate
LOG2_FRACTION_BITS: Final = 32  # fractional bits of every fixed-point log2
LOG2_WORKING_BITS: Final = 64  # fixed-point precision of compute_log2_fixed's squaring loop
LOG2_TABLE_BITS: Final = 10  # the log2 table has 2**LOG2_TABLE_BITS + 1 entries
LOG2_INTERPOLATION_BITS: Final = DRAW_BITS - LOG2_TABLE_BITS  # mantissa bits interpolated
SCORE_SHIFT: Final = 26  # left shift before dividing by capacity; keeps every score < 2**64

# --- Load bound (consistent hashing with bounded loads, as a preference) ----------------------
# A node is preferred only while its load is below max(LOAD_BOUND_MINIMUM, ceil(share),
# floor(LOAD_BOUND * share)), share = its capacity's share of all slot-replicas.
LOAD_BOUND_NUMERATOR: Final = 6  # LOAD_BOUND = 6/5: at most 1.2 x the fair share
LOAD_BOUND_DENOMINATOR: Final = 5
LOAD_BOUND_MINIMUM: Final = 4  # below this load, balance is left to the hash alone

# --- Limits of the input -----------------------------------------------------------------------
MAX_EPOCH: Final = 2**64 - 1
MAX_CAPACITY: Final = 2**32 - 1
MAX_REPLICAS: Final = 2**32 - 1

# Reduction (docs/assignment.md, "Reduction"): how a topology short of eligible nodes or of
# capacity is served with fewer replicas, each step recorded as an adjustment.
REASON_ELIGIBLE_NODES: Final = "eligible_nodes"  # a role's count, clipped to its eligible nodes
REASON_CAPACITY: Final = "capacity"  # a role's count, one less: capacity is short
REASON_NO_ELIGIBLE_NODE: Final = "no_eligible_node"  # a slot unserved: nobody may host it
REASON_CAPACITY_UNSERVED: Final = "capacity_unserved"  # a slot unserved: capacity is short
ADJUSTMENT_REASON_CODES: Final[dict[str, int]] = {
    REASON_ELIGIBLE_NODES: 1,
    REASON_CAPACITY: 2,
    REASON_NO_ELIGIBLE_NODE: 3,
    REASON_CAPACITY_UNSERVED: 4,
}
REDUCTION_ORDER: Final[tuple[str, ...]] = (
    ROLE_FE_SYSTEM,
    ROLE_FE_SUBSYSTEM,
    ROLE_BE_SYSTEM,
    ROLE_BE_SUBSYSTEM,
)
"""Ties when a role loses a replica: front-ends first (public data, on IPFS anyway)."""
DROP_ORDER: Final[tuple[str, ...]] = (
    ROLE_FE_SUBSYSTEM,
    ROLE_BE_SUBSYSTEM,
    ROLE_FE_SYSTEM,
    ROLE_BE_SYSTEM,
)
"""Roles whose slots are left unserved first when every count is 1 and capacity is short
(within a role: the last subsystem in canonical order first); the system-wide back-end last."""
