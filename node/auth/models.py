"""SQL models of wallet login: single-use nonces and sessions (in the node's index DB).

Declared on :class:`node.db.models.Base`; created by the Alembic revision ``0004``.
Session tokens are never stored: only their SHA-256 hash is.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from node.db.models import ADDRESS_LEN, HASH_LEN, Base

NONCE_LEN = 64


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
