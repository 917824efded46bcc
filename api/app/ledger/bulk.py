"""A province's first ledger into PostgreSQL: units checked column-wise and COPYed into `unit`.

The per-row import (app.ledger.service) is the reference: its checks, its Chinese error report.
This path only takes a ledger it can vouch for, and gives way to it otherwise:

- when it applies: PostgreSQL with psycopg, no error so far, every units sheet a UTF-8 CSV
  whose first line is the header of exactly the seven unit columns, at least
  `ledger_bulk_min_rows` rows in all and at least as many as `unit` holds;
- each block of rows is read by pyarrow; the columns with few distinct values (project code,
  幢号, 单元, 房号, 转移登记) are checked and normalised once per distinct value, by the very
  functions the per-row import uses; ID numbers are checked column-wise (format, birth date,
  check digit) and hashed in one loop; a row any of this cannot vouch for (spaces around a
  name, a full-width ID…) goes through the per-row validator itself;
- the unit table's unique constraint, secondary indexes and foreign key are dropped inside the
  import's transaction, every row is COPYed straight into `unit`, and they are rebuilt: building
  an index once is far cheaper than keeping it up to date row by row, and the rebuilt unique
  constraint is the duplicate check;
- anything it cannot vouch for (a bad row, a home twice, a home already in the table, a file
  pyarrow reads differently, a lock it cannot get) raises Abandon: the caller rolls back to the
  savepoint taken before the first write (the indexes come back with it) and the per-row
  import reads the file again and reports exactly what it always has.

The table is locked (ACCESS EXCLUSIVE) from the first write to the commit: lookups wait, which
is why this is for a first load (docs/ledger.md, docs/scale.md), not for an update.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.core.config import settings
from app.core.security import hash_id_numbers
from app.ledger.reader import UNIT_COLUMNS, Sheet
from app.ledger.rows import ID_PART_SUMS, Errors, UnitValidator, cached_normalize_part
from app.status import ledger_version
from app.status.idcard import ID_CHECK, weighted_sum
from app.status.models import TRANSFER_STATUSES, UNIT_LEDGER_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Abandon", "BulkResult", "applies", "load_units"]

log = logging.getLogger("app.ledger")

# Bytes of CSV per block (about 16,000 rows): the bigger the block, the more memory pyarrow
# holds meanwhile (3.1M units: peak RSS 251 MB at 1 MB, 301 MB at 2 MB) for little speed.
BLOCK_BYTES = 1 << 20
# A cell longer than this (bytes) is left to the per-row import (its CSV reader caps fields).
_MAX_CELL_BYTES = 4096
_MAX_PART, _MAX_OWNER = 32, 64
_UNIT_TARGET = ("project_id", *UNIT_LEDGER_COLUMNS, "updated_at")
# Every character Python's str.strip() removes: a name or ID starting or ending with one of them
# goes through the per-row validator (pyarrow's own trimming knows a slightly different set).
_SPACE_CLASS = "".join(
    f"\\x{{{cp:x}}}" for cp in range(0x110000) if chr(cp).isspace() and cp not in (0xD800,)
)
_SPACE_AT_ENDS = f"^[{_SPACE_CLASS}]|[{_SPACE_CLASS}]$"


class Abandon(Exception):
    """This ledger is not one the bulk path can vouch for: the per-row import takes over.

    Its message says why in general terms only, for the log: never a cell, a row or a driver's
    message (pyarrow and PostgreSQL quote the row, names and ID numbers included)."""


@dataclass
class BulkResult:
    """What the bulk load wrote: every unit row is new; per project (units, transfer done)."""

    created: int
    tallies: dict[int, tuple[int, int]]


def applies(db: Session, unit_sheets: Sequence[Sheet]) -> bool:
    """Whether these units sheets are a first load the bulk path may try (see the module)."""
    if not unit_sheets or db.get_bind().dialect.name != "postgresql":
        return False
    driver = db.connection().connection.driver_connection
    if not any(k.__module__.startswith("psycopg") for k in type(driver).__mro__):
        return False
    rows = 0
    for sheet in unit_sheets:
        src = sheet.csv_source
        if (
            src is None
            or src.encoding not in ("utf-8", "utf-8-sig")
            or sheet.header_row != 1
            or sorted(sheet.columns.values()) != list(range(len(UNIT_COLUMNS)))
            or sheet.total_rows is None
        ):
            return False
        rows += sheet.total_rows
    if rows < settings.ledger_bulk_min_rows:
        return False
    held = db.execute(text("SELECT count(*) FROM unit")).scalar_one()
    return rows >= int(held)


def load_units(
    db: Session,
    unit_sheets: Sequence[Sheet],
    now: datetime,
    on_rows: Callable[[Sheet, int], None] | None = None,
) -> BulkResult:
    """Load every row of these sheets into `unit`; raises Abandon (see the module).

    The caller holds a savepoint taken before this call and rolls back to it on Abandon.
    """
    conn = db.connection()
    projects = {code: pid for code, pid in conn.execute(text("SELECT code, id FROM project"))}
    # Projects that already have homes: their rows are updates, not the bulk path's business.
    populated = set(
        conn.scalars(
            text(
                "SELECT p.id FROM project p "
                "WHERE EXISTS (SELECT 1 FROM unit u WHERE u.project_id = p.id)"
            )
        )
    )
    eligible = {code: pid for code, pid in projects.items() if pid not in populated}
    driver = conn.connection.driver_connection
    assert driver is not None
    start = time.perf_counter()
    # The table is locked and its indexes dropped only once a first block has passed: a
    # re-import (its homes already there) gives way before it touches the table.
    rebuild: _Rebuild | None = None
    writer: _CopyWriter | None = None
    created = 0
    tallies: dict[int, tuple[int, int]] = {}
    try:
        for sheet in unit_sheets:
            check = _BlockCheck(sheet, eligible, now)
            for block in _blocks(sheet):
                payload, n = check(block)
                if writer is None:
                    rebuild = _drop_unit_indexes(conn)
                    writer = _CopyWriter(driver, now)
                writer.put(payload)
                created += n
                if created > settings.ledger_max_rows:
                    raise Abandon("row cap")  # the per-row import reports the cap
                if on_rows is not None:
                    on_rows(sheet, n)
            for pid, (units, done) in check.tallies.items():
                before = tallies.get(pid, (0, 0))
                tallies[pid] = (before[0] + units, before[1] + done)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()  # give the blocks' memory back
    if writer is None or rebuild is None:
        raise Abandon("no rows")  # the per-row import says what an empty sheet is
    writer.close()
    copied = time.perf_counter()
    _rebuild(conn, rebuild)
    conn.execute(text("ANALYZE unit"))
    # The driver's COPY bypasses the statement hook that marks ledger writes.
    ledger_version.mark_dirty(conn)
    log.info(
        "ledger bulk load: %d units; rows checked and copied in %.1f s, indexes %.1f s",
        created,
        copied - start,
        time.perf_counter() - copied,
    )
    return BulkResult(created, tallies)


# --- reading and checking blocks ------------------------------------------------------------


def _blocks(sheet: Sheet) -> Iterator[pa.RecordBatch]:
    """The sheet's data rows, a block of whole records at a time, parsed by pyarrow.

    The file is cut into blocks here (pyarrow's streaming reader reads 32 blocks ahead, which
    costs memory), at a line break outside quotes: with an even number of quote characters
    before it. That holds as long as quotes only open and close cells, so a cell that holds a
    quote character itself (Excel doubles it; a stray one is kept as it is) is Abandon.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    src = sheet.csv_source
    assert src is not None
    names = [f"c{i}" for i in range(len(UNIT_COLUMNS))]
    # One record batch per block (the block is at most a record longer than BLOCK_BYTES).
    read = pacsv.ReadOptions(column_names=names, use_threads=False, block_size=4 * BLOCK_BYTES)
    parse = pacsv.ParseOptions(delimiter=src.delimiter, newlines_in_values=True)
    convert = pacsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    first = True
    with src.blob.open() as fh:
        for chunk in _records(fh):
            if first:  # the header line (the sheet's header is its first line)
                first = False
                pos = chunk.find(b"\n")
                while pos >= 0 and chunk.count(b'"', 0, pos) % 2:
                    pos = chunk.find(b"\n", pos + 1)
                chunk = chunk[pos + 1 :] if pos >= 0 else b""
                if not chunk:
                    continue
            try:
                table = pacsv.read_csv(pa.py_buffer(chunk), read, parse, convert)
            except (pa.ArrowInvalid, UnicodeDecodeError):
                # A ragged row, a stray byte…: the per-row reader knows how to report it.
                raise Abandon("pyarrow could not read a block of the file") from None
            for column in table.columns:
                if pc.any(pc.match_substring(column, '"')).as_py():
                    raise Abandon("a quote character in a cell")
            yield from table.to_batches()


def _records(fh: Any) -> Iterator[bytes]:
    """The file's bytes in blocks of about BLOCK_BYTES that end at a record's end."""
    rest = b""
    while data := fh.read(BLOCK_BYTES):
        buf = rest + data
        cut = _record_end(buf)
        if cut < 0:
            if len(buf) > 4 * BLOCK_BYTES:
                # A quote that never closes (or a stray one): no record end in sight.
                raise Abandon("a quoted cell that does not end")
            rest = buf
            continue
        yield buf[: cut + 1]
        rest = buf[cut + 1 :]
    if rest:
        yield rest


def _record_end(buf: bytes) -> int:
    """The last line break with an even number of quotes before it (-1: none); one pass."""
    quotes = buf.count(b'"')
    end = len(buf)
    pos = buf.rfind(b"\n")
    while pos >= 0:
        quotes -= buf.count(b'"', pos, end)  # the quotes before pos
        if quotes % 2 == 0:
            return pos
        end = pos
        pos = buf.rfind(b"\n", 0, pos)
    return -1


class _BlockCheck:
    """Checks a sheet's blocks; each becomes CSV for COPY into unit (or Abandon)."""

    def __init__(self, sheet: Sheet, projects: dict[str, int], now: datetime) -> None:
        self.sheet = sheet
        self.col = {name: sheet.columns[name] for name in UNIT_COLUMNS}
        self.projects = projects
        self.now = now.isoformat()
        self.tallies: dict[int, tuple[int, int]] = {}  # project id → (units, transfer done)
        self.validator = UnitValidator(sheet, 0, set(projects))
        self.errors = Errors()
        self.today = date.today()
        self.seq = 0

    def __call__(self, block: pa.RecordBatch) -> tuple[bytes, int]:
        import pyarrow as pa
        import pyarrow.compute as pc

        cols = [block.column(i) for i in range(block.num_columns)]
        lengths = [pc.binary_length(c) for c in cols]
        if any((pc.max(n).as_py() or 0) > _MAX_CELL_BYTES for n in lengths):
            raise Abandon("a very long cell")
        # Rows whose every cell is empty are skipped, as the per-row reader skips them.
        filled = functools.reduce(pc.or_, (pc.greater(n, 0) for n in lengths))

        def col(name: str) -> pa.Array:
            return cols[self.col[name]]

        text_ = pa.string()
        project_id, project_ok = self._by_value(col("项目编号"), self._project, pa.int32())
        building, building_ok = self._by_value(col("幢号"), functools.partial(_part, True), text_)
        unit, unit_ok = self._by_value(col("单元"), functools.partial(_part, False), text_)
        room, room_ok = self._by_value(col("房号"), functools.partial(_part, True), text_)
        status, status_ok = self._by_value(col("转移登记"), _status, text_)
        owner = col("业主姓名")
        owner_ok = pc.and_(
            pc.less_equal(pc.utf8_length(owner), _MAX_OWNER),
            pc.invert(pc.match_substring_regex(owner, _SPACE_AT_ENDS)),
        )
        ids = col("身份证号")
        has_id = pc.greater(lengths[self.col["身份证号"]], 0)
        id_ok = pc.or_(pc.invert(has_id), self._id_valid(ids))
        fast = functools.reduce(
            pc.and_, (project_ok, building_ok, unit_ok, room_ok, status_ok, owner_ok, id_ok)
        )
        fast = pc.fill_null(pc.and_(fast, filled), False)
        slow = pc.and_(pc.invert(fast), filled)

        table = pa.record_batch(
            {
                "project_id": project_id,
                "building": building,
                "unit": unit,
                "room": room,
                "owner_name": owner,
                "id": ids,
                "has_id": has_id,
                "transfer_status": status,
            }
        ).filter(fast)
        n_fast = table.num_rows
        parts = [self._fast_rows(table)]
        slow_rows = self._slow_rows(block, slow)
        if slow_rows is not None:
            parts.append(slow_rows)
        self.seq += n_fast + (0 if slow_rows is None else slow_rows.num_rows)
        for t in parts:
            self._count(t)
        return b"".join(_csv(t) for t in parts), sum(t.num_rows for t in parts)

    def _count(self, table: pa.Table) -> None:
        """Add a table's units to the per-project totals (the dashboard's unit tally)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        done = pc.cast(pc.equal(table.column("transfer_status"), "done"), pa.int64())
        grouped = (
            pa.table({"p": table.column("project_id"), "d": done})
            .group_by("p")
            .aggregate([("d", "sum"), ("d", "count")])
        )
        for pid, n_done, units in zip(
            grouped.column("p").to_pylist(),
            grouped.column("d_sum").to_pylist(),
            grouped.column("d_count").to_pylist(),
            strict=True,
        ):
            had = self.tallies.get(pid, (0, 0))
            self.tallies[pid] = (had[0] + units, had[1] + n_done)

    def _fast_rows(self, table: pa.RecordBatch) -> pa.Table:
        import pyarrow as pa
        import pyarrow.compute as pc

        ids = table.column("id")
        has_id = table.column("has_id")
        hashes = pa.array(hash_id_numbers(pc.filter(ids, has_id).to_pylist()), pa.string())
        id_hash = pc.replace_with_mask(pa.nulls(table.num_rows, pa.string()), has_id, hashes)
        last4 = pc.if_else(has_id, pc.utf8_slice_codeunits(ids, 14, 18), None)
        return self._unit_table(
            table.column("project_id"),
            table.column("building"),
            table.column("unit"),
            table.column("room"),
            table.column("owner_name"),
            id_hash,
            last4,
            table.column("transfer_status"),
        )

    def _slow_rows(self, block: pa.RecordBatch, slow: pa.Array) -> pa.Table | None:
        """The rows column-wise checks could not vouch for, through the per-row validator."""
        import pyarrow as pa

        picked = block.filter(slow)
        if picked.num_rows == 0:
            return None
        rows: list[tuple[Any, ...]] = []
        for i, raw in enumerate(zip(*(c.to_pylist() for c in picked.columns), strict=True)):
            cells = tuple(v.strip() for v in raw)
            if not any(cells):
                continue
            staged = self.validator(self.seq + i + 1, 0, cells, self.errors)
            if staged is None or self.errors.total or staged[-1] == "":
                raise Abandon("a row the per-row import refuses")
            rows.append(staged)
        if not rows:
            return None
        _seq, _sheet, _no, codes, b, u, r, owner, id_hash, last4, status = zip(*rows, strict=True)
        ids = [self.projects[c] for c in codes]
        return self._unit_table(
            pa.array(ids, pa.int32()),
            pa.array(b, pa.string()),
            pa.array(u, pa.string()),
            pa.array(r, pa.string()),
            pa.array(owner, pa.string()),
            pa.array(id_hash, pa.string()),
            pa.array(last4, pa.string()),
            pa.array(status, pa.string()),
        )

    def _unit_table(self, *columns: Any) -> pa.Table:
        """A table of unit rows in COPY's column order, updated_at now."""
        import pyarrow as pa

        rows = len(columns[0])
        stamped = (*columns, pa.repeat(pa.scalar(self.now), rows))
        return pa.table(dict(zip(_UNIT_TARGET, stamped, strict=True)))

    @staticmethod
    def _by_value(
        column: pa.Array, judge: Callable[[str], Any], kind: pa.DataType
    ) -> tuple[pa.Array, pa.Array]:
        """judge() once per distinct value: (the values it gives, per row; where it gave one)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        encoded = pc.dictionary_encode(column)
        values = pa.array([judge(v) for v in encoded.dictionary.to_pylist()], type=kind)
        out = pc.take(values, encoded.indices)
        return out, pc.is_valid(out)

    def _project(self, raw: str) -> int | None:
        return self.projects.get(raw.strip())

    def _id_valid(self, ids: pa.Array) -> pa.Array:
        """True where rows.IdChecker.valid would say so, column-wise: 17 digits and the
        check character that fits them, with a real birth date (False elsewhere)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        part_sums, checks, date_sums = _id_tables(self.today)
        shaped = pc.match_substring_regex(ids, r"^[0-9]{17}[0-9X]$")
        # Digits everywhere, so that the parts cast to numbers; the verdict keeps `shaped`.
        digits = pc.if_else(shaped, ids, _STAND_IN)

        def number(lo: int, hi: int) -> pa.Array:
            return pc.cast(pc.utf8_slice_codeunits(digits, lo, hi), pa.int32())

        total = None
        for lo, sums in zip((0, 3, 14), part_sums, strict=True):
            term = pc.take(sums, number(lo, lo + 3))
            total = term if total is None else pc.add(total, term)
        day = pc.subtract(number(6, 14), _FIRST_BIRTH_DATE)
        in_range = pc.and_(pc.greater_equal(day, 0), pc.less(day, len(date_sums)))
        # Null where the birth date is not a real day between 1900 and today.
        born = pc.take(date_sums, pc.if_else(in_range, day, None))
        total = pc.add(total, born)
        rest = pc.subtract(total, pc.multiply(pc.divide(total, 11), 11))
        check = pc.take(checks, pc.fill_null(rest, 0))
        verdict = pc.and_(shaped, pc.is_valid(total))
        verdict = pc.and_(verdict, pc.equal(check, pc.utf8_slice_codeunits(ids, 17, 18)))
        return pc.fill_null(verdict, False)


# YYYYMMDD as a number, counted from the first birth date an ID may carry.
_FIRST_BIRTH_DATE = 19000101
_STAND_IN = "000000190001010000"


@functools.cache
def _id_tables(today: date) -> tuple[tuple[Any, ...], Any, Any]:
    """The check-digit sum of each three-digit part by its value (positions 0–2, 3–5, 14–16),
    the check characters by sum mod 11, and the birth date's part of the sum by YYYYMMDD -
    19000101 (null for a number that is no day between 1900 and today)."""
    import pyarrow as pa

    sums = tuple(pa.array([t[f"{n:03d}"] for n in range(1000)], pa.int32()) for t in ID_PART_SUMS)
    by_day: list[int | None] = [None] * (int(today.strftime("%Y%m%d")) - _FIRST_BIRTH_DATE + 1)
    for n in range(date(1900, 1, 1).toordinal(), today.toordinal() + 1):
        ymd = date.fromordinal(n).strftime("%Y%m%d")
        by_day[int(ymd) - _FIRST_BIRTH_DATE] = weighted_sum(ymd, 6)
    return sums, pa.array(list(ID_CHECK)), pa.array(by_day, pa.int32())


def _part(required: bool, raw: str) -> str | None:
    """幢号/单元/房号 normalised as the per-row import does; None where it would refuse it."""
    value = cached_normalize_part(raw.strip())
    if (required and not value) or len(value) > _MAX_PART:
        return None
    return value


def _status(raw: str) -> str | None:
    return TRANSFER_STATUSES.get(raw.strip())


def _csv(table: pa.Table) -> bytes:
    """COPY's CSV: empty strings quoted, NULL as nothing (psycopg sends it as it is)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if table.num_rows == 0:
        return b""
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    data: bytes = sink.getvalue().to_pybytes()
    return data


# --- writing ------------------------------------------------------------------------------


class _CopyWriter:
    """One COPY into unit, fed from a second thread while the caller checks the next block."""

    def __init__(self, driver: Any, now: datetime) -> None:
        self.driver = driver
        self.now = now
        self.error: BaseException | None = None
        self._queue: queue.Queue[bytes | None] = queue.Queue(2)
        self._aborted = False
        self._thread = threading.Thread(target=self._loop, name="ledger-bulk", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        cols = ", ".join(_UNIT_TARGET)
        ended = False  # the caller's None has been taken
        try:
            with (
                self.driver.cursor() as cur,
                cur.copy(f"COPY unit ({cols}) FROM STDIN WITH (FORMAT csv)") as copy,
            ):
                while (payload := self._queue.get()) is not None:
                    if self._aborted:
                        raise Abandon("aborted")
                    copy.write(payload)
                ended = True
        except BaseException as exc:  # re-raised in the caller's thread
            self.error = exc
            while not ended:  # keep draining: the caller never blocks
                ended = self._queue.get() is None

    def put(self, payload: bytes) -> None:
        if self.error is not None:
            raise Abandon(f"COPY into unit failed ({type(self.error).__name__})")
        if payload:
            self._queue.put(payload)

    def abort(self) -> None:
        self._aborted = True
        self._queue.put(b"")
        self._queue.put(None)
        self._thread.join()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise Abandon(f"COPY into unit failed ({type(self.error).__name__})")


# --- the unit table's indexes -------------------------------------------------------------


@dataclass
class _Rebuild:
    restore: dict[str, str]
    unique: list[tuple[str, str]]
    foreign: list[tuple[str, str]]
    indexes: list[str]


def _drop_unit_indexes(conn: Any) -> _Rebuild:
    """Drop unit's unique constraints, foreign keys and secondary indexes (not the primary key,
    which petitions refer to); what _rebuild needs to make them again, exactly as they were."""
    restore = {
        name: str(conn.execute(text(f"SHOW {name}")).scalar_one())
        for name in ("lock_timeout", "maintenance_work_mem")
    }
    # A lookup holding the table for long: give way rather than make every other lookup queue.
    conn.execute(text("SELECT set_config('lock_timeout', '10s', true)"))
    cons = conn.execute(
        text(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'unit'::regclass AND contype IN ('u', 'f') ORDER BY conname"
        )
    ).all()
    indexes = list(
        conn.scalars(
            text(
                "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "WHERE i.indrelid = 'unit'::regclass AND NOT i.indisprimary AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
                "ORDER BY i.indexrelid"
            )
        )
    )
    names = list(
        conn.scalars(
            text(
                "SELECT i.indexrelid::regclass::text FROM pg_index i "
                "WHERE i.indrelid = 'unit'::regclass AND NOT i.indisprimary AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
                "ORDER BY i.indexrelid"
            )
        )
    )
    try:
        for name, _kind, _definition in cons:
            conn.execute(text(f'ALTER TABLE unit DROP CONSTRAINT "{name}"'))
        for name in names:
            conn.execute(text(f"DROP INDEX {name}"))
    except DBAPIError as exc:
        raise Abandon(f"the unit table is busy ({type(exc.orig).__name__})") from None
    return _Rebuild(
        restore,
        [(n, d) for n, k, d in cons if k == "u"],
        [(n, d) for n, k, d in cons if k == "f"],
        indexes,
    )


def _rebuild(conn: Any, rebuild: _Rebuild) -> None:
    """Make the dropped constraints and indexes again; a home twice is Abandon."""
    from sqlalchemy.exc import IntegrityError

    conn.execute(text("SELECT set_config('maintenance_work_mem', '256MB', true)"))
    try:
        for name, definition in rebuild.unique:
            conn.execute(text(f'ALTER TABLE unit ADD CONSTRAINT "{name}" {definition}'))
    except IntegrityError:
        raise Abandon("a home twice") from None
    for definition in rebuild.indexes:
        conn.execute(text(definition))
    for name, definition in rebuild.foreign:
        conn.execute(text(f'ALTER TABLE unit ADD CONSTRAINT "{name}" {definition}'))
    for name, value in rebuild.restore.items():
        conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
