"""Annotated inbox examples as Rasa 3 NLU YAML: `nlu_data/inbox/<channel>-<YYYY-MM-DD>.yml`
for a maintainer to review and commit, never an example the training files or the held-out set
(`nlu_data/test/`) already have (compared after normalising: NFKC, case, spaces, punctuation),
nor a near copy of a held-out sentence or one sharing an entity value with it (the checks of
tests/bot/test_nlu_data.py).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.config import REPO_DIR, settings
from app.core.database import utcnow
from app.core.errors import AppError
from app.core.workdays import today_shanghai
from app.nlu.models import NluInboxItem
from app.staff.models import StaffUser

# Entity markup in Rasa examples: [text](entity) or [text]{"entity": ..., "value": ...}.
_MARKUP = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")
_SPAN = re.compile(r"\[([^\]]*)\](?:\(([^)]*)\)|(\{[^}]*\}))")
_SPACES = re.compile(r"\s+")
# An example this close to a held-out sentence (difflib ratio, the bot data test's bar) is a
# near copy: exporting it would leak the test into training.
NEAR_COPY_MIN_CHARS = 6
NEAR_COPY_RATIO = 0.85
HELD_OUT = "test"
EXPORTABLE = ("annotated", "out_of_scope")
HELD_OUT_MISSING = "找不到留出测试集（nlu_data/test/）：为了不把测试题混进训练数据，现在不能导出。"


def normalise(text: str) -> str:
    """The form examples are compared in: NFKC, lower case, no spaces or punctuation."""
    text = unicodedata.normalize("NFKC", _MARKUP.sub(r"\1", text)).lower()
    return "".join(
        ch for ch in text if not ch.isspace() and unicodedata.category(ch)[0] not in ("P", "Z")
    )


def _examples_of(path: Path) -> list[str]:
    """The examples (with their markup) of one NLU YAML file; nothing for other files."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return []
    out: list[str] = []
    for entry in (data.get("nlu") or []) if isinstance(data, dict) else []:
        if not isinstance(entry, dict) or "intent" not in entry:
            continue
        examples = entry.get("examples")
        if isinstance(examples, str):
            for line in examples.splitlines():
                line = line.strip()
                if line.startswith("- "):
                    out.append(line[2:])
        elif isinstance(examples, list):
            for example in examples:
                text = example.get("text") if isinstance(example, dict) else example
                if isinstance(text, str):
                    out.append(text)
    return out


def _entity_values(example: str) -> set[tuple[str, str]]:
    """(entity, value) of each span marked in an example."""
    found: set[tuple[str, str]] = set()
    for match in _SPAN.finditer(example):
        text, simple, detail = match.group(1), match.group(2), match.group(3)
        if simple:
            found.add((simple.strip(), text))
            continue
        try:
            spec = json.loads(detail)
        except ValueError:
            continue
        if isinstance(spec, dict) and spec.get("entity"):
            found.add((str(spec["entity"]), str(spec.get("value") or text)))
    return found


def _yaml_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


@dataclass
class KnownExamples:
    """Normalised texts already in the training files and in the held-out set, the held-out
    sentences themselves (for near copies) and the entity values the held-out set uses."""

    training: set[str] = field(default_factory=set)
    held_out: set[str] = field(default_factory=set)
    held_out_texts: list[str] = field(default_factory=list)
    held_out_values: set[tuple[str, str]] = field(default_factory=set)

    def leaks(self, text: str, spans: Sequence[dict[str, Any]] = ()) -> bool:
        """True when the example is, nearly is, or shares an entity value with a held-out one."""
        if normalise(text) in self.held_out:
            return True
        for span in spans:
            value = span.get("value") or text[int(span["start"]) : int(span["end"])]
            if (str(span["entity"]), str(value)) in self.held_out_values:
                return True
        if len(text) < NEAR_COPY_MIN_CHARS:
            return False
        for other in self.held_out_texts:
            matcher = difflib.SequenceMatcher(None, text, other)
            if (
                matcher.real_quick_ratio() >= NEAR_COPY_RATIO
                and matcher.quick_ratio() >= NEAR_COPY_RATIO
                and matcher.ratio() >= NEAR_COPY_RATIO
            ):
                return True
        return False


def known_examples(
    data_dir: Path | None = None, export_dir: Path | None = None, require_held_out: bool = True
) -> KnownExamples:
    """Every example of nlu_data/ (and earlier exports), split into training and held-out."""
    data_dir = Path(data_dir or settings.nlu_data_dir)
    export_dir = Path(export_dir or settings.nlu_export_dir)
    held_dir = data_dir / HELD_OUT
    if require_held_out and not _yaml_files(held_dir):
        raise AppError(503, "held_out_missing", HELD_OUT_MISSING)
    known = KnownExamples()
    for path in _yaml_files(held_dir):
        for example in _examples_of(path):
            plain = _MARKUP.sub(r"\1", example)
            known.held_out.add(normalise(plain))
            known.held_out_texts.append(plain)
            known.held_out_values |= _entity_values(example)
    training = [p for p in _yaml_files(data_dir) if held_dir not in p.parents]
    training += [p for p in _yaml_files(export_dir) if p not in training]
    for path in training:
        known.training.update(normalise(t) for t in _examples_of(path))
    return known


# -- rendering --------------------------------------------------------------------------------


def _plain(text: str) -> str:
    """Text outside entity markup: one line, no brackets that could read as markup."""
    return _SPACES.sub(" ", text).replace("[", "［").replace("]", "］")


def render_example(text: str, spans: Sequence[dict[str, Any]]) -> str:
    """One example line's text with its entity spans as [value](entity)."""
    parts: list[str] = []
    position = 0
    for span in sorted(spans, key=lambda s: int(s["start"])):
        start, end = int(span["start"]), int(span["end"])
        if start < position or end > len(text) or start >= end:
            continue
        piece = _plain(text[start:end])
        parts.append(_plain(text[position:start]))
        value = span.get("value")
        if value and value != text[start:end]:
            detail = json.dumps({"entity": span["entity"], "value": value}, ensure_ascii=False)
            parts.append(f"[{piece}]{detail}")
        else:
            parts.append(f"[{piece}]({span['entity']})")
        position = end
    parts.append(_plain(text[position:]))
    return "".join(parts).strip()


def render_file(examples: dict[str, list[str]], header: str = "") -> str:
    """Rasa 3.x NLU YAML: `version: "3.1"`, one `- intent:` block per intent."""
    lines = [header.rstrip()] if header else []
    lines += ['version: "3.1"', "nlu:"]
    for intent in sorted(examples):
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {example}" for example in examples[intent]]
    return "\n".join(lines) + "\n"


def _read_export(path: Path) -> dict[str, list[str]]:
    """The examples of an earlier export of the same day (markup kept), by intent."""
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out: dict[str, list[str]] = {}
    for entry in data.get("nlu") or []:
        if isinstance(entry, dict) and isinstance(entry.get("examples"), str):
            lines = [
                line.strip()[2:]
                for line in entry["examples"].splitlines()
                if line.strip().startswith("- ")
            ]
            out.setdefault(str(entry["intent"]), []).extend(lines)
    return out


def _write(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".export-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.replace(tmp, path)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_DIR))
    except ValueError:
        return str(path)


def _source(channel: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", channel.lower()) or "bot"


# -- the export -----------------------------------------------------------------------------


@dataclass
class ExportResult:
    """The files written ({path, channel, examples}) and the items left out ({id, reason})."""

    files: list[dict[str, Any]]
    exported: int
    skipped: list[dict[str, Any]]


def _label(item: NluInboxItem) -> str:
    return "out_of_scope" if item.status == "out_of_scope" else str(item.intent)


def export(db: Session, *, user: StaffUser) -> ExportResult:
    """Write the annotated items not yet exported, one file per channel for today, and mark
    them exported; duplicates of the training or held-out set are skipped (and say why)."""
    export_dir = Path(settings.nlu_export_dir)
    known = known_examples(export_dir=export_dir)
    items = db.scalars(
        select(NluInboxItem)
        .where(NluInboxItem.status.in_(EXPORTABLE))
        .order_by(NluInboxItem.id)
        .with_for_update()
    ).all()
    today = today_shanghai()
    batches: dict[str, dict[str, list[str]]] = {}
    chosen: dict[str, list[NluInboxItem]] = {}
    seen: set[str] = set()
    skipped: list[dict[str, Any]] = []
    for item in items:
        key = normalise(item.text)
        spans = [] if item.status == "out_of_scope" else list(item.annotated_entities or [])
        reason = None
        if not key:
            reason = "duplicate"
        elif known.leaks(item.text, spans):
            reason = "held_out"
        elif key in known.training:
            reason = "training"
        elif key in seen:
            reason = "duplicate"
        if reason:
            item.export_skip = reason
            skipped.append({"id": item.id, "reason": reason})
            continue
        seen.add(key)
        source = _source(item.channel)
        batches.setdefault(source, {}).setdefault(_label(item), []).append(
            render_example(item.text, spans)
        )
        chosen.setdefault(source, []).append(item)
    files: list[dict[str, Any]] = []
    now = utcnow()
    for source, examples in sorted(batches.items()):
        path = export_dir / f"{source}-{today.isoformat()}.yml"
        merged = _read_export(path)
        for intent, lines in examples.items():
            merged.setdefault(intent, []).extend(lines)
        header = (
            f"# 模型维护收件箱导出：来源 {source}，{today.isoformat()}。\n"
            "# 已脱敏（* 是遮盖的数字或姓名）；与训练集、留出测试集重复的例句已去掉。请审阅后提交。"
        )
        _write(path, render_file(merged, header))
        shown = _shown(path)
        for item in chosen[source]:
            item.status, item.exported_to, item.exported_at = "exported", shown, now
            item.export_skip = None
        files.append(
            {"path": shown, "channel": source, "examples": sum(len(v) for v in examples.values())}
        )
    db.flush()
    exported = sum(f["examples"] for f in files)
    audit.record(
        db=db,
        actor=f"staff:{user.username}",
        action="nlu.export",
        entity_type="nlu_export",
        entity_id=today.isoformat(),
        after={
            "files": [f["path"] for f in files],
            "exported": exported,
            "skipped": len(skipped),
        },
    )
    return ExportResult(files=files, exported=exported, skipped=skipped)


def training_yaml(db: Session) -> tuple[str, int]:
    """Every annotated example (exported or not) as Rasa NLU YAML for a training job, minus
    those the training files already hold and never one of the held-out set: (yaml, count)."""
    known = known_examples()
    items = db.scalars(
        select(NluInboxItem)
        .where(NluInboxItem.status.in_((*EXPORTABLE, "exported")))
        .order_by(NluInboxItem.id)
    ).all()
    examples: dict[str, list[str]] = {}
    seen: set[str] = set()
    for item in items:
        key = normalise(item.text)
        spans = [] if item.status == "out_of_scope" else list(item.annotated_entities or [])
        if not key or key in known.training or key in seen or known.leaks(item.text, spans):
            continue
        seen.add(key)
        examples.setdefault(_label(item), []).append(render_example(item.text, spans))
    return render_file(examples), len(seen)
