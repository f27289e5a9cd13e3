"""Alembic environment: runs on the connection tagtrain hands over (see ``store.db.migrate``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from tagtrain.store.tables import Base

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # `alembic revision --autogenerate` from a shell, with -x url=...
    url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///alembic-dev.db")
    connection = create_engine(url).connect()

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds tables
)
with context.begin_transaction():
    context.run_migrations()
