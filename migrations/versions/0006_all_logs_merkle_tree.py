"""ledger: every node's leaves (transactions.origin), the persisted Merkle tree, explorer indexes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

``origin`` is ``""`` for this node's own log (every existing row) and another node's
address for the leaves the chain follower indexes from that node's anchors; the unique keys
become per log: (origin, leaf_index), (tx_id, origin), (signer, nonce, origin).
``merkle_nodes``/``merkle_heads`` hold the full-subtree hashes that make proofs O(log n);
they start empty and are filled from the leaf hashes (``node.ledger.tree.catch_up``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("origin", sa.String(length=42), server_default="", nullable=False)
        )
        batch_op.drop_constraint("uq_transactions_leaf_index", type_="unique")
        batch_op.drop_constraint("uq_transactions_signer_nonce", type_="unique")
        batch_op.drop_index("ix_transactions_tx_id")
        batch_op.drop_index("ix_transactions_signer")
        batch_op.create_unique_constraint(
            "uq_transactions_origin_leaf_index", ["origin", "leaf_index"]
        )
        batch_op.create_unique_constraint(
            "uq_transactions_signer_nonce", ["signer", "nonce", "origin"]
        )
        batch_op.create_unique_constraint("uq_transactions_tx_id_origin", ["tx_id", "origin"])
        batch_op.create_index("ix_transactions_signer_seq", ["signer", "seq"], unique=False)
        batch_op.create_index("ix_transactions_seq_timestamp", ["seq", "timestamp"], unique=False)
    with op.batch_alter_table("transaction_parties", schema=None) as batch_op:
        batch_op.drop_index("ix_transaction_parties_address")
        batch_op.create_index("ix_transaction_parties_address_seq", ["address", "tx_seq"])
    op.create_table(
        "merkle_nodes",
        sa.Column("origin", sa.String(length=42), nullable=False),
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("origin", "level", "idx"),
    )
    op.create_table(
        "merkle_heads",
        sa.Column("origin", sa.String(length=42), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("origin"),
    )


def downgrade() -> None:
    op.drop_table("merkle_heads")
    op.drop_table("merkle_nodes")
    with op.batch_alter_table("transaction_parties", schema=None) as batch_op:
        batch_op.drop_index("ix_transaction_parties_address_seq")
        batch_op.create_index("ix_transaction_parties_address", ["address"])
    op.execute("DELETE FROM transaction_parties WHERE tx_seq IN "
               "(SELECT seq FROM transactions WHERE origin <> '')")  # fmt: skip
    op.execute("DELETE FROM transactions WHERE origin <> ''")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_transactions_seq_timestamp")
        batch_op.drop_index("ix_transactions_signer_seq")
        batch_op.drop_constraint("uq_transactions_tx_id_origin", type_="unique")
        batch_op.drop_constraint("uq_transactions_signer_nonce", type_="unique")
        batch_op.drop_constraint("uq_transactions_origin_leaf_index", type_="unique")
        batch_op.create_index("ix_transactions_signer", ["signer"], unique=False)
        batch_op.create_index("ix_transactions_tx_id", ["tx_id"], unique=True)
        batch_op.create_unique_constraint("uq_transactions_signer_nonce", ["signer", "nonce"])
        batch_op.create_unique_constraint("uq_transactions_leaf_index", ["leaf_index"])
        batch_op.drop_column("origin")
