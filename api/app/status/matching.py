"""Address and ID lookup: find the home a resident means, with its project's status.

Project names and aliases live in a small in-memory index, scored with rapidfuzz on the
characters and on their pinyin, so a homophone typo ('观像山庄') still finds 观象山庄. Each
project's status and homes are kept in memory beside it once looked up (homes up to
UNIT_CACHE_LIMIT per database, least recently used dropped first). All of it is valid for one
ledger token (app/status/ledger_version.py): one primary-key read per lookup tells whether any
process committed a change to projects, blockers or units since, and the caches start anew.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
import weakref
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein
from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload

from app.core.security import hash_id_number
from app.core.workdays import today_shanghai
from app.policy.catalogue import Catalogue, get_catalogue
from app.status import ledger_version
from app.status.address import UnitQuery, compact, normalize_text, parse_unit
from app.status.models import TRANSFER_LABELS, Project, Unit
from app.status.schemas import ProjectStatusRead

# Scores are 0–100. A project is taken as meant when its score reaches MATCH_SCORE and the
# runner-up is at least MARGIN behind; candidates from CANDIDATE_SCORE are offered otherwise.
MATCH_SCORE = 70.0
MARGIN = 10.0
CANDIDATE_SCORE = 60.0
# Same sound, different character counts a little less than the same character.
PINYIN_WEIGHT = 0.9
MAX_CANDIDATES = 5
CANDIDATE_SPREAD = 20.0  # candidates further behind the best one are not offered
MAX_UNIT_ONLY_CANDIDATES = 10
MIN_KEY_LENGTH = 2
FUZZY_SHORTLIST = 12  # keys rescored with the windowed ratio, per characters and per sounds
NAME_WINDOW = 30  # characters before the unit numbers that may hold the project name

DISTRICT_BONUS = 5.0
# A name missing one of its distinctive characters ('观山庄') is offered as a candidate only.
LOSSY_SCORE = MATCH_SCORE - 1  # a fuzzy hit in the district the text names ranks a little higher

MSG_NONE = (
    "没有查到这个地址对应的小区。请告诉我小区名称和楼号、单元、房号，例如“观象山庄3号楼2单元501”。"
)
MSG_UNKNOWN_PROJECT = (
    "没有查到这个小区：台账里没有与这个名称相近的小区。请核对小区名称（也可以说曾用名或门牌地址），"
    "或者说“转人工”，由工作人员帮您查。"
)
MSG_AMBIGUOUS = "有几个小区的名称比较接近，请确认是哪一个。"
MSG_UNIT_ONLY = "有多个小区都有这个房号，请告诉我小区名称。"
MSG_ID_SEVERAL = "您名下有多套房屋，请选择要查询的一套。"
MSG_ID_NONE = "没有查到与这个身份证号和姓名对应的房屋。请核对后再试，或者告诉我小区名称和房号。"

# Words residents put around an address; dropped before fuzzy scoring.
_FILLER = re.compile(
    r"^(你好|您好|请问|麻烦|帮我|帮忙|帮俺|查一下|查询|查查|问一下|我想问|我想查|"
    r"(我|俺|咱)(们)?(家)?(是)?(住)?(在)?|住在|地址是|地址|在|是|那|就是|哦|嗯)+"
)
_TAIL = re.compile(r"(的房子|的房本|的房产证|的证|小区的?)$")
# Words that end many project names and so tell little about which project is meant.
_PHASE = re.compile(r"\d+期$")
_PHASE_IN = re.compile(r"(?<!\d)(\d+)期")
_GENERIC_WORDS = (
    "家属院", "家属楼", "商住楼", "回迁楼", "小区", "花园", "花苑", "家园", "新村", "山庄", "公寓",
    "大厦", "广场", "华府", "华庭", "华苑", "嘉园", "名居", "雅居", "雅苑", "名苑", "名邸",
    "宿舍", "新城", "苑", "园", "村", "城", "湾", "府", "里", "庄", "居", "庭", "院", "邸",
)  # fmt: skip
# Words that make a phrase after the unit numbers read as a project name ('3-2-501观象小区').
_NAME_WORDS = re.compile("|".join(w for w in _GENERIC_WORDS if len(w) > 1))


def _strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


class _Pinyin:
    """Characters → one private-use character per toneless syllable, so rapidfuzz can compare
    sounds as it compares characters (观像 and 观象 give the same string)."""

    def __init__(self) -> None:
        self._table: dict[int, str] | None = None
        self._syllables: dict[str, str] = {}
        self._lock = threading.Lock()

    def _load(self) -> dict[int, str]:
        with self._lock:
            if self._table is None:
                from pypinyin.pinyin_dict import pinyin_dict  # 0.3 s, loaded on first use

                table: dict[int, str] = {}
                for code, readings in pinyin_dict.items():
                    syllable = _strip_accents(readings.split(",", 1)[0])
                    mark = self._syllables.setdefault(syllable, chr(0xE000 + len(self._syllables)))
                    table[code] = mark
                self._table = table
            return self._table

    def encode(self, text: str) -> str:
        """The sound string of text (characters without a reading stay themselves)."""
        table = self._table or self._load()
        return text.translate(table)


pinyin = _Pinyin()


@dataclass(frozen=True)
class _Entry:
    project_id: int
    code: str
    name: str
    keys: tuple[str, ...]  # name and aliases, compact form, for fuzzy scoring
    exact: tuple[str, ...]  # keys plus street address: found verbatim in the text
    district: str = ""  # compact form


def _marks(text: str) -> list[tuple[str, int]]:
    """Each character with its occurrence number ('花花园' → 花1, 花2, 园1): two texts share
    as many marks as characters, counted with repetition."""
    seen: dict[str, int] = {}
    marks = []
    for ch in text:
        n = seen[ch] = seen.get(ch, 0) + 1
        marks.append((ch, n))
    return marks


class _KeyFilter:
    """process.extract with fuzz.partial_ratio over keys, scoring only the keys that can reach
    the cutoff: the same answer as scoring every key, with a fraction of the work.

    partial_ratio compares the shorter of the two texts (length s) with windows of the longer
    one, windows at its edges as short as 1; a window of length w sharing m characters with it
    scores at most 200·m/(s + w) with m ≤ w, and m is at most I, the characters both texts share
    (counted with repetition). So no score passes 200·I/(s + I), and a key whose bound is below
    the cutoff is never among the results. The other keys are scored in their original order,
    so equal scores rank as they did.
    """

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys
        self.lengths = [len(k) for k in keys]
        self.by_mark: dict[tuple[str, int], list[int]] = {}
        for i, key in enumerate(keys):
            for mark in _marks(key):
                self.by_mark.setdefault(mark, []).append(i)

    def extract(self, query: str, cutoff: float, limit: int) -> list[tuple[str, float, int]]:
        """(key, score, position in keys), best first, as process.extract gives them."""
        shared: Counter[int] = Counter()
        for mark in _marks(query):
            positions = self.by_mark.get(mark)
            if positions:
                shared.update(positions)
        n = len(query)
        bound = cutoff - 0.5  # a margin for rounding: a few more keys scored, never fewer
        lengths = self.lengths
        kept = sorted(i for i, m in shared.items() if 200.0 * m >= bound * (min(n, lengths[i]) + m))
        found = process.extract(
            query,
            [self.keys[i] for i in kept],
            scorer=fuzz.partial_ratio,
            score_cutoff=cutoff,
            limit=limit,
        )
        return [(key, score, kept[j]) for key, score, j in found]


@dataclass
class _Index:
    signature: tuple[Any, ...]
    entries: list[_Entry]
    fuzzy_keys: list[str] = field(default_factory=list)
    sound_keys: list[str] = field(default_factory=list)
    # The keys that share enough characters (sounds) with a text to score at all.
    fuzzy_filter: _KeyFilter | None = None
    sound_filter: _KeyFilter | None = None
    shapes: list[_Shape] = field(default_factory=list)  # fuzzy key → where it is distinctive
    owners: list[int] = field(default_factory=list)  # fuzzy key position → entry position
    exact_keys: list[tuple[str, int]] = field(default_factory=list)
    # The first two characters of an exact key → its positions in exact_keys: a key can be in
    # the text only where its first two characters are (keys shorter than that: exact_short).
    exact_by_bigram: dict[str, list[int]] = field(default_factory=dict)
    exact_short: list[int] = field(default_factory=list)
    # A name or alias → the other projects whose name or alias starts with it.
    extended_by: dict[str, tuple[int, ...]] = field(default_factory=dict)
    places: tuple[str, ...] = ()  # county and town names to drop from the text
    districts: tuple[str, ...] = ()  # the projects' district names, longest first
    # score_projects' answers for the texts scored lately (names typed again and again: the
    # same typo, a project the ledger does not have), the oldest dropped first.
    scored: OrderedDict[tuple[Any, ...], list[ProjectHit]] = field(default_factory=OrderedDict)


def name_stem(key: str) -> str:
    """The distinctive part of a compact name: without a phase and one generic word at the end.

    '观象山庄' → '观象', '滨河湾1期' → '滨河', '桂花园' → '桂', '书香门第' → '书香门第'.
    """
    stem = _PHASE.sub("", key) or key
    for word in _GENERIC_WORDS:  # longest first
        if stem.endswith(word) and len(stem) > len(word):
            return stem[: -len(word)]
    return stem


def _street(address: str, district: str) -> str:
    """'青松县城关镇观象路18号' → '观象路18号' (the part after the county and town)."""
    text = compact(address)
    cut = text.find(compact(district)) if district else -1
    if cut >= 0:
        return text[cut + len(compact(district)) :]
    m = re.search(r"[县区市镇乡]", text)
    return text[m.end() :] if m and m.end() < len(text) - 2 else text


def _build_index(db: Session, signature: tuple[Any, ...]) -> _Index:
    rows = db.execute(
        select(Project.id, Project.code, Project.name, Project.aliases, Project.district,
               Project.address).order_by(Project.code)
    ).all()  # fmt: skip
    index = _Index(signature=signature, entries=[])
    places: set[str] = set()
    for pid, code, name, aliases, district, address in rows:
        keys = [compact(x) for x in [name, *(aliases or [])]]
        keys = list(dict.fromkeys(k for k in keys if len(k) >= MIN_KEY_LENGTH))
        exact = [*keys, compact(code)]  # staff and the bot's fallback buttons use the code
        if address:
            exact += [k for k in (compact(address), _street(address, district)) if len(k) >= 4]
        entry = _Entry(
            pid, code, name, tuple(keys), tuple(dict.fromkeys(exact)), compact(district or "")
        )
        pos = len(index.entries)
        index.entries.append(entry)
        for key in entry.keys:
            index.fuzzy_keys.append(key)
            index.sound_keys.append(pinyin.encode(key))  # one mark per character, same length
            index.shapes.append(_Shape.of(key))
            index.owners.append(pos)
        index.exact_keys.extend((key, pos) for key in entry.exact)
        if district:
            places.add(compact(district))
        if address:
            m = re.match(r"^.{1,6}?[县区市]", compact(address))
            if m:
                places.add(m.group())
    index.exact_keys.sort(key=lambda kp: -len(kp[0]))
    for i, (key, _pos) in enumerate(index.exact_keys):
        if len(key) < 2:
            index.exact_short.append(i)
        else:
            index.exact_by_bigram.setdefault(key[:2], []).append(i)
    index.fuzzy_filter = _KeyFilter(index.fuzzy_keys)
    index.sound_filter = _KeyFilter(index.sound_keys)
    index.places = tuple(sorted(places, key=len, reverse=True))
    index.districts = tuple(sorted({e.district for e in index.entries if e.district}, key=len,
                                   reverse=True))  # fmt: skip
    # Sorted keys put every name right before the names that start with it: one pass finds
    # '滨河湾' (an alias of one project) at the start of '滨河湾2期' (another one's name).
    ordered = sorted((key, index.owners[i]) for i, key in enumerate(index.fuzzy_keys))
    extended: dict[str, set[int]] = {}
    for i, (key, pos) in enumerate(ordered):
        for longer, other in ordered[i + 1 :]:
            if not longer.startswith(key):
                break
            if other != pos and longer != key:
                extended.setdefault(key, set()).add(other)
    index.extended_by = {k: tuple(sorted(v)) for k, v in extended.items()}
    return index


# Built once: SQLAlchemy then reuses the compiled form (lookups must stay in single-digit ms).
_SIGNATURE = select(func.count(Project.id), func.max(Project.id), func.max(Project.updated_at))
_PROJECT = (
    select(Project).where(Project.id == bindparam("pid")).options(selectinload(Project.blockers))
)
_PROJECT_UNITS = (
    select(Unit.id, Unit.project_id, Unit.building, Unit.unit, Unit.room, Unit.transfer_status)
    .where(Unit.project_id == bindparam("pid"))
    .order_by(Unit.id)
)
# Homes kept in memory per database (about 200 bytes each); whole projects are dropped, least
# recently looked up first. Project statuses kept: PROJECT_CACHE_LIMIT.
UNIT_CACHE_LIMIT = 300_000
PROJECT_CACHE_LIMIT = 20_000
MAX_UNITS_FOUND = 50
SCORED_CACHE_LIMIT = 2000  # texts whose fuzzy scores are kept per index
_scored_lock = threading.Lock()


class UnitRow(NamedTuple):
    """A home as lookups read it: where it is and its transfer state (no owner data)."""

    id: int
    project_id: int
    building: str
    unit: str
    room: str
    transfer_status: str


# What the answer reads of a home: a cached row, or an ORM unit (ID lookups, unit-only search).
HomeLike = UnitRow | Unit


@dataclass(frozen=True)
class ProjectView:
    """A project as lookups answer it: its id, code and name, the answer's project part and its
    status (schemas.ProjectStatusRead), computed once per ledger token, day and catalogue."""

    id: int
    code: str
    name: str
    read: dict[str, Any]
    status: dict[str, Any]
    # The status as the HTTP answer carries it: through ProjectStatusRead, once.
    status_json: str
    day: date
    catalogue: Catalogue


class _ProjectUnits:
    """One project's homes, by room and by building, in id order (as the unit index query
    ordered them)."""

    def __init__(self, rows: Sequence[UnitRow]) -> None:
        self.rows = list(rows)
        self.by_room: dict[str, list[UnitRow]] = {}
        self.by_building: dict[str, list[UnitRow]] = {}
        for row in self.rows:
            self.by_room.setdefault(row.room, []).append(row)
            self.by_building.setdefault(row.building, []).append(row)

    def find(self, building: str | None, unit: str | None, room: str | None) -> list[UnitRow]:
        """The homes with these parts (None: any), at most MAX_UNITS_FOUND, in id order."""
        if room is not None:
            pool = self.by_room.get(room, [])
        elif building is not None:
            pool = self.by_building.get(building, [])
        else:
            pool = self.rows
        found = [
            r
            for r in pool
            if (building is None or r.building == building)
            and (unit is None or r.unit == unit)
            and (room is None or r.room == room)
        ]
        return found[:MAX_UNITS_FOUND]

    def buildings(self) -> list[str]:
        """The project's buildings (each once)."""
        return list(self.by_building)

    def units_of(self, building: str) -> list[str]:
        """The units of one building (each once, in order)."""
        return sorted({r.unit for r in self.by_building.get(building, [])})

    def rooms_of(self, building: str, unit: str) -> list[str]:
        """The rooms of one building's unit."""
        return [r.room for r in self.by_building.get(building, []) if r.unit == unit]


class LedgerState:
    """Everything lookups keep for one database at one ledger token.

    `shared` states belong to a committed token and keep statuses and homes; a connection with
    uncommitted ledger writes gets a private state (index only, by the old table signature)
    whose statuses and homes are read anew each time.
    """

    def __init__(self, token: Any, index: _Index, shared: bool) -> None:
        self.token = token
        self.index = index
        self.shared = shared
        self.views: OrderedDict[int, ProjectView] = OrderedDict()
        self.units: OrderedDict[int, _ProjectUnits] = OrderedDict()
        self.unit_total = 0
        self.lock = threading.Lock()

    def view(self, db: Session, project_id: int) -> ProjectView | None:
        """The project's view (None: no such project any more)."""
        cat = get_catalogue()
        today = today_shanghai()
        current = self.views.get(project_id)
        if current is not None and current.day == today and current.catalogue is cat:
            return current
        project = db.scalars(_PROJECT, {"pid": project_id}).first()
        if project is None:
            return None
        fresh = _make_view(db, project, cat, today)
        if self.shared:
            with self.lock:
                self.views[project_id] = fresh
                while len(self.views) > PROJECT_CACHE_LIMIT:
                    self.views.popitem(last=False)
        return fresh

    def homes(self, db: Session, project_id: int) -> _ProjectUnits:
        """The project's homes."""
        current = self.units.get(project_id)
        if current is not None:
            return current
        rows = [UnitRow(*r) for r in db.execute(_PROJECT_UNITS, {"pid": project_id})]
        fresh = _ProjectUnits(rows)
        if self.shared:
            with self.lock:
                if project_id not in self.units:
                    self.units[project_id] = fresh
                    self.unit_total += len(rows)
                while self.unit_total > UNIT_CACHE_LIMIT and len(self.units) > 1:
                    _, dropped = self.units.popitem(last=False)
                    self.unit_total -= len(dropped.rows)
        return fresh


def _make_view(db: Session, project: Project, cat: Catalogue, today: date) -> ProjectView:
    from app.status.service import project_status  # imported late: service imports peers

    status = project_status(db=db, project=project, catalogue=cat, today=today)
    return ProjectView(
        id=project.id,
        code=project.code,
        name=project.name,
        read=project_read(project),
        status=status,
        status_json=ProjectStatusRead.model_validate(status).model_dump_json(exclude_unset=True),
        day=today,
        catalogue=cat,
    )


class NeedsDatabase(Exception):
    """A lookup answered from the caches needed the database after all (CachesOnly)."""


class CachesOnly:
    """Stands in for a session when a lookup is answered on the event loop from a LedgerState
    alone: any use of it (a status or homes not cached, a query) raises NeedsDatabase, and the
    lookup is asked again in a worker thread with a real session."""

    def __getattr__(self, name: str) -> Any:
        raise NeedsDatabase(name)


CACHES_ONLY: Any = CachesOnly()


class ProjectIndex:
    """Names and aliases of every project, per database, with the statuses and homes looked up
    (LedgerState), valid while the ledger token stays the same."""

    def __init__(self) -> None:
        self._shared: weakref.WeakKeyDictionary[Engine, LedgerState] = weakref.WeakKeyDictionary()
        self._private: weakref.WeakKeyDictionary[Engine, LedgerState] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def state(self, db: Session) -> LedgerState:
        """The current state for db's database: one primary-key read of the ledger token (or,
        with uncommitted ledger writes on db's connection, the project table's signature).

        A session that holds no connection yet has no uncommitted writes: on PostgreSQL the
        token is then read on a connection kept for that read (ledger_version.read_direct), and
        a lookup answered from the caches never checks out one of the pool's."""
        bind = db.get_bind()
        if (
            isinstance(bind, Engine)
            and not db.in_transaction()
            and ledger_version.direct_reads(bind)
        ):
            engine = bind
            token = ledger_version.read_direct(engine)
        else:
            conn = db.connection()
            engine = conn.engine
            if ledger_version.dirty(conn):
                signature = ("signature", *db.execute(_SIGNATURE).one())
                current = self._private.get(engine)
                if current is not None and current.token == signature:
                    return current
                fresh = LedgerState(signature, _build_index(db, signature), shared=False)
                self._private[engine] = fresh
                return fresh
            token = ledger_version.read(conn)
        current = self._shared.get(engine)
        if current is not None and current.token == token:
            return current
        with self._lock:
            current = self._shared.get(engine)
            if current is not None and current.token == token:
                return current
            fresh = LedgerState(token, _build_index(db, (token,)), shared=True)
            self._shared[engine] = fresh
            return fresh

    def shared(self, engine: Engine, token: str | None) -> LedgerState | None:
        """The state already built for this engine's committed ledger token (None: none yet,
        or an older token's)."""
        current = self._shared.get(engine)
        return current if current is not None and current.token == token else None

    def get(self, db: Session) -> _Index:
        """The project index for db's database."""
        return self.state(db).index

    def clear(self) -> None:
        """Forget everything cached (tests, after bulk changes outside the ORM)."""
        self._shared.clear()
        self._private.clear()


project_index = ProjectIndex()


# --- scoring ------------------------------------------------------------------------------


@dataclass
class ProjectHit:
    """One project and how well the text names it (0–100)."""

    entry: _Entry
    score: float
    exact: bool = False


CLEAN, LOSSY, WRONG = 0, 1, 2
MIN_KEPT = 3  # characters a fuzzy window shares with the key, unless it is the whole key


@dataclass(frozen=True)
class _Shape:
    """Where a compact name is distinctive: its stem (name_stem) and its phase ('2' of 2期)."""

    stem_len: int
    phase: str = ""

    @classmethod
    def of(cls, key: str) -> _Shape:
        """The shape of one fuzzy key."""
        m = _PHASE.search(key)
        return cls(len(name_stem(key)), m.group()[:-1] if m else "")


def _typo_kind(key: str, shape: _Shape, window: str, at_start: bool) -> int:
    """How a window of the text differs from the key: CLEAN, LOSSY or WRONG.

    In the key's distinctive part (its stem) a character may not be wrong or added
    ('幸福花园' is not 桂花园, '金都花园' not 锦华苑: WRONG). One stem character may be missing
    ('观山庄' for 观象山庄, '幸福小区' for 幸福里小区): LOSSY, since the rest may well be another
    project's name; but not when the window left a character out before it ('安康新村' is not
    康居新村: WRONG). Typos in the generic part (山庄/花园/小区) are CLEAN. A window sharing
    fewer than MIN_KEPT characters with the key is WRONG ('瑰园' is not 桂花园) unless the key
    starts with it ('阳光').
    """
    stem = shape.stem_len
    kept_stem = kept = missing = 0
    for op in Levenshtein.opcodes(key, window):
        tag, i1, i2 = op.tag, op.src_start, op.src_end
        if tag == "equal":
            kept += i2 - i1
            kept_stem += max(0, min(i2, stem) - i1)
        elif tag == "delete":
            missing += max(0, min(i2, stem) - i1)
        elif tag == "replace" and i1 < stem:
            return WRONG
        elif tag == "insert" and i1 <= stem:
            return WRONG
    if kept_stem == 0 or (missing and not at_start):
        return WRONG
    if kept < MIN_KEPT and not key.startswith(window):  # '阳光' may start 阳光花园
        return WRONG
    return LOSSY if missing else CLEAN


def _fit(key: str, shape: _Shape, text: str, typed_phase: str = "") -> float:
    """How well text contains key, 0–100.

    The best fuzz.ratio of key against windows of text one character shorter, as long and
    one longer than the key: a name inside a longer sentence scores as the name, a typo
    costs what it costs (see _typo_kind: a WRONG window does not count, a LOSSY one scores at
    most LOSSY_SCORE, so it is offered, never picked). rapidfuzz's partial_ratio also scores
    windows cut at the text's edges, which makes every '…花园' look like '桂花园'. A text no
    longer than the key (a fragment: '观象', '俺家滨河湾') is compared whole and without its
    first characters, each against the whole key, so it never scores as the full name.
    """
    if shape.phase and typed_phase and typed_phase != shape.phase:
        return 0.0  # '滨河湾3期' is neither 滨河湾1期 nor 滨河湾2期
    n = len(key)
    if len(text) <= n:
        # A fragment ('滨河湾', '俺家滨河湾'): it and its ends, so that words before it cost
        # nothing; a changed end still does ('阳光城' is not 阳光花园).
        windows = [(text[i:], i == 0) for i in range(len(text) - MIN_KEY_LENGTH + 1)]
    else:
        windows = [
            (text[i : i + size], i == 0)
            for size in (n - 1, n, n + 1)
            if MIN_KEY_LENGTH <= size <= len(text)
            for i in range(len(text) - size + 1)
        ]
    best = 0.0
    for window, at_start in windows:
        score = float(fuzz.ratio(key, window))
        if score == 100:
            return score
        if score <= best or score < CANDIDATE_SCORE - 5:
            continue
        kind = _typo_kind(key, shape, window, at_start)
        if kind == LOSSY:
            score = min(score, LOSSY_SCORE)
        if kind != WRONG and score > best:
            best = score
    return best


@dataclass(frozen=True)
class NameText:
    """The part of the text that should name the project, and whether it reads as a name."""

    raw: str  # without places and filler words; may end in '小区' or '的房本'
    # The phrase after the unit numbers ('3-2-501，观象小区') counts as a name only with a word
    # like 小区 or 花园 in it: '3-2-501的房本什么时候办' names nothing.
    reads_as_name: bool = True

    @property
    def text(self) -> str:
        """The name without a tail residents add ('观象山庄小区', '…的房本')."""
        return _TAIL.sub("", self.raw)

    def variants(self) -> list[str]:
        """The texts to score: without the tail and, when it differs, with it ('幸福里小区')."""
        return list(dict.fromkeys(t for t in (self.text, self.raw) if len(t) >= MIN_KEY_LENGTH))

    def names_something(self) -> bool:
        """Whether a resident seems to have typed a project name here (so that no match means
        an unknown project, not a unit to be looked for in every project)."""
        letters = re.sub(r"[^\u4e00-\u9fffA-Z]", "", self.text)
        return self.reads_as_name and len(letters) >= MIN_KEY_LENGTH


def _name_text(normalized: str, uq: UnitQuery, places: Iterable[str]) -> NameText:
    """The part of the text that should name the project: the phrase before the unit numbers
    (or after them), without county/town names and filler words."""
    if uq.given:
        before = [p for p in normalized[: uq.start].split("|") if p]
        after = [p for p in normalized[uq.end :].split("|") if p]
        text = before[-1][-NAME_WINDOW:] if before else ""
        if len(NameText(_clean_name(text, places)).text) < MIN_KEY_LENGTH and after:
            return NameText(_clean_name(after[0], places), bool(_NAME_WORDS.search(after[0])))
    else:
        text = normalized.replace("|", "")
    return NameText(_clean_name(text, places))


def _clean_name(text: str, places: Iterable[str]) -> str:
    text = text.replace("-", "")
    for place in places:
        text = text.replace(place, "")
    return _FILLER.sub("", text)


def _exact_hits(index: _Index, normalized: str) -> tuple[list[ProjectHit], str]:
    """Projects whose name, alias or street address appears verbatim (the longest wins)."""
    flat = normalized.replace("|", "").replace("-", "")
    # Only the keys that start at one of the text's character pairs can be in it; taken in
    # exact_keys' order, the loop below finds what a pass over every key would.
    candidates = set(index.exact_short)
    for i in range(len(flat) - 1):
        starting = index.exact_by_bigram.get(flat[i : i + 2])
        if starting:
            candidates.update(starting)
    found: dict[int, str] = {}
    longest = ""
    for key, pos in (index.exact_keys[i] for i in sorted(candidates)):  # longest keys first
        if len(key) < len(longest):
            break
        if key in flat:
            found.setdefault(pos, key)
            longest = key
    hits = [ProjectHit(index.entries[pos], 100.0, exact=True) for pos in found]
    return hits, longest


def typed_districts(index: _Index, normalized: str) -> set[str]:
    """The projects' district names (城关镇, 河西街道) that the text contains."""
    flat = normalized.replace("|", "").replace("-", "")
    return {d for d in index.districts if d in flat}


def score_projects(
    index: _Index, name: NameText, districts: set[str] | frozenset[str] = frozenset()
) -> list[ProjectHit]:
    """Projects the text may name by fuzzy scoring on characters and sounds, best first.

    A key scores only where the text keeps its distinctive part (name_stem), by characters or
    by sound; a hit in a district the text names gets DISTRICT_BONUS.
    """
    variants = name.variants()
    cache_key = (*variants, "|", *sorted(districts))
    cached = index.scored.get(cache_key)
    if cached is not None:
        return list(cached)
    best: dict[int, float] = {}
    cutoff = CANDIDATE_SCORE - 5
    for text in variants:
        m = _PHASE_IN.search(text)
        typed_phase = m.group(1) if m else ""
        for query, keys, weight in (
            (text, index.fuzzy_filter, 1.0),
            (pinyin.encode(text), index.sound_filter, PINYIN_WEIGHT),
        ):
            assert keys is not None  # _build_index sets both
            for key, _raw, i in keys.extract(query, cutoff, FUZZY_SHORTLIST):
                score = _fit(key, index.shapes[i], query, typed_phase) * weight
                pos = index.owners[i]
                if score > best.get(pos, 0.0):
                    best[pos] = score
    hits = []
    for pos, score in best.items():
        entry = index.entries[pos]
        if entry.district and entry.district in districts:
            score = min(100.0, score + DISTRICT_BONUS)
        hits.append(ProjectHit(entry, round(score, 1)))
    hits.sort(key=lambda h: (-h.score, h.entry.code))
    hits = [h for h in hits if h.score >= CANDIDATE_SCORE]
    with _scored_lock:
        index.scored[cache_key] = hits
        while len(index.scored) > SCORED_CACHE_LIMIT:
            index.scored.popitem(last=False)
    return list(hits)


# --- units --------------------------------------------------------------------------------


@dataclass
class UnitResolution:
    """The unit found in one project, or why none was: a Chinese note for the resident.

    `not_found` is set when the ledger has no such building, unit or room in the project;
    `hint` then says what it has ('观象山庄有1–4号楼').
    """

    unit: HomeLike | None = None
    note: str | None = None
    not_found: bool = False
    hint: str | None = None


_UNIT_STATEMENTS: dict[tuple[bool, bool, bool], Any] = {}


def _unit_statement(building: bool, unit: bool, room: bool) -> Any:
    """The unit query for this combination of given parts, built once with bind parameters."""
    key = (building, unit, room)
    stmt = _UNIT_STATEMENTS.get(key)
    if stmt is None:
        stmt = select(Unit).where(Unit.project_id.in_(bindparam("pids", expanding=True)))
        if building:
            stmt = stmt.where(Unit.building == bindparam("building"))
        if unit:
            stmt = stmt.where(Unit.unit == bindparam("unit"))
        if room:
            stmt = stmt.where(Unit.room == bindparam("room"))
        stmt = stmt.order_by(Unit.project_id, Unit.id).limit(50)
        _UNIT_STATEMENTS[key] = stmt
    return stmt


def _units_where(
    db: Session, project_ids: list[int], uq: UnitQuery, unit: str | None
) -> list[Unit]:
    stmt = _unit_statement(uq.building is not None, unit is not None, uq.room is not None)
    params = {"pids": project_ids, "building": uq.building, "unit": unit, "room": uq.room}
    return list(db.scalars(stmt, {k: v for k, v in params.items() if v is not None}))


def find_units(
    db: Session, project_id: int, uq: UnitQuery, state: LedgerState | None = None
) -> list[UnitRow]:
    """The project's units that fit the typed building/unit/room (at most 50)."""
    homes = (state or project_index.state(db)).homes(db, project_id)
    found = homes.find(uq.building, uq.unit, uq.room)
    if not found and uq.unit is not None:
        # '3号楼1单元1502' in a project whose ledger has no 单元: the unit number is noise.
        found = homes.find(uq.building, "", uq.room)
    return found


def _numeric_first(values: Iterable[str]) -> list[str]:
    return sorted(set(values), key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))


def _ranges(values: list[str]) -> list[str]:
    """'1', '2', '3', '5' → ['1–3', '5'] (numbers); letters stay one by one."""
    numbers = [int(v) for v in values if v.isdigit()]
    parts: list[str] = []
    start = prev = None
    for n in numbers:
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            parts.append(f"{start}–{prev}" if prev != start else str(start))
        start = prev = n
    if start is not None:
        parts.append(f"{start}–{prev}" if prev != start else str(start))
    return parts + [v for v in values if not v.isdigit()]


def _span(values: Iterable[str], word: str, limit: int = 4) -> str:
    """'1–4号楼', '1–3、5号楼', 'A、B座', '1–2号楼和A座' (a short text, never a long list)."""
    ordered = _numeric_first(v for v in values if v)
    numbers = _ranges([v for v in ordered if v.isdigit()])
    letters = [v for v in ordered if not v.isdigit()]
    pieces = []
    if numbers:
        more = "等" if len(numbers) > limit else ""
        pieces.append("、".join(numbers[:limit]) + more + word)
    if letters:
        more = "等" if len(letters) > limit else ""
        pieces.append("、".join(letters[:limit]) + more + ("座" if word == "号楼" else word))
    return "和".join(pieces)


def _building_word(building: str) -> str:
    return f"{building}{'座' if building.isalpha() else '号楼'}"


def _what_the_ledger_has(
    db: Session, state: LedgerState, project: ProjectView, uq: UnitQuery
) -> str:
    """A short text of what exists at the level where the typed address stops matching."""
    homes = state.homes(db, project.id)
    buildings = homes.buildings()
    if not buildings:
        return f"台账里还没有{project.name}各户的信息"
    if uq.building is None or uq.building not in buildings:
        return f"{project.name}有{_span(buildings, '号楼')}"
    units = homes.units_of(uq.building)
    where = _building_word(uq.building)
    if uq.unit is not None and uq.unit not in units and any(units):
        return f"{where}有{_span(units, '单元')}"
    unit = uq.unit if uq.unit in units else ("" if "" in units or not units else units[0])
    if uq.unit is None and len([u for u in units if u]) > 1:
        return f"{where}有{_span(units, '单元')}"
    rooms = _numeric_first(homes.rooms_of(uq.building, unit))
    where += f"{unit}单元" if unit else ""
    if not rooms:
        return f"{where}在台账里没有房屋"
    return f"{where}共{len(rooms)}户，房号从{rooms[0]}到{rooms[-1]}"


def _parts_exist(db: Session, state: LedgerState, project: ProjectView, uq: UnitQuery) -> bool:
    """Whether the typed building (and unit) exist in the project, when no room was typed."""
    if uq.building is None:
        return True
    probe = UnitQuery(uq.building, uq.unit, None)
    return bool(find_units(db, project.id, probe, state))


def resolve_unit(
    db: Session, project: ProjectView, uq: UnitQuery, state: LedgerState | None = None
) -> UnitResolution:
    """Find the typed unit in one project; a note says what is missing when it is not found."""
    if not uq.given:
        return UnitResolution()
    state = state or project_index.state(db)
    label = uq.label()
    if uq.room is None:
        if not _parts_exist(db, state, project, uq):
            return _not_found(db, state, project, uq)
        return UnitResolution(note=f"请补充房号（例如“{label}501室”），我再帮您查具体房屋。")
    found = find_units(db, project.id, uq, state)
    if len(found) == 1:
        return UnitResolution(unit=found[0])
    if not found:
        return _not_found(db, state, project, uq)
    missing = "和".join(
        word for word, value in (("楼号", uq.building), ("单元号", uq.unit)) if value is None
    )
    return UnitResolution(note=f"这个小区有多套房屋的房号都是{uq.room}，请补充{missing}。")


def _not_found(
    db: Session, state: LedgerState, project: ProjectView, uq: UnitQuery
) -> UnitResolution:
    hint = _what_the_ledger_has(db, state, project, uq)
    note = (
        f"没有查到{project.name}{uq.label()}：{hint}。请核对楼号、单元和房号；"
        "下面先告诉您小区整体的办证情况。"
    )
    return UnitResolution(note=note, not_found=True, hint=hint)


# --- the answer ---------------------------------------------------------------------------


@dataclass
class AddressMatch:
    """What an address names: `match` is unit, project, ambiguous or none (no status yet).

    `requested` is what was read from the text; `unit_not_found` and `units_hint` are set when
    the project is known but the ledger has no such building, unit or room in it.
    """

    match: str
    project: ProjectView | None = None
    unit: HomeLike | None = None
    message: str | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)
    requested: UnitQuery | None = None
    unit_not_found: bool = False
    units_hint: str | None = None

    @property
    def project_id(self) -> int | None:
        """The matched project's id (unit and project matches)."""
        return self.project.id if self.project is not None else None

    @property
    def unit_id(self) -> int | None:
        """The matched unit's id (unit matches)."""
        return self.unit.id if self.unit is not None else None


def _project_brief(entry_or_project: _Entry | Project | ProjectView) -> dict[str, Any]:
    return {"code": entry_or_project.code, "name": entry_or_project.name}


def project_read(project: Project) -> dict[str, Any]:
    """The project part of a lookup answer (no personal data)."""
    return {
        "code": project.code,
        "name": project.name,
        "aliases": list(project.aliases or []),
        "district": project.district or "",
        "address": project.address or "",
    }


def unit_read(unit: HomeLike) -> dict[str, Any]:
    """The unit part of a lookup answer: where the home is and its transfer state. No owner
    data, masked or not: an address is no proof of identity, and whoever proved the ID and
    name knows them already."""
    return {
        "building": unit.building,
        "unit": unit.unit,
        "room": unit.room,
        "transfer_status": unit.transfer_status,
        "transfer_status_label": TRANSFER_LABELS.get(unit.transfer_status, unit.transfer_status),
    }


def requested_read(uq: UnitQuery) -> dict[str, Any]:
    """The building/unit/room read from the text (None: not typed)."""
    return {"building": uq.building, "unit": uq.unit, "room": uq.room, "label": uq.label()}


def _unit_place(unit: HomeLike) -> dict[str, Any]:
    """Where a unit is, without its owner (for candidate lists)."""
    return {"building": unit.building, "unit": unit.unit, "room": unit.room}


def match_address(*, db: Session, text: str, state: LedgerState | None = None) -> AddressMatch:
    """Resolve a typed address to a unit, a project, ranked candidates or nothing (`state`: the
    ledger state already read, e.g. with db a CachesOnly that only the caches may answer)."""
    normalized = normalize_text(text)
    state = state or project_index.state(db)
    index = state.index
    districts = typed_districts(index, normalized)
    hits, key = _exact_hits(index, normalized)
    if hits:
        # Parse the numbers without the name: '观象路18号3号楼…', '青松壹号1号楼…'.
        uq = parse_unit(normalized.replace(key, "|") if key in normalized else normalized)
        # Two projects of one name: the district the text names tells them apart.
        hits = [h for h in hits if h.entry.district in districts] or hits
    else:
        uq = parse_unit(normalized)
        name = _name_text(normalized, uq, index.places)
        hits = score_projects(index, name, districts)
        if not hits:
            if name.names_something():
                # A name the ledger does not know: never offer other projects' units.
                return AddressMatch("none", message=MSG_UNKNOWN_PROJECT, requested=_given(uq))
            return _unit_only(db, index, uq, districts)
    top = hits[0]
    runner_up = hits[1].score if len(hits) > 1 else 0.0
    if top.score >= MATCH_SCORE and top.score - runner_up >= MARGIN:
        if top.exact and uq.room is not None:
            shared = _shared_prefix(db, state, top, key, uq)
            if shared is not None:
                return shared
        project = state.view(db, top.entry.project_id)
        if project is None:  # deleted since the index was built
            project_index.clear()
            return AddressMatch("none", message=MSG_NONE)
        res = resolve_unit(db, project, uq, state)
        kind = "unit" if res.unit is not None else "project"
        return AddressMatch(
            kind,
            project=project,
            unit=res.unit,
            message=res.note,
            requested=_given(uq),
            unit_not_found=res.not_found,
            units_hint=res.hint,
        )
    close = [h for h in hits if h.score >= top.score - CANDIDATE_SPREAD]
    return _candidates(db, state, close[:MAX_CANDIDATES], uq)


def _given(uq: UnitQuery) -> UnitQuery | None:
    return uq if uq.given else None


def _shared_prefix(
    db: Session, state: LedgerState, top: ProjectHit, key: str, uq: UnitQuery
) -> AddressMatch | None:
    """The text names one project exactly ('滨河湾', its alias) but that name is also the start
    of other projects' names ('滨河湾2期'): when one of those has the typed unit too, the
    resident may mean either, so they are offered as candidates, not picked."""
    index = state.index
    others = index.extended_by.get(key, ())
    if not others:
        return None
    hits = [top]
    for pos in others:
        entry = index.entries[pos]
        if len(find_units(db, entry.project_id, uq, state)) == 1:
            longest = max((k for k in entry.keys if k.startswith(key)), key=len)
            hits.append(ProjectHit(entry, round(100.0 * len(key) / len(longest), 1)))
    if len(hits) == 1:  # only the named project has it: a confident answer
        return None
    return _candidates(db, state, hits[:MAX_CANDIDATES], uq)


def _candidates(
    db: Session, state: LedgerState, hits: list[ProjectHit], uq: UnitQuery
) -> AddressMatch:
    """Several projects fit the name: the ranked candidates, or the one project that has the
    typed unit when it is a good fit ('滨河湾5号楼…': only 滨河湾一期 has a 5号楼)."""
    ranked = []
    for hit in hits:
        units = find_units(db, hit.entry.project_id, uq, state) if uq.room else []
        ranked.append((hit, units[0] if len(units) == 1 else None))
    having = [(hit, unit) for hit, unit in ranked if unit is not None]
    top = max(hit.score for hit in hits)
    if len(having) == 1:
        hit, unit = having[0]
        project = state.view(db, hit.entry.project_id)
        if project is not None and hit.score >= MATCH_SCORE and hit.score >= top - MARGIN:
            return AddressMatch(
                "unit", project=project, unit=unit, requested=_given(uq), unit_not_found=False
            )
    # By score; at equal scores the projects that have the typed unit come first.
    ranked.sort(key=lambda hu: (-hu[0].score, hu[1] is None, hu[0].entry.code))
    candidates = [
        {
            "project": _project_brief(hit.entry),
            "unit": _unit_place(unit) if unit is not None else None,
            "score": hit.score,
        }
        for hit, unit in ranked
    ]
    return AddressMatch(
        "ambiguous", message=MSG_AMBIGUOUS, candidates=candidates, requested=_given(uq)
    )


def _unit_only(db: Session, index: _Index, uq: UnitQuery, districts: set[str]) -> AddressMatch:
    """No project named: the projects that have the typed unit, when it is specific enough
    (only those of the district the text names, when it names one)."""
    if uq.room is None or uq.building is None:
        return AddressMatch("none", message=MSG_NONE, requested=_given(uq))
    entries = [e for e in index.entries if not districts or e.district in districts]
    ids = [e.project_id for e in entries]
    units = _units_where(db, ids, uq, uq.unit) if ids else []
    by_id = {e.project_id: e for e in entries}
    first: dict[int, Unit] = {}
    for unit in units:
        first.setdefault(unit.project_id, unit)
    if not first:
        return AddressMatch("none", message=MSG_NONE, requested=uq)
    # Nothing names the project, so every candidate gets the same modest score.
    candidates = [
        {"project": _project_brief(by_id[pid]), "unit": _unit_place(unit), "score": 50.0}
        for pid, unit in list(first.items())[:MAX_UNIT_ONLY_CANDIDATES]
    ]
    return AddressMatch("ambiguous", message=MSG_UNIT_ONLY, candidates=candidates, requested=uq)


def answer(db: Session, found: AddressMatch) -> dict[str, Any]:
    """The JSON answer of a lookup: project and unit matches carry the project's status.

    Only the keys that apply are set (the view leaves the others out of the answer).
    """
    body: dict[str, Any] = {"match": found.match}
    if found.message:
        body["message"] = found.message
    if found.project is not None:
        body["project"] = found.project.read
        body["status"] = found.project.status
        body["unit_not_found"] = found.unit_not_found
        if found.unit_not_found and found.units_hint:
            body["units_hint"] = found.units_hint
    if found.unit is not None:
        body["unit"] = unit_read(found.unit)
    if found.requested is not None:
        body["requested"] = requested_read(found.requested)
    if found.match == "ambiguous":
        body["candidates"] = found.candidates
    return body


def encode(body: dict[str, Any], found: AddressMatch) -> bytes:
    """The answer as the HTTP body, the same JSON LookupRead (exclude_unset) gives: the parts
    built here hold exactly the schema's fields, and the status comes encoded from the cache."""
    rest = {k: v for k, v in body.items() if k != "status"}
    text = json.dumps(rest, ensure_ascii=False, separators=(",", ":"))
    if "status" in body and found.project is not None:
        text = f'{text[:-1]},"status":{found.project.status_json}}}'
    return text.encode()


def lookup_address(*, db: Session, address: str) -> dict[str, Any]:
    """The lookup answer for a typed address."""
    return answer(db, match_address(db=db, text=address))


_CO_OWNERS = re.compile(r"[、,，;；/]")


def _same_name(ledger_name: str, typed: str) -> bool:
    """The typed name is the ledger's owner name or one of the co-owners it lists ('张三、李四')."""
    want = compact(typed)
    if not want:
        return False
    if compact(ledger_name) == want:
        return True
    return any(compact(part) == want for part in _CO_OWNERS.split(ledger_name or ""))


def lookup_id(*, db: Session, id_number: str, person_name: str) -> dict[str, Any]:
    """The lookup answer for a (validated) ID number AND the owner's name; the answer never
    says which of the two did not match."""
    return answer(db, match_id(db=db, id_number=id_number, person_name=person_name))


# The ledger token and an ID number's homes (with the owner's name, compared here and never
# kept) in one statement: one round trip, one snapshot (match_id_cached).
ID_UNITS_WITH_TOKEN = (
    "SELECT v.token, u.id, u.project_id, u.building, u.unit, u.room, u.transfer_status,"
    " u.owner_name FROM ledger_version v LEFT JOIN (SELECT id, project_id, building, unit,"
    " room, transfer_status, owner_name FROM unit WHERE id_hash = %s ORDER BY id LIMIT 20) u"
    " ON 1 = 1 WHERE v.id = 1"
)


def match_id_cached(
    state: LedgerState | None, rows: Sequence[Sequence[Any]], person_name: str
) -> AddressMatch:
    """match_id's answer from ID_UNITS_WITH_TOKEN's rows and the state of their token (None:
    not built yet) with its cached statuses (not cached: NeedsDatabase, through CachesOnly).
    No home of that ID and name needs no state at all."""
    units = [UnitRow(*r[1:7]) for r in rows if r[1] is not None and _same_name(r[7], person_name)]
    if not units:
        return AddressMatch("none", message=MSG_ID_NONE)
    if state is None:
        raise NeedsDatabase("state")
    if len(units) == 1:
        view = state.view(CACHES_ONLY, units[0].project_id)
        return AddressMatch("unit", project=view, unit=units[0])
    views = {pid: state.view(CACHES_ONLY, pid) for pid in {u.project_id for u in units}}
    if any(v is None for v in views.values()):
        raise NeedsDatabase("project")
    candidates = [
        {"project": _project_brief(views[u.project_id]), "unit": _unit_place(u), "score": 100.0}  # type: ignore[arg-type]
        for u in units
    ]
    return AddressMatch("ambiguous", message=MSG_ID_SEVERAL, candidates=candidates)


def match_id(*, db: Session, id_number: str, person_name: str) -> AddressMatch:
    """The home(s) of a (validated) ID number AND the owner's name (no status yet)."""
    digest = hash_id_number(id_number)
    stmt = select(Unit).where(Unit.id_hash == digest).order_by(Unit.id).limit(20)
    units = [u for u in db.scalars(stmt) if _same_name(u.owner_name, person_name)]
    if not units:
        return AddressMatch("none", message=MSG_ID_NONE)
    state = project_index.state(db)
    if len(units) == 1:
        view = state.view(db, units[0].project_id)
        return AddressMatch("unit", project=view, unit=units[0])
    # Through the views (cached): the same code and name, and match_id_cached finds them.
    views = {pid: state.view(db, pid) for pid in {u.project_id for u in units}}
    candidates = [
        {"project": _project_brief(views[u.project_id]), "unit": _unit_place(u), "score": 100.0}  # type: ignore[arg-type]
        for u in units
    ]
    return AddressMatch("ambiguous", message=MSG_ID_SEVERAL, candidates=candidates)
