"""The items of a batch request (``POST /transactions/batch``), and the bodies of concurrent
single submissions, read and verified in one pass, in the verifier's worker processes.

Per item, in the order the route has always checked them: its size (compact JSON, at most
``max_tx_bytes``: else 413), its schema (:class:`~node.api.schemas.BusinessTxCreate`: else
422 with pydantic's messages), then the signature and the leaf
(:func:`node.ledger.verifier.check_items`: field checks, EIP-712 digest, libsecp256k1
recovery, canonical body, CID, leaf hash). :func:`check_batch_items` is pure, so
:meth:`VerifierPool.map_items <node.ledger.verifier.VerifierPool.map_items>` runs it on a
chunk of the request per worker: the node's process (and its GIL) keeps only the checks that
read the node's state (participants, replays) and the commit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeAlias

import pydantic

from node.api.schemas import BusinessTxCreate
from node.errors import ValidationError
from node.ledger.service import Submission
from node.ledger.transaction import Domain
from node.ledger.verifier import Checked, VerifiedTx, VerifierPool, check_items, to_verified

_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))  # one encoder, not one per item


class Rejected(NamedTuple):
    """An item refused before its signature is looked at: 413 (too large) or 422 (schema)."""

    status: int
    title: str
    detail: str


#: per item: why it was refused, or the submission read from it with its signature check
ItemCheck: TypeAlias = Rejected | tuple[Submission, Checked]


def submission_of(parsed: BusinessTxCreate) -> Submission:
    """Return the ledger's submission of a request's validated :class:`BusinessTxCreate`."""
    return Submission(
        parsed.transaction.to_domain(), bytes.fromhex(parsed.signature[2:]), parsed.signer
    )


def read_item(item: Any, limit: int) -> Submission | Rejected:
    """Return the submission ``item`` (one decoded JSON value of ``items``) holds, or why it
    is refused: larger than ``limit`` bytes as compact JSON (413), or not a
    :class:`BusinessTxCreate` (422, pydantic's messages joined)."""
    if len(_COMPACT_JSON.encode(item)) > limit:
        return Rejected(413, "payload too large", f"item exceeds {limit} bytes")
    try:
        parsed = BusinessTxCreate.model_validate(item)
    except pydantic.ValidationError as exc:
        detail = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or 'item'}: {e['msg']}" for e in exc.errors()
        )
        return Rejected(422, "malformed request", detail)
    return submission_of(parsed)


def check_batch_items(domain: Domain, limit: int, items: Sequence[Any]) -> list[ItemCheck]:
    """Return per item of a batch request why it is refused, or its submission with its
    signature check (``check_items``). Pure: runs in the verifier's worker processes."""
    read = [read_item(item, limit) for item in items]
    valid = [r for r in read if isinstance(r, Submission)]
    checked = iter(check_items(domain, [(s.tx, s.signature) for s in valid]))
    return [r if isinstance(r, Rejected) else (r, next(checked)) for r in read]


def read_body(body: bytes) -> Submission | None:
    """Return the submission the body of a single ``POST /transactions`` holds, or None if
    it is not one (not JSON, or not a :class:`BusinessTxCreate`: the route then answers
    its own 422, word for word)."""
    try:
        parsed = BusinessTxCreate.model_validate(json.loads(body))
    except (ValueError, pydantic.ValidationError):
        return None
    return submission_of(parsed)


def check_bodies(
    domain: Domain, bodies: Sequence[bytes]
) -> list[tuple[Submission, Checked] | None]:
    """Return per body of a single submission None (not one: :func:`read_body`) or its
    submission with its signature check (``check_items``). Pure: runs in the verifier's
    worker processes, on the bodies of concurrent requests gathered into one chunk."""
    read = [read_body(body) for body in bodies]
    valid = [r for r in read if r is not None]
    checked = iter(check_items(domain, [(s.tx, s.signature) for s in valid]))
    return [None if r is None else (r, next(checked)) for r in read]


def check_chunk(
    _: None, job: tuple[Domain, Sequence[bytes]]
) -> list[tuple[Submission, Checked] | None]:
    """:func:`check_bodies` as a :class:`node.worker.LoopWorker` child runs it: ``job`` is
    ``(domain, bodies)``."""
    return check_bodies(*job)


def check_batch(
    domain: Domain, limit: int, items: Sequence[Any], verifier: VerifierPool | None
) -> list[Rejected | tuple[Submission, VerifiedTx | ValidationError]]:
    """Return per item of a batch request why it is refused, or its submission with the
    verified transaction (or the ``ValidationError`` of its signature check): in the
    ``verifier``'s workers if there is a pool, else in this process."""
    if verifier is not None:
        checks = verifier.map_items(check_batch_items, (domain, limit), items)
    else:
        checks = check_batch_items(domain, limit, items)
    accepted = [c for c in checks if not isinstance(c, Rejected)]
    verified = iter(
        to_verified(domain, [(s.tx, s.signature) for s, _ in accepted], [c for _, c in accepted])
    )
    return [c if isinstance(c, Rejected) else (c[0], next(verified)) for c in checks]
