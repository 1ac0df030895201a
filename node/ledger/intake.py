"""Group commit of single submissions (see ``docs/ledger.md``, "Accept").

The ledger's single ``POST /api/v1/transactions`` goes through one :class:`GroupCommit`
(:mod:`node.groupcommit`): each request thread verifies its own transaction, the group is
committed by :meth:`~node.ledger.service.LedgerService._commit_group` (one SQL transaction)
and its bodies stored by ``_store_group_bodies`` (one store write, overlapping the next
group's commit); each request gets its own result.
"""

from __future__ import annotations

from node.groupcommit import GROUP_MAX_ITEMS, GroupCommit

__all__ = ["GROUP_MAX_ITEMS", "GroupCommit"]
