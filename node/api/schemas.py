"""Pydantic schemas of the HTTP API (request and response models)."""

from __future__ import annotations

import json
from typing import Any, Final, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from node.db.models import Anchor, BusinessTransaction
from node.ledger.service import MAX_SUBMIT_BATCH
from node.ledger.transaction import (
    MAX_INDEX_INT,
    MAX_MEMO_LEN,
    MAX_PARTIES,
    MAX_PAYLOAD_LEN,
    ZERO_ADDRESS,
    BusinessTx,
    compute_checksum_address,
    is_hex_address,
)


def _checksum(value: str) -> str:
    if not is_hex_address(value):  # a string of 40 hex digits, optionally after 0x
        raise ValueError(f"not an Ethereum address: {value!r}")
    # EIP-55 (node.hashing.compute_eip55_address), cached: signers and parties recur
    return compute_checksum_address(
        bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value)
    )


class BusinessTxBase(BaseModel):
    """The signed fields of a business transaction (the EIP-712 message)."""

    model_config = ConfigDict(extra="forbid")

    subsystem: str = Field(min_length=1, max_length=64, examples=["main"])
    kind: str = Field(min_length=1, max_length=32, examples=["invoice"])
    parties: list[str] = Field(
        default_factory=list,
        max_length=MAX_PARTIES,
        json_schema_extra={"uniqueItems": True},
        description="addresses the signer names as parties: distinct, not the zero address. "
        "Listing a party does not mean it agreed: only the signer signed",
    )
    amount: str = Field(default="", max_length=64, examples=["125.5"])
    currency: str = Field(default="", max_length=16, examples=["EUR"])
    memo: str = Field(default="", max_length=MAX_MEMO_LEN)
    payload: str = Field(default="", max_length=MAX_PAYLOAD_LEN)
    nonce: int = Field(
        ge=0,
        le=MAX_INDEX_INT,
        description=f"per signer, never reused; signed as uint64, at most {MAX_INDEX_INT} "
        "(the index keeps it as a signed 64-bit integer)",
    )
    timestamp: int = Field(
        ge=0,
        le=MAX_INDEX_INT,
        description=f"the signer's Unix time; signed as uint64, at most {MAX_INDEX_INT} "
        "(the index keeps it as a signed 64-bit integer)",
    )
    private: bool = Field(
        default=False,
        description="signed as PrivateBusinessTransaction: only subsystem, kind, payload "
        "(CID of the ciphertext) and payload_hash are public",
    )
    payload_hash: str = Field(
        default="",
        max_length=66,
        description="private only: 0x-hex keccak256(salt || plaintext)",
    )

    @field_validator("parties")
    @classmethod
    def _parties(cls, value: list[str]) -> list[str]:
        parties = [_checksum(p) for p in value]
        seen: set[str] = set()
        for party in parties:
            if party.lower() == ZERO_ADDRESS:
                raise ValueError("the zero address cannot be a party")
            if party in seen:
                raise ValueError(f"{party} is listed more than once")
            seen.add(party)
        return parties

    def to_domain(self) -> BusinessTx:
        """Return the ledger's value object."""
        return BusinessTx(
            subsystem=self.subsystem,
            kind=self.kind,
            parties=tuple(self.parties),
            amount=self.amount,
            currency=self.currency,
            memo=self.memo,
            payload=self.payload,
            nonce=self.nonce,
            timestamp=self.timestamp,
            private=self.private,
            payload_hash=self.payload_hash,
        )


class BusinessTxCreate(BaseModel):
    """A submission: the EIP-712 message, the claimed signer and the signature."""

    model_config = ConfigDict(extra="forbid")

    transaction: BusinessTxBase
    signer: str = Field(description="address that signed; must match the signature")
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="65-byte signature")

    @field_validator("signer")
    @classmethod
    def _signer(cls, value: str) -> str:
        return _checksum(value)


class AnchorPublic(BaseModel):
    """Where a transaction is anchored on-chain."""

    index: int
    root: str
    tree_size: int
    count: int
    batch_cid: str
    block_number: int
    chain_tx_hash: str
    node: str = Field(default="", description="the node whose log the tree head is of")

    @classmethod
    def from_row(cls, row: Anchor) -> Self:
        """Return the public view of an anchor row (every field of ``cls``, read by name)."""
        return cls.model_validate(row, from_attributes=True)


class BusinessTxPublic(BusinessTxBase):
    """A stored transaction as the API returns it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    seq: int
    signer: str
    signature: str
    cid: str
    leaf_hash: str
    status: str
    received_at: str
    leaf_index: int | None = None
    anchor: AnchorPublic | None = None

    @field_validator("parties")
    @classmethod
    def _parties(cls, value: list[str]) -> list[str]:
        """Stored parties are shown as stored (the submission rules were checked on input)."""
        return value

    @classmethod
    def from_row(cls, row: BusinessTransaction) -> BusinessTxPublic:
        """Return the public view of an index row."""
        anchor = None if row.anchor is None else AnchorPublic.from_row(row.anchor)
        return cls(
            id=row.tx_id,
            seq=row.seq,
            subsystem=row.subsystem,
            kind=row.kind,
            parties=[p.address for p in row.parties],
            amount=row.amount,
            currency=row.currency,
            memo=row.memo,
            payload=row.payload,
            nonce=row.nonce,
            timestamp=row.timestamp,
            private=row.private,
            payload_hash=row.payload_hash,
            signer=row.signer,
            signature=row.signature,
            cid=row.cid,
            leaf_hash=row.leaf_hash,
            status=row.status,
            received_at=row.received_at.isoformat(),
            leaf_index=row.leaf_index,
            anchor=anchor,
        )

    @classmethod
    def from_accepted(cls, accepted: Any) -> BusinessTxPublic:
        """Return the public view of a just-accepted (pending) transaction, as the index row
        reads (``node.ledger.service.AcceptedTx``, with its ``tx`` and ``received_at``)."""
        tx = accepted.tx
        return cls(
            id=accepted.tx_id,
            seq=accepted.seq,
            subsystem=tx.subsystem,
            kind=tx.kind,
            parties=list(tx.parties),
            amount=tx.amount,
            currency=tx.currency,
            memo=tx.memo,
            payload=tx.payload,
            nonce=tx.nonce,
            timestamp=tx.timestamp,
            private=tx.private,
            payload_hash=tx.payload_hash,
            signer=accepted.signer,
            signature=accepted.signature,
            cid=accepted.cid,
            leaf_hash=accepted.leaf_hash,
            status=accepted.status,
            received_at=accepted.received_at.isoformat(),
        )


#: what Starlette's ``JSONResponse`` writes (compact, UTF-8, no NaN): the route's encoding
COMPACT_JSON: Final = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def accepted_json(accepted: Any) -> bytes:
    """Return the JSON of ``BusinessTxPublic.from_accepted(accepted)`` as the route writes it
    (the same fields in the same order), without building and validating a model: the answer
    to every single submission. ``tests/api/test_schemas.py`` holds the two to each other."""
    tx = accepted.tx
    return COMPACT_JSON.encode(
        {
            "subsystem": tx.subsystem,
            "kind": tx.kind,
            "parties": list(tx.parties),
            "amount": tx.amount,
            "currency": tx.currency,
            "memo": tx.memo,
            "payload": tx.payload,
            "nonce": tx.nonce,
            "timestamp": tx.timestamp,
            "private": tx.private,
            "payload_hash": tx.payload_hash,
            "id": accepted.tx_id,
            "seq": accepted.seq,
            "signer": accepted.signer,
            "signature": accepted.signature,
            "cid": accepted.cid,
            "leaf_hash": accepted.leaf_hash,
            "status": str(accepted.status),
            "received_at": accepted.received_at.isoformat(),
            "leaf_index": None,
            "anchor": None,
        }
    ).encode()


class InclusionProofPublic(BaseModel):
    """A self-contained proof bundle: check ``leaf`` is in the tree head anchored on-chain."""

    version: int = 1
    hash: str = Field(
        default="keccak256",
        description="the tree's hash: RFC 9162 with keccak256, leaf keccak256(0x00 || leaf), "
        "interior node keccak256(0x01 || left || right); the CID is IPFS's SHA-256 of the leaf",
    )
    chain_id: int
    registry: str
    tx_id: str
    cid: str
    leaf: str = Field(description="canonical RLP body, 0x-hex")
    leaf_index: int
    tree_size: int
    root: str
    path: list[str]
    anchor_index: int
    block_number: int
    chain_tx_hash: str
    node: str

    @classmethod
    def from_bundle(cls, bundle: Any, *, chain_id: int, registry: str) -> InclusionProofPublic:
        """Return the public form of a ledger ``InclusionBundle``."""
        return cls(
            chain_id=chain_id,
            registry=registry,
            tx_id=bundle.tx_id,
            cid=bundle.cid,
            leaf="0x" + bytes(bundle.leaf).hex(),
            leaf_index=bundle.leaf_index,
            tree_size=bundle.tree_size,
            root=bundle.root,
            path=list(bundle.path),
            anchor_index=bundle.anchor_index,
            block_number=bundle.block_number,
            chain_tx_hash=bundle.chain_tx_hash,
            node=bundle.node,
        )


class AnchorListItem(AnchorPublic):
    """An anchor with the node that made it."""

    node: str
    subsystem: str


class ConsistencyProofPublic(BaseModel):
    """Proof that the log at ``first`` is a prefix of the log at ``second``."""

    first: int
    second: int
    path: list[str]


class BusinessTxPage(BaseModel):
    """A page of transactions, newest first; pass ``next_cursor`` as ``before``."""

    items: list[BusinessTxPublic]
    next_cursor: int | None


class BatchCreate(BaseModel):
    """A batch submission: up to ``MAX_SUBMIT_BATCH`` submissions, each checked alone."""

    model_config = ConfigDict(extra="forbid")

    # ``Any``, not an object: an item that is not even an object (a number, null) gets its own
    # 422 in ``results`` like any other bad item, instead of sinking the whole batch
    items: list[Any] = Field(
        max_length=MAX_SUBMIT_BATCH,
        json_schema_extra={"items": {"type": "object"}},
        description="each item is a BusinessTxCreate; a bad item rejects only itself",
    )


class BatchItemResult(BaseModel):
    """The outcome of one item: 202 with the transaction id, or a problem."""

    index: int
    status: int
    id: str | None = None
    problem: Problem | None = None


class BatchResult(BaseModel):
    """Per-item outcomes, in request order; accepted items are committed (pending)."""

    accepted: int
    rejected: int
    results: list[BatchItemResult]


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str


class Health(BaseModel):
    """The node's health summary."""

    model_config = ConfigDict(extra="allow")

    status: str
    version: str
    node: str
    chain: dict[str, Any]
    registry: str | None
    epoch: int
    store: dict[str, Any]
