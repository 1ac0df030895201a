"""Alembic environment of the index database: runs revisions against the URL the node passes in.

Every table of the index is a model in :mod:`node.db.models`, so its metadata is the whole
schema autogenerate compares with. A subsystem's own database has its own environment in
``migrations/subsystem`` (:mod:`node.db.subsystem`).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import engine_from_config, pool

from node.db.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    """Emit SQL for the configured URL without connecting."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run revisions on a live connection."""
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
