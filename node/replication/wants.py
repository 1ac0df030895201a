"""What a node wants in its store: every CID the chain references, directly or through a
document it references.

Roots come from the registry (:meth:`WantList.read_roots`): the batch CID of every anchor, the
system front-end CID and each subsystem's front-end CID. Once a batch document is complete
locally, the leaf CIDs it lists (``node.ledger.batch.decode_batch``) are wanted too; once a
leaf is complete, the payload CID it names (``node.ledger.transaction.decode_leaf_payload``: a
private transaction's ciphertext, or a public document); once that is complete, the key
envelope a sealed object names, and each envelope's ``previous``
(``node.crypto.sealed.compute_references``): a subsystem's ciphertext and wrapped keys reach
every node, its plaintext none (:meth:`WantList.get_named_roots`).

The storage layer below only ever sees the CIDs this module hands it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from node.crypto.sealed import compute_references
from node.errors import InvalidCID, ValidationError
from node.ledger.batch import decode_batch
from node.ledger.transaction import decode_leaf_payload
from node.storage.base import BlockStore
from node.storage.cids import is_cid, parse_cid
from node.storage.errors import StoreError
from node.storage.reader import get_child_cids

log = logging.getLogger(__name__)


class WantsSource(Protocol):
    """What the want list reads from the registry (``node.chain.registry.Registry`` has it)."""

    def anchor_count(self) -> int:
        """Return the number of anchors."""
        ...

    def get_anchor(self, i: int) -> Any:
        """Return anchor ``i`` (with ``batch_cid``)."""
        ...

    def frontend_cid(self) -> str:
        """Return the system front-end CID ("" if unset)."""
        ...

    def subsystems(self) -> list[str]:
        """Return every subsystem name."""
        ...

    def subsystem_frontend(self, name: str) -> str:
        """Return the front-end CID of ``name`` ("" if unset)."""
        ...


def compute_roots(
    batch_cids: Sequence[str], frontends: Sequence[str], leaves: dict[str, tuple[str, ...]]
) -> list[str]:
    """Return the wanted roots in sync order, without duplicates: batch documents (each followed
    by the leaves it lists, when known), then front-ends. Empty strings are skipped."""
    out: list[str] = []
    seen: set[str] = set()

    def push(cid: str) -> None:
        if cid and cid not in seen:
            seen.add(cid)
            out.append(cid)

    for batch in batch_cids:
        push(batch)
        for leaf in leaves.get(batch, ()):
            push(leaf)
    for frontend in frontends:
        push(frontend)
    return out


class WantList:
    """The CIDs the chain references, learnt incrementally and cached (anchors are
    append-only, documents immutable). Not thread-safe: one sync round uses it at a time."""

    def __init__(self, store: BlockStore) -> None:
        self.store = store
        self.batch_cids: list[str] = []
        self._batch_set: set[str] = set()  # the same, for membership (a round asks per root)
        self.leaf_cids: set[str] = set()
        self._leaves: dict[str, tuple[str, ...]] = {}
        self._payloads: dict[str, str] = {}
        self._followed: set[str] = set()  # payloads and envelopes: their references are wanted
        self._references: dict[str, tuple[str, ...]] = {}
        self._bad_roots: set[str] = set()
        self._good_roots: set[str] = set()  # parsed once: a round re-reads every root

    def read_roots(self, chain: WantsSource) -> list[str]:
        """Return every root CID the chain references: batch documents (with the leaves of those
        already decoded), then the system and subsystem front-ends.

        Raises ``ChainError`` if the registry cannot be read.
        """
        count = chain.anchor_count()
        for i in range(len(self.batch_cids), count):
            batch_cid = str(chain.get_anchor(i).batch_cid)
            self.batch_cids.append(batch_cid)
            self._batch_set.add(batch_cid)
        frontends = [chain.frontend_cid()]
        for name in chain.subsystems():
            frontends.append(chain.subsystem_frontend(name))
        roots = compute_roots(self.batch_cids, frontends, self._leaves)
        return [r for r in roots if self.is_valid_root(r)]

    def note_local(self, batch_cid: str, leaf_cids: Sequence[str], payloads: Sequence[str]) -> None:
        """Record what this node stored itself: the batch ``batch_cid`` lists ``leaf_cids``,
        whose payload CIDs are ``payloads`` ("" for none); nothing is decoded for them. The
        leaf CIDs are the node's own (``compute_leaf_cid``): valid by construction, so the
        next round does not parse each of them again (``is_valid_root``)."""
        self._leaves.setdefault(batch_cid, tuple(leaf_cids))
        self._good_roots.update(leaf_cids)
        for leaf, payload in zip(leaf_cids, payloads, strict=True):
            self._payloads.setdefault(leaf, payload)

    def get_named_roots(self, root: str, wanted: set[str]) -> list[str]:
        """Return the roots the complete, local ``root`` names that are not in ``wanted`` yet
        (and add them to it): a batch's leaves, a leaf's payload, a sealed object's envelope
        or an envelope's previous one."""
        out: list[str] = []
        if root in self._batch_set:
            for leaf in self.get_leaves(root):
                self.leaf_cids.add(leaf)
                if leaf not in wanted and self.is_valid_root(leaf):
                    wanted.add(leaf)
                    out.append(leaf)
        elif root in self.leaf_cids:
            # a leaf names its payload (ciphertext of a private transaction, or a public
            # document): referenced by the chain through the leaf, so wanted too
            payload = self.get_payload(root)
            if payload and payload not in wanted and self.is_valid_root(payload):
                self._followed.add(payload)
                wanted.add(payload)
                out.append(payload)
        elif root in self._followed:
            # a sealed object names its key envelope, an envelope its previous one: a
            # subsystem's keys follow its data to every node (ciphertext and wrapped keys)
            for ref in self.get_references(root):
                if ref not in wanted and self.is_valid_root(ref):
                    self._followed.add(ref)
                    wanted.add(ref)
                    out.append(ref)
        return out

    def is_valid_root(self, cid: str) -> bool:
        """Return whether ``cid`` is a CID (a chain may reference anything; logged once)."""
        if cid in self._good_roots:
            return True
        if cid in self._bad_roots:
            return False
        if not is_cid(cid):
            log.warning("the chain references %r, which is not a CID; ignored", cid)
            self._bad_roots.add(cid)
            return False
        self._good_roots.add(cid)
        return True

    def get_payload(self, leaf_cid: str) -> str:
        """Return the payload CID named by the (complete, local) leaf ``leaf_cid``, or ""."""
        if leaf_cid in self._payloads:
            return self._payloads[leaf_cid]
        try:
            payload = decode_leaf_payload(self.store.cat(leaf_cid))
        except (ValidationError, StoreError) as exc:
            log.warning("leaf %s cannot be decoded (%s); its payload is not synced", leaf_cid, exc)
            payload = ""
        self._payloads[leaf_cid] = payload
        return payload

    def get_references(self, cid: str) -> tuple[str, ...]:
        """Return the CIDs the (complete, local) document ``cid`` refers to: a sealed object's
        envelope, an envelope's previous one (``node.crypto.sealed.compute_references``)."""
        if cid in self._references:
            return self._references[cid]
        try:
            data = self.store.get_block(cid)
            if not data.startswith(b"{") and not get_child_cids(parse_cid(cid), data):
                data = self.store.cat(cid)  # one dag-pb block: a small file (never a big one)
            refs = compute_references(data)
        except (ValidationError, StoreError, InvalidCID) as exc:
            log.debug("%s cannot be read for references (%s)", cid, exc)
            refs = ()
        self._references[cid] = refs
        return refs

    def get_leaves(self, batch_cid: str) -> tuple[str, ...]:
        """Return the leaf CIDs listed by the (complete, local) batch document ``batch_cid``."""
        if batch_cid in self._leaves:
            return self._leaves[batch_cid]
        try:
            leaves = decode_batch(self.store.cat(batch_cid)).leaf_cids
        except (ValidationError, StoreError) as exc:
            log.warning("batch %s cannot be decoded (%s); leaves not synced", batch_cid, exc)
            leaves = ()
        self._leaves[batch_cid] = leaves
        return leaves
