"""Path parameters shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

# Row ids are INTEGER columns: on PostgreSQL a key outside int4 is a DataError (a 500 before
# this bound; found by the schemathesis run), on SQLite one past 2**63 an OverflowError. Such a
# key names no row, so it is refused as input (422) before any query.
INT4_MAX = 2_147_483_647
RowId = Annotated[int, Path(ge=1, le=INT4_MAX, description="行号（正整数）")]
