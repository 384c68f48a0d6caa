"""Reports and the append-only audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("confidence", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("batch_id", sa.String(32), nullable=True),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
    )
    op.create_index("ix_reports_sha256", "reports", ["sha256"])
    op.create_index("ix_reports_label", "reports", ["label"])
    op.create_index("ix_reports_created_at", "reports", ["created_at"])
    op.create_index("ix_reports_batch_id", "reports", ["batch_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("report_id", sa.String(32), nullable=True),
        sa.Column("label", sa.String(16), nullable=True),
        sa.Column("versions", sa.Text(), nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_sha256", "audit_log", ["sha256"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("reports")
