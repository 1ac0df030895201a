"""SQLAlchemy 2 models of the node's index database, every table of it.

By area: the ledger (transactions, their parties, anchors, the Merkle tree, the time zone
map), the chain follower's registry index (blocks, events, subsystems, participants, nodes),
wallet login (nonces, sessions: ``node.auth``) and the key directory (``node.keys``).

The schema itself is created and upgraded only by Alembic revisions in ``migrations/``;
these classes must match the newest revision (``tests/db/test_migrations.py`` compares them).
A subsystem's own database has its own schema and revisions (:mod:`node.db.subsystem`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ADDRESS_LEN = 42
HASH_LEN = 66
CID_LEN = 128
NONCE_LEN = 64
PUBLIC_KEY_HEX_LEN = 66  # 33-byte compressed secp256k1 key, hex
KEY_SOURCE_LEN = 16


class Base(DeclarativeBase):
    """Declarative base of every index table."""


class TransactionStatus:
    """Values of ``BusinessTransaction.status``."""

    PENDING = "pending"
    ANCHORED = "anchored"


class BusinessTransaction(Base):
    """One accepted, EIP-712-signed business transaction: a leaf of the ledger log.

    ``seq`` is the order in which the row entered this index; ``origin`` whose log holds
    the leaf: ``""`` for this node's own log (everything it accepted), else the address of
    the node that accepted and anchored it (indexed from its anchors by the chain follower);
    ``leaf_index`` the position in that log, given when the leaf is put in a batch (``None``
    while pending). A transaction submitted to two nodes is in both logs: one row per log.
    """

    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("signer", "nonce", "origin", name="uq_transactions_signer_nonce"),
        UniqueConstraint("origin", "leaf_index", name="uq_transactions_origin_leaf_index"),
        UniqueConstraint("tx_id", "origin", name="uq_transactions_tx_id_origin"),
        Index("ix_transactions_subsystem_seq", "subsystem", "seq"),
        Index("ix_transactions_kind_seq", "kind", "seq"),
        Index("ix_transactions_timestamp_seq", "timestamp", "seq"),
        Index("ix_transactions_signer_seq", "signer", "seq"),
        Index("ix_transactions_seq_timestamp", "seq", "timestamp"),  # time ranges by seq
        # subsystem + kind + time range: the page's seqs from this index alone (then sorted)
        Index("ix_transactions_subsystem_kind_time", "subsystem", "kind", "timestamp", "seq"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    origin: Mapped[str] = mapped_column(String(ADDRESS_LEN), default="", server_default="")
    leaf_index: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    tx_id: Mapped[str] = mapped_column(String(HASH_LEN))
    signer: Mapped[str] = mapped_column(String(ADDRESS_LEN))
    nonce: Mapped[int] = mapped_column(BigInteger)
    subsystem: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    amount: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(16))
    memo: Mapped[str] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(String(CID_LEN), index=True)  # lookup by CID
    #: private transactions: keccak256(salt || plaintext) of the encrypted payload, else "".
    payload_hash: Mapped[str] = mapped_column(String(HASH_LEN), default="", server_default="")
    private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    timestamp: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[str] = mapped_column(String(132))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    cid: Mapped[str] = mapped_column(String(CID_LEN), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True, default=TransactionStatus.PENDING)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    anchor_index: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("anchors.index"), nullable=True, index=True
    )

    parties: Mapped[list[TransactionParty]] = relationship(
        back_populates="transaction",
        cascade="all, delete-orphan",
        order_by="TransactionParty.position",
    )
    anchor: Mapped[Anchor | None] = relationship(back_populates="transactions")


class TransactionParty(Base):
    """One party (address) named by a business transaction, for queries by party."""

    __tablename__ = "transaction_parties"
    __table_args__ = (Index("ix_transaction_parties_address_seq", "address", "tx_seq"),)

    tx_seq: Mapped[int] = mapped_column(
        Integer, ForeignKey("transactions.seq", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(ADDRESS_LEN))

    transaction: Mapped[BusinessTransaction] = relationship(back_populates="parties")


class Anchor(Base):
    """An on-chain anchor: a tree head (size, root) of this node's log, with its batch.

    The batch holds leaves ``[tree_size - count, tree_size)``; ``batch_cid`` names the
    batch document in the content store.
    """

    __tablename__ = "anchors"
    __table_args__ = (Index("ix_anchors_node_index", "node", "index"),)

    index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root: Mapped[str] = mapped_column(String(HASH_LEN))
    tree_size: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    batch_cid: Mapped[str] = mapped_column(String(CID_LEN))
    subsystem: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(ADDRESS_LEN))
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    chain_tx_hash: Mapped[str] = mapped_column(String(HASH_LEN))

    transactions: Mapped[list[BusinessTransaction]] = relationship(back_populates="anchor")


class MerkleNode(Base):
    """A persisted full-subtree hash of a log's RFC 9162 tree (``node.ledger.tree``).

    Node ``(level, idx)`` of log ``origin`` is the Merkle tree hash of leaves
    ``[idx * 2**level, (idx + 1) * 2**level)``; only levels that are positive multiples of
    ``node.ledger.tree.STRIDE`` are stored, level 0 being the leaf hashes in ``transactions``.
    """

    __tablename__ = "merkle_nodes"

    origin: Mapped[str] = mapped_column(String(ADDRESS_LEN), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class MerkleHead(Base):
    """How many leaves of log ``origin`` the persisted ``merkle_nodes`` cover."""

    __tablename__ = "merkle_heads"

    origin: Mapped[str] = mapped_column(String(ADDRESS_LEN), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)


class TimeZone(Base):
    """The smallest and largest signed timestamp of the transactions whose ``seq`` is in
    ``[zone << ZONE_BITS, (zone + 1) << ZONE_BITS)`` (a zone map, ``node.db.zones``; read by
    ``node.ledger.queries``). Widened in the transaction of every write of ``transactions``;
    bounds never shrink."""

    __tablename__ = "transaction_time_zones"

    zone: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    min_timestamp: Mapped[int] = mapped_column(BigInteger)
    max_timestamp: Mapped[int] = mapped_column(BigInteger)


class IndexedBlock(Base):
    """A block the chain follower has indexed: its hash and parent hash detect reorgs."""

    __tablename__ = "indexed_blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(HASH_LEN))
    parent_hash: Mapped[str] = mapped_column(String(HASH_LEN))


class RegistryEvent(Base):
    """One registry event indexed by the follower (the source of the derived tables)."""

    __tablename__ = "registry_events"

    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tx_hash: Mapped[str] = mapped_column(String(HASH_LEN))
    name: Mapped[str] = mapped_column(String(64), index=True)
    args: Mapped[str] = mapped_column(Text)  # JSON, bytes as 0x-hex


class Subsystem(Base):
    """A subsystem created in the registry (derived from ``SubsystemCreated``)."""

    __tablename__ = "subsystems"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(HASH_LEN), unique=True)
    creator: Mapped[str] = mapped_column(String(ADDRESS_LEN))
    block_number: Mapped[int] = mapped_column(BigInteger)


class Participant(Base):
    """A current participant of a subsystem (derived from participant events)."""

    __tablename__ = "participants"

    subsystem: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(ADDRESS_LEN), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)


class RegisteredNode(Base):
    """A node as last registered or updated in the registry (derived from node events)."""

    __tablename__ = "nodes"

    address: Mapped[str] = mapped_column(String(ADDRESS_LEN), primary_key=True)
    endpoint: Mapped[str] = mapped_column(Text)
    capacity: Mapped[int] = mapped_column(Integer)
    roles_mask: Mapped[int] = mapped_column(Integer)
    home: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean)
    block_number: Mapped[int] = mapped_column(BigInteger)


# -- wallet login (node.auth.service): created by revision 0004 -----------------------------
# Session tokens are never stored: only their SHA-256 hash is.


class LoginNonce(Base):
    """A nonce handed out for one SIWE login; ``used_at`` is set when a login consumes it."""

    __tablename__ = "auth_nonces"

    nonce: Mapped[str] = mapped_column(String(NONCE_LEN), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LoginSession(Base):
    """A login session bound to ``address``; ``token_hash`` is sha256(token) in hex."""

    __tablename__ = "auth_sessions"

    token_hash: Mapped[str] = mapped_column(String(HASH_LEN), primary_key=True)
    address: Mapped[str] = mapped_column(String(ADDRESS_LEN), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# -- the key directory (node.keys.directory): created by revision 0005 ----------------------


class ParticipantKey(Base):
    """A participant's public key and how the node learned it (``source``: siwe,
    announcement, peer or self)."""

    __tablename__ = "participant_keys"

    address: Mapped[str] = mapped_column(String(ADDRESS_LEN), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(PUBLIC_KEY_HEX_LEN))
    source: Mapped[str] = mapped_column(String(KEY_SOURCE_LEN))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
