"""Owners for reports and banks, shared banks, key roles, and holds on media during intake.

Banks that existed before owners did were used by every verification: they become shared
(operator) banks, so nothing changes for existing deployments. Reports made before owners did
have none and are visible to admin keys only (when keys are in use).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as t:
        t.add_column(sa.Column("owner", sa.String(128), nullable=True))
        t.create_index("ix_reports_owner", ["owner"])
    with op.batch_alter_table("banks") as t:
        t.add_column(sa.Column("owner", sa.String(128), nullable=True))
        t.add_column(sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table("api_keys") as t:
        t.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="user"))
    op.create_table(
        "media_holds",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_media_holds_holder", "media_holds", ["holder"])
    op.create_index("ix_media_holds_sha256", "media_holds", ["sha256"])


def downgrade() -> None:
    op.drop_table("media_holds")
    with op.batch_alter_table("api_keys") as t:
        t.drop_column("role")
    with op.batch_alter_table("banks") as t:
        t.drop_column("shared")
        t.drop_column("owner")
    with op.batch_alter_table("reports") as t:
        t.drop_index("ix_reports_owner")
        t.drop_column("owner")
