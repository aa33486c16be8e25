"""artifact collections deleted upstream are marked, like runs, sweeps, reports and versions

A sync whose collection listing was complete stamps ``deleted_at`` on the collections it no
longer holds (soft delete: the row and its versions stay, hidden from reads). One nullable
column, no data change.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 12:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("artifact_collections") as batch:
        batch.add_column(sa.Column("deleted_at", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("artifact_collections") as batch:
        batch.drop_column("deleted_at")
