"""Checks on the NLU training data in nlu_data/ and its held-out set nlu_data/test/.

Run with the bot env: `bot/.venv/bin/python -m pytest tests/bot/test_nlu_data.py -q`.
`bot/.venv/bin/python tests/bot/test_nlu_data.py` prints the per-intent counts.
"""

from __future__ import annotations

import csv
import difflib
import logging
import re
import unicodedata
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.training_data import TrainingData

ROOT = Path(__file__).resolve().parents[2]
NLU_DIR = ROOT / "nlu_data"
TEST_DIR = NLU_DIR / "test"
BOT_JIEBA_DIR = ROOT / "bot" / "jieba"
LEDGER_PROJECTS = ROOT / "api" / "app" / "ledger" / "demo_data" / "projects.csv"

CONTRACT_INTENTS = {
    "greet",
    "goodbye",
    "thank",
    "affirm",
    "deny",
    "bot_challenge",
    "ask_certificate_status",
    "inform",
    "ask_next_steps",
    "ask_materials",
    "ask_where_to_apply",
    "policy_faq",
    "complain",
    "request_human",
    "check_petition",
    "out_of_scope",
}
FAQ_TOPICS = {
    "policy_faq/tax_fee_separation",
    "policy_faq/mortgage_seizure",
    "policy_faq/developer_uncooperative",
    "policy_faq/no_fault_buyer",
    "policy_faq/handover_with_certificate",
    "policy_faq/processing_time",
    "policy_faq/resettlement",
    "policy_faq/school_enrolment",
}
CONTRACT_ENTITIES = {
    "address",
    "id_number",
    "contract_number",
    "petition_number",
    "phone",
    "person_name",
}
CORE_INTENTS = {
    "ask_certificate_status",
    "inform",
    "complain",
    "request_human",
    "ask_next_steps",
    "check_petition",
}
CORE_MIN = 60
OTHER_MIN = 25
TEST_SHARE_MIN = 0.15
# Entities whose whole value must be matched by one of the regexes in entities.yml.
REGEX_ENTITIES = ("id_number", "phone", "petition_number", "contract_number")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
# Held-out sentences of at least this many characters (entities cut out) must stay below this
# similarity (difflib ratio) to every training sentence.
NEAR_COPY_MIN_CHARS = 6
NEAR_COPY_RATIO = 0.85
PHONE_RE = re.compile(r"1[3-9]\d{9}")


def _train_files() -> list[str]:
    """YAML files of the training part: everything in nlu_data/ except nlu_data/test/."""
    return sorted(
        str(p) for p in NLU_DIR.rglob("*.yml") if TEST_DIR not in p.parents and p.is_file()
    )


def _test_files() -> list[str]:
    """YAML files of the held-out set."""
    return sorted(str(p) for p in TEST_DIR.rglob("*.yml"))


def _load(files: list[str]) -> TrainingData:
    """Load and merge several Rasa NLU files."""
    return TrainingData().merge(*(load_data(f) for f in files))


@lru_cache(maxsize=1)
def train_data() -> TrainingData:
    """The training part."""
    return _load(_train_files())


@lru_cache(maxsize=1)
def held_out_data() -> TrainingData:
    """The held-out set."""
    return _load(_test_files())


def label(message) -> str:  # noqa: ANN001 - rasa Message
    """Intent of a message, with the retrieval sub-intent where there is one."""
    return message.get("intent_response_key") or message.get("intent")


def normalise(text: str) -> str:
    """Text as compared for overlap: NFKC, lower case, no spaces or punctuation.

    Emoji and other symbols (category So) are kept: "👍" and "😡" are different messages, not
    two empty strings.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if ch.isalnum() or unicodedata.category(ch) == "So")


def label_counts(data: TrainingData) -> Counter[str]:
    """Examples per (sub-)intent."""
    return Counter(label(m) for m in data.intent_examples)


def entity_counts(data: TrainingData) -> Counter[str]:
    """Annotated occurrences per entity."""
    return Counter(e["entity"] for m in data.intent_examples for e in m.get("entities") or [])


def regex_patterns() -> dict[str, list[str]]:
    """Regex name -> patterns from the training data."""
    out: dict[str, list[str]] = {}
    for feature in train_data().regex_features:
        out.setdefault(feature["name"], []).append(feature["pattern"])
    return out


def _ledger_words() -> list[str]:
    """Project names and aliases of the demo ledger (what the bot's jieba dictionary holds)."""
    if not LEDGER_PROJECTS.exists():
        return []
    words: list[str] = []
    with LEDGER_PROJECTS.open(encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            words.append(row["项目名称"])
            words.extend(a for a in (row.get("别名") or "").split("、") if a)
    return [w for w in words if w]


@lru_cache(maxsize=1)
def tokenizer():
    """A jieba tokenizer like the bot's: its user dictionary (bot/jieba/) or the ledger's names."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tk = jieba.Tokenizer()
    user_dicts = sorted(BOT_JIEBA_DIR.glob("*.txt")) if BOT_JIEBA_DIR.is_dir() else []
    for path in user_dicts:
        tk.load_userdict(str(path))
    if not user_dicts:
        for word in _ledger_words():
            tk.add_word(word)
    return tk


def misaligned(data: TrainingData) -> list[str]:
    """Annotations whose start or end falls inside a jieba token (DIET would ignore them)."""
    tk = tokenizer()
    bad = []
    for m in data.intent_examples:
        text = m.get("text")
        tokens = [(s, e) for w, s, e in tk.tokenize(text) if w.strip()]
        starts = {s for s, _ in tokens}
        ends = {e for _, e in tokens}
        for ent in m.get("entities") or []:
            if ent["start"] not in starts or ent["end"] not in ends:
                bad.append(f"{ent['entity']}={ent['value']!r} in {text!r}")
    return bad


def id_checksum_ok(value: str) -> bool:
    """ISO 7064 mod 11-2 check digit of a resident ID number."""
    value = value.upper()
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11] == value[17]


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("which", ["train", "test"])
def test_every_contract_intent_and_topic_present(which: str) -> None:
    data = train_data() if which == "train" else held_out_data()
    intents = {m.get("intent") for m in data.intent_examples}
    assert intents == CONTRACT_INTENTS
    topics = {label(m) for m in data.intent_examples if m.get("intent") == "policy_faq"}
    assert topics == FAQ_TOPICS


@pytest.mark.parametrize("which", ["train", "test"])
def test_only_contract_entities_and_all_of_them(which: str) -> None:
    data = train_data() if which == "train" else held_out_data()
    assert set(entity_counts(data)) == CONTRACT_ENTITIES
    assert {f["name"] for f in train_data().regex_features} <= CONTRACT_ENTITIES
    assert {t["name"] for t in train_data().lookup_tables} <= CONTRACT_ENTITIES


def test_training_sizes() -> None:
    counts = label_counts(train_data())
    intents = Counter(m.get("intent") for m in train_data().intent_examples)
    for intent in CONTRACT_INTENTS - {"policy_faq"}:
        minimum = CORE_MIN if intent in CORE_INTENTS else OTHER_MIN
        assert intents[intent] >= minimum, (intent, intents[intent])
    for topic in FAQ_TOPICS:
        assert counts[topic] >= OTHER_MIN, (topic, counts[topic])


def test_held_out_share_and_coverage() -> None:
    n_train = len(train_data().intent_examples)
    n_test = len(held_out_data().intent_examples)
    assert n_test >= TEST_SHARE_MIN * n_train, (n_test, n_train)
    counts = label_counts(held_out_data())
    for name in (CONTRACT_INTENTS - {"policy_faq"}) | FAQ_TOPICS:
        assert counts[name] >= 4, (name, counts[name])
    for entity, n in entity_counts(held_out_data()).items():
        assert n >= 5, (entity, n)


def test_no_test_sentence_in_training() -> None:
    train = {normalise(m.get("text")) for m in train_data().intent_examples}
    overlap = [
        m.get("text") for m in held_out_data().intent_examples if normalise(m.get("text")) in train
    ]
    assert overlap == []


def _without_entities(message) -> str:  # noqa: ANN001 - rasa Message
    """Normalised text of an example with its annotated entity values cut out."""
    text = message.get("text")
    for ent in sorted(message.get("entities") or [], key=lambda e: -e["start"]):
        text = text[: ent["start"]] + " " + text[ent["end"] :]
    return normalise(text)


def test_held_out_sentences_are_not_near_copies() -> None:
    """Held-out sentences are written separately, not training sentences with a word changed."""
    train = [_without_entities(m) for m in train_data().intent_examples]
    near = []
    for m in held_out_data().intent_examples:
        text = _without_entities(m)
        if len(text) < NEAR_COPY_MIN_CHARS:
            continue
        for other in train:
            matcher = difflib.SequenceMatcher(None, text, other)
            if matcher.real_quick_ratio() >= NEAR_COPY_RATIO and matcher.ratio() >= NEAR_COPY_RATIO:
                near.append((m.get("text"), other))
    assert near == []


def test_no_entity_value_shared_between_train_and_test() -> None:
    """The held-out set uses other IDs, phones, numbers, names and addresses."""

    def values(data: TrainingData) -> set[tuple[str, str]]:
        return {
            (e["entity"], normalise(e["value"]))
            for m in data.intent_examples
            for e in m.get("entities") or []
            if e["entity"] != "address"
        }

    assert values(train_data()) & values(held_out_data()) == set()


@pytest.mark.parametrize("which", ["train", "test"])
def test_no_duplicates_and_no_sentence_under_two_intents(which: str) -> None:
    data = train_data() if which == "train" else held_out_data()
    seen: dict[str, str] = {}
    clashes = []
    for m in data.intent_examples:
        key = normalise(m.get("text"))
        if key in seen:
            clashes.append((m.get("text"), seen[key], label(m)))
        seen[key] = label(m)
    assert clashes == []


def test_regexes_have_no_word_boundaries_and_compile() -> None:
    patterns = regex_patterns()
    assert set(patterns) == set(REGEX_ENTITIES)
    for name, pats in patterns.items():
        for pat in pats:
            assert "\\b" not in pat and "\\B" not in pat, (name, pat)
            re.compile(pat)


@pytest.mark.parametrize("which", ["train", "test"])
def test_regexes_find_every_annotated_value_and_nothing_else(which: str) -> None:
    """Each regex entity is found exactly where it is annotated (phones never inside IDs)."""
    data = train_data() if which == "train" else held_out_data()
    compiled = {n: [re.compile(p) for p in ps] for n, ps in regex_patterns().items()}
    problems = []
    for m in data.intent_examples:
        text = m.get("text")
        gold = {
            (e["entity"], e["start"], e["end"])
            for e in m.get("entities") or []
            if e["entity"] in REGEX_ENTITIES
        }
        found = {
            (name, hit.start(), hit.end())
            for name, pats in compiled.items()
            for pat in pats
            for hit in pat.finditer(text)
        }
        if gold != found:
            problems.append((text, sorted(gold ^ found)))
    assert problems == []


@pytest.mark.parametrize("which", ["train", "test"])
def test_entity_values_are_well_formed(which: str) -> None:
    data = train_data() if which == "train" else held_out_data()
    for m in data.intent_examples:
        for e in m.get("entities") or []:
            value = e["value"]
            assert value == value.strip() and value, (m.get("text"), e)
            if e["entity"] == "id_number":
                assert id_checksum_ok(value), value
            elif e["entity"] == "phone":
                assert PHONE_RE.fullmatch(value), value
            elif e["entity"] == "person_name":
                assert re.fullmatch(r"[\u4e00-\u9fa5]{2,4}", value), value


@pytest.mark.parametrize("which", ["train", "test"])
def test_entity_spans_fall_on_token_boundaries(which: str) -> None:
    """DIET only learns an annotation whose ends are token ends; jieba with the ledger words."""
    data = train_data() if which == "train" else held_out_data()
    bad = misaligned(data)
    total = sum(entity_counts(data).values())
    assert len(bad) <= 0.03 * total, bad


def test_unannotated_numbers_do_not_hide_entities() -> None:
    """A long digit run in an example is always part of an annotated entity (consistency)."""
    problems = []
    for data in (train_data(), held_out_data()):
        for m in data.intent_examples:
            text = m.get("text")
            covered = set()
            for e in m.get("entities") or []:
                covered.update(range(e["start"], e["end"]))
            for run in re.finditer(r"\d{7,}", text):
                if not set(range(run.start(), run.end())) <= covered:
                    problems.append(text)
    assert problems == []


def main() -> None:
    """Print per-intent and per-entity counts for training and held-out data."""
    tr, te = label_counts(train_data()), label_counts(held_out_data())
    print(f"{'intent':45} {'train':>6} {'test':>6}")
    for name in sorted(set(tr) | set(te)):
        print(f"{name:45} {tr[name]:6} {te[name]:6}")
    n_tr, n_te = sum(tr.values()), sum(te.values())
    print(f"{'TOTAL':45} {n_tr:6} {n_te:6}  test/train = {n_te / n_tr:.1%}")
    etr, ete = entity_counts(train_data()), entity_counts(held_out_data())
    for name in sorted(set(etr) | set(ete)):
        print(f"entity {name:38} {etr[name]:6} {ete[name]:6}")
    for which, data in (("train", train_data()), ("test", held_out_data())):
        bad = misaligned(data)
        print(f"misaligned spans ({which}): {len(bad)}")
        for b in bad:
            print("   ", b)


if __name__ == "__main__":
    main()
