"""covering indexes for the value index

A filter leaf reads (root, path, kind, num, run_pk) and an order lookup reads
(run_pk, root, path, elem, kind, num, txt) from the index alone (bench/query_bench.py).
Index changes only, so no table rebuild.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 05:05:49.456808
"""
from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_run_values_root_path_kind_num", table_name="run_values")
    op.drop_index("ix_run_values_run_pk_root_path", table_name="run_values")
    op.create_index("ix_run_values_root_path_kind_num_run_pk", "run_values",
                    ["root", "path", "kind", "num", "run_pk"])
    op.create_index("ix_run_values_run_pk_root_path_elem_kind_num_txt", "run_values",
                    ["run_pk", "root", "path", "elem", "kind", "num", "txt"])


def downgrade() -> None:
    op.drop_index("ix_run_values_run_pk_root_path_elem_kind_num_txt", table_name="run_values")
    op.drop_index("ix_run_values_root_path_kind_num_run_pk", table_name="run_values")
    op.create_index("ix_run_values_run_pk_root_path", "run_values", ["run_pk", "root", "path"])
    op.create_index("ix_run_values_root_path_kind_num", "run_values",
                    ["root", "path", "kind", "num"])
