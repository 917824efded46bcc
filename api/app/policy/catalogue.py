"""The policy catalogue (policies/*.yml): blockers, FAQ answers, departments, policies, guidance.

Everything a resident reads about a blocker lives in these YAML files, never in Python. The files
are validated against `policies/schema/*.json` and cross-checked when loaded; an invalid catalogue
raises `CatalogueError` naming the file and the field, so the service refuses to start.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from app.core.config import settings

# Contract codes (DESIGN.md): the catalogue must define every one of them.
BLOCKER_CODES: tuple[str, ...] = (
    "completion_acceptance",
    "fire_acceptance",
    "civil_defense",
    "planning_verification",
    "land_premium_unpaid",
    "developer_tax_unpaid",
    "fees_unpaid",
    "mortgage",
    "court_seizure",
    "developer_uncooperative",
    "permits_missing",
    "area_survey",
    "record_mismatch",
    "resettlement_unconfirmed",
    "construction_payment_dispute",
    "environmental_assessment",
    "soe_housing_reform",
    "property_dispute",
    "buyer_tax_unpaid",
)
FAQ_CODES: tuple[str, ...] = (
    "tax_fee_separation",
    "mortgage_seizure",
    "developer_uncooperative",
    "no_fault_buyer",
    "handover_with_certificate",
    "processing_time",
    "resettlement",
    "school_enrolment",
)
CATALOGUE_FILES: tuple[str, ...] = (
    "departments",
    "policies",
    "blockers",
    "faq",
    "guidance",
    "settings",
)

# A place prefix before a department name in a ledger: "同江市住建局", "XX县人民法院".
_PLACE_PREFIX = re.compile(r"^.{0,12}?(省|市|县|区|州|旗|盟)$")


class CatalogueError(Exception):
    """The catalogue is invalid; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Department:
    """A department (责任单位) with its Chinese name and the other names people use."""

    code: str
    name: str
    aliases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    """A policy (e.g. 证缴分离) and what it means for the buyer, in one or two sentences."""

    code: str
    name: str
    summary: str


@dataclass(frozen=True, slots=True)
class Blocker:
    """One blocker type (卡点): explanation for residents, owners, policies, next steps."""

    code: str
    name: str
    explanation: str
    departments: tuple[str, ...]
    buyer_at_fault: bool
    policies: tuple[str, ...]
    resident_next_steps: tuple[str, ...]
    staff_next_steps: tuple[str, ...]
    time_limit: str
    time_limit_working_days: int | None

    @property
    def default_department(self) -> str:
        """The code of the department that owns this blocker unless the ledger says otherwise."""
        return self.departments[0]


@dataclass(frozen=True, slots=True)
class FaqTopic:
    """A `policy_faq/<code>` topic: its question and the answer the bot sends."""

    code: str
    title: str
    answer: str
    policies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GuidanceSection:
    """A titled list of short items (materials to bring, where to go, next steps)."""

    title: str
    items: tuple[str, ...]
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Guidance:
    """The bot's follow-ups: materials per situation, where to apply, next steps per case."""

    materials: dict[str, GuidanceSection]
    where_to_apply: GuidanceSection
    next_steps: dict[str, GuidanceSection]


@dataclass(frozen=True, slots=True)
class CatalogueSettings:
    """Time limits in working days (policies/settings.yml)."""

    first_answer_working_days: int
    closure_target_working_days: int
    public_notice_working_days: int
    tax_opinion_working_days: int
    registry_working_days: int
    review_days: int


def normalise_name(text: str) -> str:
    """Department names compared without spaces and full-width forms."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text or ""))


class Catalogue:
    """The loaded, validated catalogue; read-only and shared by every request."""

    def __init__(
        self,
        *,
        directory: Path,
        departments: dict[str, Department],
        policies: dict[str, Policy],
        blockers: dict[str, Blocker],
        faq: dict[str, FaqTopic],
        guidance: Guidance,
        settings: CatalogueSettings,
    ) -> None:
        self.directory = directory
        self.departments = departments
        self.policies = policies
        self.blockers = blockers
        self.faq = faq
        self.guidance = guidance
        self.settings = settings
        self._by_name: dict[str, Department] = {}
        for dep in departments.values():
            for key in (dep.code, dep.name, *dep.aliases):
                self._by_name[normalise_name(key)] = dep
        # Longest names first, so "不动产登记中心" wins over a shorter alias it ends with.
        self._names_longest_first = sorted(self._by_name, key=len, reverse=True)

    def department_by_name(self, text: str | None) -> Department | None:
        """The department whose code, name or alias is `text` (a place prefix is allowed)."""
        key = normalise_name(text or "")
        if not key:
            return None
        found = self._by_name.get(key)
        if found is not None:
            return found
        for name in self._names_longest_first:
            if key.endswith(name) and _PLACE_PREFIX.match(key[: -len(name)]):
                return self._by_name[name]
        return None

    def default_department(self, blocker_code: str) -> Department:
        """The default owner of a blocker code (KeyError for an unknown code)."""
        return self.departments[self.blockers[blocker_code].default_department]

    def blocker_departments(self, blocker_code: str) -> list[Department]:
        """Every department involved in a blocker, the default owner first."""
        return [self.departments[c] for c in self.blockers[blocker_code].departments]

    def policies_of(self, codes: tuple[str, ...]) -> list[Policy]:
        """The policy entries for a list of policy codes, in that order."""
        return [self.policies[c] for c in codes]


# --- loading -------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key written twice (PyYAML would silently keep the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _label(directory: Path, stem: str) -> str:
    return f"{directory.name}/{stem}.yml"


def _json_path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _read_validated(directory: Path, stem: str) -> Any:
    """Parse one YAML file and validate it against its JSON Schema."""
    label = _label(directory, stem)
    path = directory / f"{stem}.yml"
    schema_path = directory / "schema" / f"{stem}.json"
    if not path.is_file():
        raise CatalogueError(f"{label}: file is missing")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{label}: not valid YAML: {exc}") from exc
    try:
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(schema)
    except (OSError, ValueError, SchemaError) as exc:
        raise CatalogueError(f"{directory.name}/schema/{stem}.json: bad schema: {exc}") from exc
    errors = sorted(
        Draft202012Validator(schema).iter_errors(data),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
    if errors:
        problems = [f"{_json_path(e.absolute_path)}: {_short(e.message)}" for e in errors[:5]]
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise CatalogueError(f"{label}: " + "; ".join(problems) + more)
    return data


def _short(message: str, limit: int = 240) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _build(cls: type, data: dict[str, Any], where: str, **extra: Any) -> Any:
    """Build a dataclass from a mapping, rejecting keys the dataclass does not know."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise CatalogueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values, **extra)


def _section(data: dict[str, Any], where: str) -> GuidanceSection:
    section: GuidanceSection = _build(GuidanceSection, data, where)
    return section


def load_catalogue(directory: Path | str) -> Catalogue:
    """Load, validate and cross-check the catalogue in `directory` (raises CatalogueError)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CatalogueError(f"{directory}: policies directory is missing")
    raw = {stem: _read_validated(directory, stem) for stem in CATALOGUE_FILES}

    def where(stem: str, *path: Any) -> str:
        return f"{_label(directory, stem)}: {_json_path(path)}"

    departments: dict[str, Department] = {}
    seen_names: dict[str, str] = {}
    for i, entry in enumerate(raw["departments"]["departments"]):
        dep: Department = _build(Department, entry, where("departments", "departments", i))
        if dep.code in departments:
            raise CatalogueError(f"{where('departments', 'departments', i, 'code')}: duplicate")
        for key in (dep.code, dep.name, *dep.aliases):
            owner = seen_names.setdefault(normalise_name(key), dep.code)
            if owner != dep.code:
                raise CatalogueError(
                    f"{where('departments', 'departments', i)}: name or alias {key!r} "
                    f"is already used by department {owner!r}"
                )
        departments[dep.code] = dep

    policies: dict[str, Policy] = {}
    for i, entry in enumerate(raw["policies"]["policies"]):
        pol: Policy = _build(Policy, entry, where("policies", "policies", i))
        if pol.code in policies:
            raise CatalogueError(f"{where('policies', 'policies', i, 'code')}: duplicate")
        policies[pol.code] = pol

    blockers: dict[str, Blocker] = {}
    for code, entry in raw["blockers"]["blockers"].items():
        blk: Blocker = _build(Blocker, entry, where("blockers", "blockers", code), code=code)
        for i, dcode in enumerate(blk.departments):
            if dcode not in departments:
                raise CatalogueError(
                    f"{where('blockers', 'blockers', code, 'departments', i)}: "
                    f"{dcode!r} is not a department code of departments.yml"
                )
        for i, pcode in enumerate(blk.policies):
            if pcode not in policies:
                raise CatalogueError(
                    f"{where('blockers', 'blockers', code, 'policies', i)}: "
                    f"{pcode!r} is not a policy code of policies.yml"
                )
        blockers[code] = blk
    missing = [c for c in BLOCKER_CODES if c not in blockers]
    if missing:
        raise CatalogueError(f"{where('blockers', 'blockers')}: missing {', '.join(missing)}")
    extra = [c for c in blockers if c not in BLOCKER_CODES]
    if extra:
        raise CatalogueError(f"{where('blockers', 'blockers')}: unknown code {', '.join(extra)}")

    faq: dict[str, FaqTopic] = {}
    for code, entry in raw["faq"]["faq"].items():
        topic: FaqTopic = _build(FaqTopic, entry, where("faq", "faq", code), code=code)
        for i, pcode in enumerate(topic.policies):
            if pcode not in policies:
                raise CatalogueError(
                    f"{where('faq', 'faq', code, 'policies', i)}: "
                    f"{pcode!r} is not a policy code of policies.yml"
                )
        faq[code] = topic
    missing = [c for c in FAQ_CODES if c not in faq]
    if missing:
        raise CatalogueError(f"{where('faq', 'faq')}: missing {', '.join(missing)}")

    g = raw["guidance"]
    # office_hours is read by app.notify.hours.
    unknown = sorted(set(g) - {"materials", "where_to_apply", "next_steps", "office_hours"})
    if unknown:
        raise CatalogueError(f"{where('guidance')}: unknown field(s) {', '.join(unknown)}")
    guidance = Guidance(
        materials={
            k: _section(v, where("guidance", "materials", k)) for k, v in g["materials"].items()
        },
        where_to_apply=_section(g["where_to_apply"], where("guidance", "where_to_apply")),
        next_steps={
            k: _section(v, where("guidance", "next_steps", k)) for k, v in g["next_steps"].items()
        },
    )
    cat_settings: CatalogueSettings = _build(CatalogueSettings, raw["settings"], where("settings"))

    return Catalogue(
        directory=directory,
        departments=departments,
        policies=policies,
        blockers=blockers,
        faq=faq,
        guidance=guidance,
        settings=cat_settings,
    )


_lock = threading.Lock()
_cached: Catalogue | None = None


def get_catalogue() -> Catalogue:
    """The catalogue of `settings.policies_dir`, loaded once and then shared."""
    global _cached
    cat = _cached
    if cat is None:
        with _lock:
            if _cached is None:
                _cached = load_catalogue(settings.policies_dir)
            cat = _cached
    return cat


def reload_catalogue(directory: Path | str | None = None) -> Catalogue:
    """Load the catalogue again (after a maintainer edited policies/); keeps the old on error."""
    global _cached
    fresh = load_catalogue(directory or settings.policies_dir)
    with _lock:
        _cached = fresh
    return fresh
