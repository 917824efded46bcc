"""Dashboard running totals (issue 15): unit_tally, petition_tally, project_petition_tally,
department_tally, the triggers that keep them, and an index for a date range's petitions.

With a province's 3.1M units and 200,000 petitions the dashboard can no longer count units and
petitions on every request; app.dashboard.tally keeps the totals (triggers on `petition`, the
ledger import refreshing `unit_tally`). This revision creates the two tables where the initial
schema does not have them yet, installs the triggers and counts what is already there.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Tables (unless the regenerated initial schema made them), triggers, first count."""
    from app.dashboard import tally

    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    if "unit_tally" not in existing:
        op.create_table(
            "unit_tally",
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("units", sa.Integer(), nullable=False),
            sa.Column("transfer_done", sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint(
                ["project_id"],
                ["project.id"],
                name=op.f("fk_unit_tally_project_id_project"),
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("project_id", name=op.f("pk_unit_tally")),
        )
    if "petition_tally" not in existing:
        op.create_table(
            "petition_tally",
            sa.Column("intake_date", sa.Date(), nullable=False),
            sa.Column("status", sa.String(length=24), nullable=False),
            *(
                sa.Column(name, sa.Integer(), nullable=False)
                for name in ("n", "on_time", "rated", "content", "by_phone", "reviews")
            ),
            sa.PrimaryKeyConstraint("intake_date", "status", name=op.f("pk_petition_tally")),
        )
    if "project_petition_tally" not in existing:
        op.create_table(
            "project_petition_tally",
            sa.Column("project_id", sa.Integer(), nullable=False),
            sa.Column("n", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("project_id", name=op.f("pk_project_petition_tally")),
        )
    if "department_tally" not in existing:
        op.create_table(
            "department_tally",
            sa.Column("department", sa.String(length=64), nullable=False),
            sa.Column("assigned", sa.Integer(), nullable=False),
            sa.Column("answered", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("department", name=op.f("pk_department_tally")),
        )
    indexes = {ix["name"] for ix in sa.inspect(bind).get_indexes("petition")}
    if "ix_petition_intake_project" not in indexes:
        op.create_index("ix_petition_intake_project", "petition", ["intake_date", "project_id"])
    tally.install_triggers(bind)
    tally.rebuild(bind)


def downgrade() -> None:
    """Triggers and tables gone."""
    from app.dashboard import tally

    bind = op.get_bind()
    for statement in tally.drop_ddl(bind.dialect.name):
        bind.exec_driver_sql(statement)
    op.drop_index("ix_petition_intake_project", table_name="petition")
    for table in ("department_tally", "project_petition_tally", "petition_tally", "unit_tally"):
        op.drop_table(table)
