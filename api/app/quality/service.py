"""How well the bot does, from real conversations (never from test data): containment, fallback
and transfer rates, the most frequent unanswered messages, and — from the messages maintainers
annotated — per-intent F1 of each model version and the confusion matrix."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.core.workdays import SHANGHAI, today_shanghai
from app.nlu.models import NluInboxItem
from app.notify.models import ResidentContact
from app.petition.models import Petition

DEFAULT_DAYS = 30
TOP_UNANSWERED = 10
UNANSWERED_REASONS = ("fallback", "out_of_scope")
# Messages whose true intent a maintainer settled (annotated, exported or marked out of scope).
SETTLED = ("annotated", "exported", "out_of_scope")


def rate(part: int, whole: int) -> float | None:
    """part/whole as a percentage with one decimal; None with nothing to divide."""
    return round(100.0 * part / whole, 1) if whole else None


@dataclass
class IntentScore:
    """Precision, recall and F1 of one intent for one model version (annotated messages)."""

    support: int
    predicted: int
    correct: int

    @property
    def f1(self) -> float | None:
        """2·TP / (2·TP + FP + FN); None when the intent never occurs either way."""
        denominator = self.support + self.predicted
        return round(2 * self.correct / denominator, 3) if denominator else None


@dataclass
class Quality:
    """Everything the quality page shows for a period."""

    since: date
    until: date
    conversations: int = 0
    with_petition: int = 0
    with_person: int = 0
    contained: int = 0
    turns: int = 0
    fallback_turns: int = 0
    unanswered: list[tuple[str, int]] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    # intent -> version -> score
    by_intent: dict[str, dict[str, IntentScore]] = field(default_factory=dict)
    # (true intent, predicted intent) -> count, over every version
    confusion: dict[tuple[str, str], int] = field(default_factory=dict)
    annotated: int = 0

    @property
    def containment_rate(self) -> float | None:
        """Conversations answered without a petition or a person."""
        return rate(self.contained, self.conversations)

    @property
    def transfer_rate(self) -> float | None:
        """Conversations in which the resident asked for a person (or staff took over)."""
        return rate(self.with_person, self.conversations)

    @property
    def fallback_rate(self) -> float | None:
        """Turns the bot answered with 没听懂, among all turns."""
        return rate(self.fallback_turns, self.turns)

    @property
    def labels(self) -> list[str]:
        """The intents of the confusion matrix, most frequent true intent first."""
        counts: Counter[str] = Counter()
        for (truth, predicted), n in self.confusion.items():
            counts[truth] += n
            counts[predicted] += 0
        return [label for label, _ in counts.most_common()]


def normalise(text: str) -> str:
    """Messages compared without width, spaces and punctuation (for grouping)."""
    value = unicodedata.normalize("NFKC", text or "").lower()
    return re.sub(r"[\s\W_]+", "", value)


def _bounds(since: date, until: date) -> tuple[datetime, datetime]:
    start = datetime.combine(since, time.min, tzinfo=SHANGHAI).astimezone(UTC)
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=SHANGHAI).astimezone(UTC)
    return start, end


def version_label(model_id: str | None) -> str:
    """A model version as the page shows it (the fingerprint's first characters)."""
    return (model_id or "未知")[:12]


def build(*, db: Session, since: date | None = None, until: date | None = None) -> Quality:
    """The figures for conversations that began between `since` and `until` (Shanghai days)."""
    until = until or today_shanghai()
    since = since or until - timedelta(days=DEFAULT_DAYS - 1)
    start, end = _bounds(since, until)
    quality = Quality(since=since, until=until)

    in_period = (ResidentContact.created_at >= start, ResidentContact.created_at < end)
    filed = select(Petition.sender_id).where(Petition.sender_id.is_not(None)).distinct()
    contacts = db.execute(
        select(
            ResidentContact.sender_id,
            ResidentContact.turns,
            ResidentContact.handoff_at,
            ResidentContact.staff_at,
            ResidentContact.sender_id.in_(filed),
        ).where(*in_period, ResidentContact.turns > 0)
    ).all()
    for _, turns, handoff_at, staff_at, has_petition in contacts:
        quality.conversations += 1
        quality.turns += int(turns or 0)
        person = handoff_at is not None or staff_at is not None
        quality.with_person += int(person)
        quality.with_petition += int(bool(has_petition))
        quality.contained += int(not person and not has_petition)

    items = (NluInboxItem.created_at >= start, NluInboxItem.created_at < end)
    quality.fallback_turns = int(
        db.scalar(
            select(func.count())
            .select_from(NluInboxItem)
            .where(*items, NluInboxItem.reason == "fallback")
        )
        or 0
    )
    unanswered: Counter[str] = Counter()
    shown: dict[str, str] = {}
    for (text,) in db.execute(
        select(NluInboxItem.text).where(
            *items, NluInboxItem.reason.in_(UNANSWERED_REASONS), NluInboxItem.status != "deleted"
        )
    ):
        key = normalise(text)
        if key:
            unanswered[key] += 1
            shown.setdefault(key, text)
    quality.unanswered = [(shown[k], n) for k, n in unanswered.most_common(TOP_UNANSWERED)]

    _scores(db, quality, items)
    return quality


def _scores(db: Session, quality: Quality, items: tuple[ColumnElement[bool], ...]) -> None:
    rows = db.execute(
        select(
            NluInboxItem.model_id,
            NluInboxItem.predicted_intent,
            NluInboxItem.intent,
            NluInboxItem.status,
            NluInboxItem.created_at,
        ).where(
            *items, NluInboxItem.status.in_(SETTLED), NluInboxItem.predicted_intent.is_not(None)
        )
    ).all()
    first_seen: dict[str, datetime] = {}
    tallies: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
    for model_id, predicted, intent, status, created_at in rows:
        truth = "out_of_scope" if status == "out_of_scope" else intent
        if not truth or not predicted:
            continue
        version = version_label(model_id)
        first_seen[version] = min(first_seen.get(version, created_at), created_at)
        quality.annotated += 1
        quality.confusion[(truth, predicted)] = quality.confusion.get((truth, predicted), 0) + 1
        tallies[truth][version][0] += 1  # support
        tallies[predicted][version][1] += 1  # predicted as
        if truth == predicted:
            tallies[truth][version][2] += 1
    quality.versions = sorted(first_seen, key=lambda v: first_seen[v])
    quality.by_intent = {
        intent: {v: IntentScore(*counts) for v, counts in per_version.items()}
        for intent, per_version in sorted(tallies.items())
    }
