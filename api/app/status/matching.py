"""Address and ID lookup: find the home a resident means, with its project's status.

Project names and aliases live in a small in-memory index (rebuilt only when the project
table changes: one cheap aggregate query per lookup tells), scored with rapidfuzz on the
characters and on their pinyin, so a homophone typo ('观像山庄') still finds 观象山庄.
Units are then looked up by the unique (project, building, unit, room) index.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.core.security import hash_id_number, mask_id, mask_name
from app.status.address import UnitQuery, compact, normalize_text, parse_unit
from app.status.models import TRANSFER_LABELS, Project, Unit

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

MSG_NONE = (
    "没有找到这个地址对应的小区。请告诉我小区名称和楼号、单元、房号，例如“观象山庄3号楼2单元501”。"
)
MSG_AMBIGUOUS = "有几个小区的名称比较接近，请确认是哪一个。"
MSG_UNIT_ONLY = "有多个小区都有这个房号，请告诉我小区名称。"
MSG_ID_SEVERAL = "您名下有多套房屋，请选择要查询的一套。"
MSG_ID_NONE = "没有查到与这个身份证号和姓名对应的房屋。请核对后再试，或者告诉我小区名称和房号。"

# Words residents put around an address; dropped before fuzzy scoring.
_FILLER = re.compile(
    r"^(你好|您好|请问|麻烦|帮我|帮忙|查一下|查询|查查|我想问|我想查|我家在|我家住在|我家住|我住在|"
    r"我家是|我家|我住|住在|我在|地址是|地址|在)+"
)
_TAIL = re.compile(r"(的房子|的房本|的房产证|的证|小区的?)$")


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


@dataclass
class _Index:
    signature: tuple[Any, ...]
    entries: list[_Entry]
    fuzzy_keys: list[str] = field(default_factory=list)
    sound_keys: list[str] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)  # fuzzy key position → entry position
    exact_keys: list[tuple[str, int]] = field(default_factory=list)
    places: tuple[str, ...] = ()  # county and town names to drop from the text


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
        entry = _Entry(pid, code, name, tuple(keys), tuple(dict.fromkeys(exact)))
        pos = len(index.entries)
        index.entries.append(entry)
        for key in entry.keys:
            index.fuzzy_keys.append(key)
            index.sound_keys.append(pinyin.encode(key))
            index.owners.append(pos)
        index.exact_keys.extend((key, pos) for key in entry.exact)
        if district:
            places.add(compact(district))
        if address:
            m = re.match(r"^.{1,6}?[县区市]", compact(address))
            if m:
                places.add(m.group())
    index.exact_keys.sort(key=lambda kp: -len(kp[0]))
    index.places = tuple(sorted(places, key=len, reverse=True))
    return index


# Built once: SQLAlchemy then reuses the compiled form (lookups must stay in single-digit ms).
_SIGNATURE = select(func.count(Project.id), func.max(Project.id), func.max(Project.updated_at))


class ProjectIndex:
    """Names and aliases of every project, per database, rebuilt when the table changes."""

    def __init__(self) -> None:
        self._by_bind: dict[int, _Index] = {}
        self._lock = threading.Lock()

    def get(self, db: Session) -> _Index:
        """The index for db's database; one aggregate query checks that it is current."""
        signature = tuple(db.execute(_SIGNATURE).one())
        key = id(db.get_bind().engine)
        current = self._by_bind.get(key)
        if current is not None and current.signature == signature:
            return current
        with self._lock:
            fresh = _build_index(db, signature)
            self._by_bind[key] = fresh
            return fresh

    def clear(self) -> None:
        """Forget every cached index (tests, after bulk changes outside the ORM)."""
        self._by_bind.clear()


project_index = ProjectIndex()


# --- scoring ------------------------------------------------------------------------------


@dataclass
class ProjectHit:
    """One project and how well the text names it (0–100)."""

    entry: _Entry
    score: float
    exact: bool = False


def _similarity(key: str, text: str) -> float:
    """How well text contains key, 0–100.

    The best fuzz.ratio of key against windows of text one character shorter, as long and
    one longer than the key: a name inside a longer sentence scores as the name, a typo
    (missing, extra or wrong character) costs what it costs. rapidfuzz's partial_ratio also
    scores windows cut at the text's edges, which makes every '…花园' look like '桂花园'.
    A text shorter than the key (a fragment like '观象') is compared whole, so it never
    counts as the full name.
    """
    n = len(key)
    if len(text) <= n:
        return float(fuzz.ratio(key, text))
    best = 0.0
    for size in (n - 1, n, n + 1):
        if size < MIN_KEY_LENGTH or size > len(text):
            continue
        for i in range(len(text) - size + 1):
            score = fuzz.ratio(key, text[i : i + size])
            if score > best:
                best = score
    return best


def _name_text(normalized: str, uq: UnitQuery, places: Iterable[str]) -> str:
    """The part of the text that should name the project: the phrase before the unit numbers
    (or after them), without county/town names and filler words."""
    if uq.given:
        before = [p for p in normalized[: uq.start].split("|") if p]
        after = [p for p in normalized[uq.end :].split("|") if p]
        text = before[-1][-NAME_WINDOW:] if before else ""
        if len(re.sub(r"[^\u4e00-\u9fffA-Z]", "", text)) < MIN_KEY_LENGTH and after:
            text = after[0]
    else:
        text = normalized.replace("|", "")
    text = text.replace("-", "")
    for place in places:
        text = text.replace(place, "")
    text = _FILLER.sub("", text)
    return _TAIL.sub("", text)


def _exact_hits(index: _Index, normalized: str) -> tuple[list[ProjectHit], str]:
    """Projects whose name, alias or street address appears verbatim (the longest wins)."""
    flat = normalized.replace("|", "").replace("-", "")
    found: dict[int, str] = {}
    longest = ""
    for key, pos in index.exact_keys:  # longest keys first
        if len(key) < len(longest):
            break
        if key in flat:
            found.setdefault(pos, key)
            longest = key
    hits = [ProjectHit(index.entries[pos], 100.0, exact=True) for pos in found]
    return hits, longest


def score_projects(index: _Index, normalized: str, uq: UnitQuery) -> list[ProjectHit]:
    """Projects the text may name by fuzzy scoring on characters and sounds, best first."""
    text = _name_text(normalized, uq, index.places)
    if len(text) < MIN_KEY_LENGTH:
        return []
    sound = pinyin.encode(text)
    best: dict[int, float] = {}
    cutoff = CANDIDATE_SCORE - 5
    for query, keys, weight in (
        (text, index.fuzzy_keys, 1.0),
        (sound, index.sound_keys, PINYIN_WEIGHT),
    ):
        for key, _raw, i in process.extract(
            query, keys, scorer=fuzz.partial_ratio, score_cutoff=cutoff, limit=FUZZY_SHORTLIST
        ):
            score = _similarity(key, query) * weight
            pos = index.owners[i]
            if score > best.get(pos, 0.0):
                best[pos] = score
    hits = [ProjectHit(index.entries[pos], round(s, 1)) for pos, s in best.items()]
    hits.sort(key=lambda h: (-h.score, h.entry.code))
    return [h for h in hits if h.score >= CANDIDATE_SCORE]


# --- units --------------------------------------------------------------------------------


@dataclass
class UnitResolution:
    """The unit found in one project, or why none was: a Chinese note for the resident."""

    unit: Unit | None = None
    note: str | None = None


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


def resolve_unit(db: Session, project_id: int, uq: UnitQuery) -> UnitResolution:
    """Find the typed unit in one project; a note says what is missing when it is not found."""
    if not uq.given:
        return UnitResolution()
    label = uq.label()
    if uq.room is None:
        return UnitResolution(note=f"请补充房号（例如“{label}501室”），我再帮您查具体房屋。")
    found = _units_where(db, [project_id], uq, uq.unit)
    if not found and uq.unit is not None:
        # '3号楼1单元1502' in a project whose ledger has no 单元: the unit number is noise.
        found = _units_where(db, [project_id], uq, "")
    if len(found) == 1:
        return UnitResolution(unit=found[0])
    if not found:
        return UnitResolution(
            note=f"台账中没有找到{label}，请核对楼号、单元和房号。下面是小区整体的办证情况。"
        )
    missing = "和".join(
        word for word, value in (("楼号", uq.building), ("单元号", uq.unit)) if value is None
    )
    return UnitResolution(note=f"这个小区有多套房屋的房号都是{uq.room}，请补充{missing}。")


# --- the answer ---------------------------------------------------------------------------


@dataclass
class AddressMatch:
    """What an address names: `match` is unit, project, ambiguous or none (no status yet)."""

    match: str
    project: Project | None = None
    unit: Unit | None = None
    message: str | None = None
    candidates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def project_id(self) -> int | None:
        """The matched project's id (unit and project matches)."""
        return self.project.id if self.project is not None else None

    @property
    def unit_id(self) -> int | None:
        """The matched unit's id (unit matches)."""
        return self.unit.id if self.unit is not None else None


def _project_brief(entry_or_project: _Entry | Project) -> dict[str, Any]:
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


def unit_read(unit: Unit) -> dict[str, Any]:
    """The unit part of a lookup answer: owner name and ID masked."""
    return {
        "building": unit.building,
        "unit": unit.unit,
        "room": unit.room,
        "transfer_status": unit.transfer_status,
        "transfer_status_label": TRANSFER_LABELS.get(unit.transfer_status, unit.transfer_status),
        "owner_name": mask_name(unit.owner_name),
        "id_number": mask_id(unit.id_last4),
    }


def _unit_place(unit: Unit) -> dict[str, Any]:
    """Where a unit is, without its owner (for candidate lists)."""
    return {"building": unit.building, "unit": unit.unit, "room": unit.room}


def match_address(*, db: Session, text: str) -> AddressMatch:
    """Resolve a typed address to a unit, a project, ranked candidates or nothing."""
    normalized = normalize_text(text)
    index = project_index.get(db)
    hits, key = _exact_hits(index, normalized)
    if hits:
        # Parse the numbers without the name: '观象路18号3号楼…', '青松壹号1号楼…'.
        uq = parse_unit(normalized.replace(key, "|") if key in normalized else normalized)
    else:
        uq = parse_unit(normalized)
        hits = score_projects(index, normalized, uq)
    if not hits:
        return _unit_only(db, index, uq)
    top = hits[0]
    runner_up = hits[1].score if len(hits) > 1 else 0.0
    if top.score >= MATCH_SCORE and top.score - runner_up >= MARGIN:
        project = db.get(Project, top.entry.project_id)
        if project is None:  # deleted since the index was built
            project_index.clear()
            return AddressMatch("none", message=MSG_NONE)
        res = resolve_unit(db, project.id, uq)
        kind = "unit" if res.unit is not None else "project"
        return AddressMatch(kind, project=project, unit=res.unit, message=res.note)
    close = [h for h in hits if h.score >= top.score - CANDIDATE_SPREAD]
    return _candidates(db, close[:MAX_CANDIDATES], uq)


def _candidates(db: Session, hits: list[ProjectHit], uq: UnitQuery) -> AddressMatch:
    ranked = []
    for hit in hits:
        unit = resolve_unit(db, hit.entry.project_id, uq).unit if uq.room else None
        ranked.append((hit, unit))
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
    return AddressMatch("ambiguous", message=MSG_AMBIGUOUS, candidates=candidates)


def _unit_only(db: Session, index: _Index, uq: UnitQuery) -> AddressMatch:
    """No project named: the projects that have the typed unit, when it is specific enough."""
    if uq.room is None or uq.building is None:
        return AddressMatch("none", message=MSG_NONE)
    ids = [e.project_id for e in index.entries]
    units = _units_where(db, ids, uq, uq.unit) if ids else []
    entries = {e.project_id: e for e in index.entries}
    first: dict[int, Unit] = {}
    for unit in units:
        first.setdefault(unit.project_id, unit)
    if not first:
        return AddressMatch("none", message=MSG_NONE)
    # Nothing names the project, so every candidate gets the same modest score.
    candidates = [
        {"project": _project_brief(entries[pid]), "unit": _unit_place(unit), "score": 50.0}
        for pid, unit in list(first.items())[:MAX_UNIT_ONLY_CANDIDATES]
    ]
    return AddressMatch("ambiguous", message=MSG_UNIT_ONLY, candidates=candidates)


def _status(db: Session, project: Project) -> dict[str, Any]:
    from app.status.service import project_status  # imported late: service imports peers

    return project_status(db=db, project=project)


def answer(db: Session, found: AddressMatch) -> dict[str, Any]:
    """The JSON answer of a lookup: project and unit matches carry the project's status."""
    body: dict[str, Any] = {"match": found.match}
    if found.message:
        body["message"] = found.message
    if found.project is not None:
        body["project"] = project_read(found.project)
        body["status"] = _status(db, found.project)
    if found.unit is not None:
        body["unit"] = unit_read(found.unit)
    if found.match == "ambiguous":
        body["candidates"] = found.candidates
    return body


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
    digest = hash_id_number(id_number)
    stmt = select(Unit).where(Unit.id_hash == digest).order_by(Unit.id).limit(20)
    units = [u for u in db.scalars(stmt) if _same_name(u.owner_name, person_name)]
    if not units:
        return answer(db, AddressMatch("none", message=MSG_ID_NONE))
    if len(units) == 1:
        return answer(db, AddressMatch("unit", project=db.get(Project, units[0].project_id),
                                       unit=units[0]))  # fmt: skip
    ids = {u.project_id for u in units}
    projects = {p.id: p for p in db.scalars(select(Project).where(Project.id.in_(ids)))}
    candidates = [
        {"project": _project_brief(projects[u.project_id]), "unit": _unit_place(u), "score": 100.0}
        for u in units
    ]
    return answer(db, AddressMatch("ambiguous", message=MSG_ID_SEVERAL, candidates=candidates))
