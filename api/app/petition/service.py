"""Petition intake and the resident's status lookup."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import date

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.audit.models import AuditLog
from app.core.errors import AppError
from app.core.security import mask_personal
from app.core.workdays import calendar, today_shanghai
from app.petition.models import Petition, PetitionDayCounter, PetitionMessage
from app.petition.schemas import PetitionCreate, normalize_person_name
from app.policy.catalogue import get_catalogue
from app.status import matching
from app.status.models import Project

log = logging.getLogger(__name__)


def first_answer_days() -> int:
    """The catalogue's first-answer limit in working days (5, the 'one week' of real programmes)."""
    return int(get_catalogue().settings.first_answer_working_days)


def _fingerprint(data: PetitionCreate) -> str:
    # The conversation is left out: it grows between a turn and its retry, and the petition is
    # the same one (the bot's idempotency key leaves it out too).
    body = json.dumps(
        data.model_dump(mode="json", exclude={"conversation"}), ensure_ascii=False, sort_keys=True
    )
    return hashlib.sha256(body.encode()).hexdigest()


def next_number(*, db: Session, day: date) -> str:
    """Atomically take the day's next sequence number: `XF-YYYYMMDD-NNNN`."""
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(PetitionDayCounter)
        .values(day=day, last=1)
        .on_conflict_do_update(
            index_elements=[PetitionDayCounter.day], set_={"last": PetitionDayCounter.last + 1}
        )
        .returning(PetitionDayCounter.last)
    )
    seq = db.execute(stmt).scalar_one()
    if seq > 9999:
        raise AppError(503, "daily_limit", "今日信访受理编号已用完，请明天再试或拨打热线。")
    return f"XF-{day:%Y%m%d}-{seq:04d}"


def get_by_idempotency_key(*, db: Session, key: str) -> Petition | None:
    """The petition an earlier request with this key created, if any."""
    return db.scalar(select(Petition).where(Petition.idempotency_key == key))


def _resolve_home(*, db: Session, data: PetitionCreate) -> tuple[int | None, int | None, str]:
    """Project and unit ids for the petition: by code, else by matching the address."""
    if data.project_code:
        project = db.scalar(select(Project).where(Project.code == data.project_code))
        if project is None:
            raise AppError(422, "unknown_project", "没有找到这个项目编号，请核对后重新填写。")
        return project.id, None, data.address or project.name
    assert data.address is not None
    found = matching.match_address(db=db, text=data.address)
    if found.match not in ("unit", "project"):
        # Ambiguous or unknown: staff see the address as typed and link the project by hand.
        return None, None, data.address
    return found.project_id, found.unit_id, data.address


def _known_blockers(codes: list[str] | None) -> list[str] | None:
    """The catalogue's codes among those given (a bad code never loses a petition)."""
    if not codes:
        return None
    known = get_catalogue().blockers
    return [c for c in dict.fromkeys(codes) if c in known] or None


def create(
    *,
    db: Session,
    data: PetitionCreate,
    idempotency_key: str | None = None,
    today: date | None = None,
    sender_id: str | None = None,
) -> tuple[Petition, bool]:
    """Take in a petition; returns (petition, created). A repeated key returns the first one."""
    fingerprint = _fingerprint(data)
    if idempotency_key:
        existing = get_by_idempotency_key(db=db, key=idempotency_key)
        if existing is not None:
            return _replayed(existing, fingerprint), False
    day = today or today_shanghai()
    project_id, unit_id, address = _resolve_home(db=db, data=data)
    answer_due, provisional = calendar().add_working_days(day, first_answer_days())
    try:
        with db.begin_nested():
            petition = Petition(
                number=next_number(db=db, day=day),
                status="accepted",
                person_name=data.person_name,
                phone=data.phone,
                project_id=project_id,
                unit_id=unit_id,
                address=address,
                description=mask_personal(data.description),
                consent=data.consent,
                channel=data.channel,
                intake_date=day,
                answer_due=answer_due,
                answer_due_provisional=provisional,
                idempotency_key=idempotency_key,
                idempotency_fingerprint=fingerprint if idempotency_key else None,
                sender_id=sender_id,
                blockers=_known_blockers(data.blockers),
            )
            db.add(petition)
            db.flush()
            _add_conversation(db=db, petition=petition, data=data)
            db.add(
                AuditLog(
                    actor=f"resident:{data.channel}",
                    action="petition_created",
                    entity_type="petition",
                    entity_id=petition.number,
                    before=None,
                    after={"status": "accepted", "answer_due": answer_due.isoformat()},
                )
            )
            db.flush()
    except IntegrityError:
        # A concurrent request with the same key won the race: answer with its petition.
        if idempotency_key:
            existing = get_by_idempotency_key(db=db, key=idempotency_key)
            if existing is not None:
                return _replayed(existing, fingerprint), False
        raise
    log.info("petition %s accepted via %s", petition.number, data.channel)
    return petition, True


def _add_conversation(*, db: Session, petition: Petition, data: PetitionCreate) -> None:
    """Store the turns, masked again: the api never trusts a caller to have masked them."""
    for position, turn in enumerate(data.conversation or []):
        db.add(
            PetitionMessage(
                petition_id=petition.id,
                position=position,
                at=turn.at,
                sender=turn.sender,
                text=mask_personal(turn.text),
            )
        )


def conversation(*, db: Session, petition: Petition) -> list[PetitionMessage]:
    """The petition's stored turns, oldest first."""
    return list(
        db.scalars(
            select(PetitionMessage)
            .where(PetitionMessage.petition_id == petition.id)
            .order_by(PetitionMessage.position)
        )
    )


def _replayed(existing: Petition, fingerprint: str) -> Petition:
    if existing.idempotency_fingerprint and not hmac.compare_digest(
        existing.idempotency_fingerprint, fingerprint
    ):
        raise AppError(409, "idempotency_conflict", "这个请求编号已用于另一份信访，请重新提交。")
    return existing


def lookup(*, db: Session, number: str, phone: str) -> Petition | None:
    """The petition with this number, only when the phone matches the one given at intake."""
    petition = db.scalar(
        select(Petition)
        .where(Petition.number == number)
        .options(selectinload(Petition.assignments))
    )
    if petition is None or not hmac.compare_digest(petition.phone, phone):
        return None
    return petition


MAX_BY_NAME = 20  # petitions answered; the phone's latest 200 are looked through


def list_by_phone_and_name(*, db: Session, phone: str, person_name: str) -> list[Petition]:
    """The petitions given with this phone AND this name, newest first (for a resident who
    lost the number; the phone column is indexed, names are compared normalised)."""
    stmt = (
        select(Petition)
        .where(Petition.phone == phone)
        .order_by(Petition.created_at.desc(), Petition.id.desc())
        .limit(10 * MAX_BY_NAME)
        .options(selectinload(Petition.assignments))
    )
    want = normalize_person_name(person_name).encode()
    found = [
        p
        for p in db.scalars(stmt)
        if hmac.compare_digest(normalize_person_name(p.person_name).encode(), want)
    ]
    return found[:MAX_BY_NAME]


def lookup_for_sender(*, db: Session, number: str, sender_id: str | None) -> Petition | None:
    """The petition with this number, only for the conversation that filed it."""
    if not sender_id:
        return None
    petition = db.scalar(
        select(Petition)
        .where(Petition.number == number)
        .options(selectinload(Petition.assignments))
    )
    if petition is None or not petition.sender_id:
        return None
    if not hmac.compare_digest(petition.sender_id.encode(), sender_id.encode()):
        return None
    return petition


def department_names(petition: Petition) -> list[str]:
    """Chinese names of the departments the petition is assigned to."""
    departments = get_catalogue().departments
    return [
        departments[a.department].name if a.department in departments else a.department
        for a in petition.assignments
    ]
