"""The ledger token that lookups cache by (issue 15): one row, a new random token at every
committed change of projects, blockers or units (app/status/ledger_version.py).

Kept apart from the initial migration, which is regenerated from the models
(scripts/regen_migration.sh keeps the later ones); it creates the table only where the
regenerated initial migration has not.

Revision ID: 0004
Revises: 0003
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ledger_version with its one row."""
    bind = op.get_bind()
    if not sa.inspect(bind).has_table("ledger_version"):
        op.create_table(
            "ledger_version",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("token", sa.String(length=32), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_version")),
        )
    if bind.execute(sa.text("SELECT count(*) FROM ledger_version")).scalar() == 0:
        bind.execute(
            sa.text("INSERT INTO ledger_version (id, token) VALUES (1, :token)"),
            {"token": uuid.uuid4().hex},
        )


def downgrade() -> None:
    """Drop ledger_version."""
    op.drop_table("ledger_version")
