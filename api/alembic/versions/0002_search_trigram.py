"""PostgreSQL: trigram indexes for the staff search box (issue 14).

The petition search matches any part of the number, the resident's name, the phone and the
address (`LIKE '%…%'`); with 200,000 petitions a scan of them is too slow for the console, and
pg_trgm's GIN indexes answer such patterns (three characters or more) from the index. SQLite
(the embedded default, a county's petitions at most) scans and needs nothing here.

Kept apart from the initial migration, which is regenerated from the models
(scripts/regen_migration.sh keeps the later ones).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("number", "person_name", "phone", "address")


def upgrade() -> None:
    """Create pg_trgm (a trusted extension: the database owner may) and the indexes."""
    if op.get_bind().dialect.name != "postgresql":
        return
    # Database-wide, in public: a schema of its own (tests) may be dropped without it.
    op.execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') "
        "THEN CREATE EXTENSION pg_trgm SCHEMA public; END IF; END $$"
    )
    schema = (
        op.get_bind()
        .exec_driver_sql(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm'"
        )
        .scalar_one()
    )
    for column in COLUMNS:
        op.execute(
            f"CREATE INDEX IF NOT EXISTS ix_petition_{column}_trgm ON petition "
            f'USING gin ({column} "{schema}".gin_trgm_ops)'
        )


def downgrade() -> None:
    """Drop the indexes (the extension stays: others may use it)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(f"DROP INDEX IF EXISTS ix_petition_{column}_trgm")
