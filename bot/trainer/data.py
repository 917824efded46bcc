"""The training data of one job: every file of nlu_data/ outside nlu_data/test/ plus the
maintainers' annotations from the api, in a temporary directory.

- An annotated example equal (after normalisation) to a held-out sentence is dropped: nothing
  is trained on the held-out set.
- An annotated example is the maintainer's word: a training example with the same normalised
  text is left out (it may carry the old, wrong intent).
- `TRAINER_DATA_SUBSET=N` keeps the first N examples of each intent of nlu_data/ (tests).

Unchanged files are copied as they are; files that lose examples are rewritten.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from trainer.errors import TrainerError

ANNOTATIONS_FILE = "maintainer_annotations.yml"
# [text](entity), [text]{"entity": …}, [text][{…}]: the visible part is the text.
_ENTITY_MARKUP = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\}|\[[^\]]*\])")


def yaml_files(directory: Path, exclude: Path | None = None) -> list[Path]:
    """The YAML files under `directory` (outside `exclude`), sorted."""
    return sorted(
        p
        for p in directory.rglob("*")
        if p.suffix in (".yml", ".yaml")
        and p.is_file()
        and not (exclude is not None and (p == exclude or exclude in p.parents))
    )


@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


def plain_text(example: str) -> str:
    """The example as a resident typed it: entity markup removed."""
    return _ENTITY_MARKUP.sub(r"\1", example).strip()


def normalise(example: str) -> str:
    """Comparison key of an example: markup removed, NFKC, simplified characters (the
    conversions of components.normalise), case folded, letters, digits and CJK only."""
    text = unicodedata.normalize("NFKC", plain_text(example))
    text = _t2s().convert(text).casefold()
    return "".join(ch for ch in text if ch.isalnum())


def _split_block(block: str) -> list[str]:
    """The examples of a `examples: |` block (one `- ` line each)."""
    examples = []
    for line in block.splitlines():
        stripped = line.strip()
        if stripped.startswith("- "):
            examples.append(stripped[2:].strip())
    return examples


def _examples(item: dict[str, Any]) -> list[Any]:
    """The examples of an NLU item: strings from a block, or the dicts of a list form."""
    raw = item.get("examples")
    if isinstance(raw, str):
        return _split_block(raw)
    if isinstance(raw, list):
        return list(raw)
    return []


def _text_of(example: Any) -> str:
    if isinstance(example, dict):
        return str(example.get("text") or "")
    return str(example)


def _with_examples(item: dict[str, Any], examples: list[Any]) -> dict[str, Any]:
    out = dict(item)
    if isinstance(item.get("examples"), str):
        out["examples"] = "".join(f"- {e}\n" for e in examples)
    else:
        out["examples"] = examples
    return out


def load_nlu(text: str, what: str) -> list[dict[str, Any]]:
    """The `nlu:` items of a Rasa NLU YAML document (TrainerError when it is not one)."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        raise TrainerError(f"{what}不是有效的 YAML") from None
    if not isinstance(document, dict):
        raise TrainerError(f"{what}不是 Rasa NLU 格式")
    items = document.get("nlu") or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise TrainerError(f"{what}不是 Rasa NLU 格式")
    return items


def heldout_keys(directory: Path) -> set[str]:
    """Normalised texts of the held-out examples (only to keep annotations out of them)."""
    keys: set[str] = set()
    for path in yaml_files(directory):
        for item in load_nlu(path.read_text(encoding="utf-8"), "测试集文件"):
            if item.get("intent"):
                keys.update(normalise(_text_of(e)) for e in _examples(item))
    keys.discard("")
    return keys


class _LiteralDumper(yaml.SafeDumper):
    """Multi-line strings (example blocks) as `|` blocks, as Rasa's files write them."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _str_representer)


def dump_nlu(items: list[dict[str, Any]]) -> str:
    """A Rasa 3.x NLU YAML document of `items`."""
    return yaml.dump(
        {"version": "3.1", "nlu": items},
        Dumper=_LiteralDumper,
        allow_unicode=True,
        sort_keys=False,
        width=1000,
    )


@dataclass
class DataReport:
    """What went into the training data (counts only: no text of any example)."""

    directory: Path
    files: list[Path]
    annotated: int = 0
    dropped_heldout: int = 0
    duplicates: int = 0
    replaced: int = 0
    relabelled: int = 0
    subset_dropped: int = 0
    examples_per_intent: Counter[str] = field(default_factory=Counter)

    def as_metrics(self) -> dict[str, Any]:
        """The counts for the result's metrics."""
        return {
            "hash": files_hash(self.files, self.directory),
            "files": len(self.files),
            "examples": sum(self.examples_per_intent.values()),
            "intents": len(self.examples_per_intent),
            "annotated": self.annotated,
            "annotated_dropped_heldout": self.dropped_heldout,
            "annotated_duplicates": self.duplicates,
            "training_examples_replaced": self.replaced,
            "training_examples_relabelled": self.relabelled,
            "subset_dropped": self.subset_dropped,
        }


def files_hash(paths: Iterable[Path], base: Path) -> str:
    """Hash of the files' names (relative to `base`) and contents."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _annotations(
    text: str, heldout: set[str], report: DataReport
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The annotation items kept and {normalised text: intent} of their examples."""
    kept: list[dict[str, Any]] = []
    labels: dict[str, str] = {}
    for item in load_nlu(text, "api 的训练数据"):
        intent = item.get("intent")
        if not intent:
            kept.append(item)  # synonyms, regexes, lookups: as they are
            continue
        examples = []
        for example in _examples(item):
            key = normalise(_text_of(example))
            if not key:
                continue
            report.annotated += 1
            if key in heldout:
                report.dropped_heldout += 1
            elif key in labels:
                report.duplicates += 1
            else:
                labels[key] = str(intent)
                examples.append(example)
        if examples:
            kept.append(_with_examples(item, examples))
    return kept, labels


def _training_items(
    path: Path, labels: dict[str, str], subset: int, seen: Counter[str], report: DataReport
) -> list[dict[str, Any]] | None:
    """The items of one nlu_data/ file, or None when the file is kept unchanged."""
    items = load_nlu(path.read_text(encoding="utf-8"), f"训练文件 {path.name} ")
    changed = False
    out: list[dict[str, Any]] = []
    for item in items:
        intent = item.get("intent")
        if not intent:
            out.append(item)
            continue
        examples = []
        for example in _examples(item):
            key = normalise(_text_of(example))
            if key in labels:
                report.replaced += 1
                report.relabelled += labels[key] != intent
                changed = True
                continue
            if subset and seen[str(intent)] >= subset:
                report.subset_dropped += 1
                changed = True
                continue
            seen[str(intent)] += 1
            examples.append(example)
        if examples:
            out.append(_with_examples(item, examples))
        else:
            changed = True
    return out if changed else None


def build(
    target: Path,
    nlu_dir: Path,
    heldout_dir: Path,
    annotations_yaml: str,
    subset: int = 0,
) -> DataReport:
    """Write the job's NLU training files into `target`; what went in."""
    target.mkdir(parents=True, exist_ok=True)
    report = DataReport(directory=target, files=[])
    heldout = heldout_keys(heldout_dir)
    annotation_items, labels = _annotations(annotations_yaml, heldout, report)
    seen: Counter[str] = Counter()
    for source in yaml_files(nlu_dir, exclude=heldout_dir):
        relative = source.relative_to(nlu_dir)
        destination = target / "nlu_data" / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        items = _training_items(source, labels, subset, seen, report)
        if items is None:
            shutil.copyfile(source, destination)
        else:
            destination.write_text(dump_nlu(items), encoding="utf-8")
        report.files.append(destination)
    if annotation_items:
        destination = target / ANNOTATIONS_FILE
        destination.write_text(dump_nlu(annotation_items), encoding="utf-8")
        report.files.append(destination)
    seen.update(labels.values())
    report.examples_per_intent = seen
    return report


def iter_intent_examples(paths: Iterable[Path]) -> Iterator[tuple[str, str]]:
    """(intent, example) of every intent example in `paths` (tests and the bench)."""
    for path in paths:
        for item in load_nlu(path.read_text(encoding="utf-8"), path.name):
            if item.get("intent"):
                for example in _examples(item):
                    yield str(item["intent"]), _text_of(example)
