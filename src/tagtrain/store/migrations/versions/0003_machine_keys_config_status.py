"""machine keys, config, deployment and status

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Defaults on the server side so machines registered before this revision get valid values.
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("key_prefix", sa.String(length=16), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("config", sa.Text(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("deploy_model_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("deploy_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_seen_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("status", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "updated_at",
                sa.DateTime(),
                nullable=False,
                server_default=sa.text("CURRENT_TIMESTAMP"),
            )
        )
        batch_op.create_index("ix_machines_key_hash", ["key_hash"], unique=True)
        batch_op.create_foreign_key(
            "fk_machines_deploy_model_id_models",
            "models",
            ["deploy_model_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("machines", schema=None) as batch_op:
        batch_op.drop_constraint("fk_machines_deploy_model_id_models", type_="foreignkey")
        batch_op.drop_index("ix_machines_key_hash")
        for column in (
            "updated_at",
            "status",
            "last_seen_at",
            "deploy_version",
            "deploy_model_id",
            "config",
            "key_prefix",
            "key_hash",
        ):
            batch_op.drop_column(column)
