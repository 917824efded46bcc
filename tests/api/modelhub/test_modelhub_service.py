"""The registry's service on SQLite and PostgreSQL: start-up registration, training queued on
the training queue after the commit (`trainer.train_candidate`, SQLite and Redis queues), the
trainer's report, promotion with its checks, an admin's override, rollback, one live model."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from huey import Huey
from huey.consumer import Consumer
from modelhub.hubkit import INTENTS, make_archive, metrics
from sqlalchemy import select

from app.audit.models import AuditLog
from app.core.database import utcnow
from app.core.errors import AppError
from app.modelhub import artifact, queue, service
from app.modelhub.models import NluModel


def _candidate(db, folder, user, m) -> NluModel:
    """A model trained and reported as the trainer does it: row, artifact, result."""
    row = NluModel(status="training", started_by=service.actor_of(user))
    db.add(row)
    db.flush()
    upload = make_archive(folder / "uploads")
    service.accept_artifact(db, model_id=row.id, upload=upload, sha256="x", claimed=None)
    return service.record_result(
        db, model_id=row.id, status="candidate", metrics=m, fingerprint=row.fingerprint, error=None
    )


@pytest.fixture
def live(db, tmp_path):
    """A live model registered at start-up with figures."""
    path = make_archive(tmp_path / "bot-models")
    done = service.register_live(db, path=path, actor="cli:test", metrics=metrics(0.95))
    db.commit()
    return done.model


def test_register_live_is_idempotent_and_copies_the_file(db, tmp_path, model_dir):
    """First run: live, the file copied into MODEL_CANDIDATES_DIR with its fingerprint and the
    data hash from the file name; again with the same model: unchanged; another model while one
    is live: a candidate."""
    path = make_archive(tmp_path / "m", model_id="a" * 32)
    first = service.register_live(db, path=path, actor="cli:test")
    assert first.outcome == "live" and first.model.status == "live"
    assert first.model.fingerprint == "a" * 32 and first.model.data_hash == "a" * 16
    assert first.model.artifact.startswith(str(model_dir))
    assert artifact.fingerprint_of(artifact.stored_path(first.model.id)) == "a" * 32
    again = service.register_live(db, path=path, actor="cli:test")
    assert again.outcome == "unchanged" and again.model.id == first.model.id
    other = service.register_live(db, path=make_archive(tmp_path / "m2"), actor="cli:test")
    assert other.outcome == "candidate" and other.model.status == "candidate"
    assert len(service.list_models(db)) == 2
    assert db.scalars(select(AuditLog).where(AuditLog.action == "model.register")).all()


def test_a_file_that_is_not_a_model_is_refused(db, tmp_path):
    """No metadata.json: a Chinese 422."""
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(AppError) as err:
        service.register_live(db, path=bad, actor="cli:test")
    assert err.value.status_code == 422 and "metadata.json" in err.value.message


def _consume_one(huey: Huey, seen: list[int]) -> None:
    """Run the real Huey consumer on the training queue with the task the trainer defines (the
    documented way: module `trainer`, function `train_candidate`) until one job ran."""
    done = threading.Event()

    def train_candidate(model_id: int) -> None:
        seen.append(model_id)
        done.set()

    train_candidate.__module__ = "trainer"
    trainer_huey = Huey(
        huey.name, results=False, utc=True, storage_class=huey.storage_class, **huey.storage_kwargs
    )
    trainer_huey.task()(train_candidate)
    consumer = Consumer(
        trainer_huey,
        workers=1,
        worker_type="thread",
        initial_delay=0.05,
        max_delay=0.2,
        periodic=False,
    )
    consumer._set_signal_handlers = lambda: None
    consumer.start()
    try:
        assert done.wait(15), "the trainer's consumer never got the job"
    finally:
        consumer.stop(graceful=True)


@pytest.mark.parametrize("queue_fixture", ["sqlite_queue", "redis_queue"])
def test_training_is_queued_after_commit_as_trainer_train_candidate(
    request, db, users, queue_fixture
):
    """`start_training` adds a `training` row; nothing is queued before the commit; after it
    the message on `<JOB_QUEUE_NAME>-training` is named `trainer.train_candidate` and a consumer
    that defines that task runs it with the model id."""
    main: Huey = request.getfixturevalue(queue_fixture)
    training = queue.training_huey()
    assert training.name == f"{main.name}-training"
    assert queue.task_string() == "trainer.train_candidate"
    row = service.start_training(db, user=users["maintainer"])
    assert row.status == "training" and row.started_by == f"staff:{users['maintainer'].username}"
    assert row.data_hash and training.pending_count() == 0
    db.commit()
    assert training.pending_count() == 1 and main.pending_count() == 0
    (raw,) = training.storage.enqueued_items()
    message = training.serializer.deserialize(raw)
    assert (message.name, message.args) == ("trainer.train_candidate", (row.id,))
    seen: list[int] = []
    _consume_one(training, seen)
    assert seen == [row.id]


def test_one_training_at_a_time_and_stale_ones_expire(db, users, sqlite_queue, monkeypatch):
    """A second training while one runs: 409; a training older than the timeout is failed."""
    first = service.start_training(db, user=users["maintainer"])
    db.commit()
    with pytest.raises(AppError) as err:
        service.start_training(db, user=users["admin"])
    assert err.value.status_code == 409 and f"#{first.id}" in err.value.message
    from app.modelhub.config import settings

    monkeypatch.setattr(settings, "model_training_timeout_seconds", -1)
    second = service.start_training(db, user=users["admin"])
    db.commit()
    db.refresh(first)
    assert first.status == "failed" and "超时" in first.error and second.status == "training"


def test_clerks_cannot_train_or_promote(db, users):
    """The permissions are checked in the service too."""
    for call in (
        lambda: service.start_training(db, user=users["clerk"]),
        lambda: service.promote(db, model_id=1, user=users["supervisor"]),
    ):
        with pytest.raises(AppError) as err:
            call()
        assert err.value.status_code == 403


def test_result_needs_the_artifact_and_a_training_model(db, users, tmp_path):
    """`candidate` before the upload: 409; a failed training keeps its error; a second report:
    409; a claimed fingerprint that is not the upload's: 409 and the upload is dropped."""
    row = NluModel(status="training", started_by="staff:x")
    db.add(row)
    db.flush()
    with pytest.raises(AppError) as err:
        service.record_result(
            db, model_id=row.id, status="candidate", metrics={}, fingerprint=None, error=None
        )
    assert err.value.code == "no_artifact"
    upload = make_archive(tmp_path / "u")
    with pytest.raises(AppError) as err:
        service.accept_artifact(db, model_id=row.id, upload=upload, sha256="s", claimed="nope")
    assert err.value.code == "fingerprint_mismatch" and not upload.exists()
    service.record_result(
        db,
        model_id=row.id,
        status="failed",
        metrics=None,
        fingerprint=None,
        error="rasa train 超时",
    )
    assert row.status == "failed" and row.error == "rasa train 超时" and row.finished_at
    with pytest.raises(AppError) as err:
        service.record_result(
            db, model_id=row.id, status="failed", metrics=None, fingerprint=None, error=None
        )
    assert err.value.code == "not_training"


def test_worse_candidate_is_refused_with_the_reason_better_one_is_promoted(
    db, users, live, tmp_path
):
    """A candidate whose macro-F1 fell 0.03 is refused (409, Chinese reason, the refusal kept on
    the row); a better one becomes live and the old live model retired; audited."""
    worse = _candidate(db, tmp_path, users["maintainer"], metrics(0.92))
    assert worse.status == "candidate" and "意图宏平均 F1 从 0.950 降到 0.920" in worse.refusal
    with pytest.raises(AppError) as err:
        service.promote(db, model_id=worse.id, user=users["maintainer"])
    assert err.value.status_code == 409 and err.value.message.startswith("不能上线：")
    assert err.value.extra["refusals"]
    better = _candidate(db, tmp_path, users["maintainer"], metrics(0.96))
    assert better.refusal is None
    service.promote(db, model_id=better.id, user=users["maintainer"])
    db.commit()
    assert (better.status, live.status, worse.status) == ("live", "retired", "candidate")
    assert better.promoted_by == f"staff:{users['maintainer'].username}"
    assert service.live_model(db).id == better.id
    trail = db.scalars(
        select(AuditLog).where(
            AuditLog.entity_type == "nlu_model", AuditLog.entity_id == str(better.id)
        )
    ).all()
    assert [a.action for a in trail] == ["model.promote"]
    assert trail[0].after["retired"] == live.id


def test_only_an_admin_overrides_and_only_with_a_reason(db, users, live, tmp_path):
    """Maintainer + reason: 403; admin without reason: 409; admin with a too short reason: 422;
    admin with a reason: live, reason stored and audited as an override."""
    worse = _candidate(db, tmp_path, users["maintainer"], metrics(0.90))
    with pytest.raises(AppError) as err:
        service.promote(db, model_id=worse.id, user=users["maintainer"], reason="急需上线修复")
    assert err.value.status_code == 403 and "管理员" in err.value.message
    with pytest.raises(AppError) as err:
        service.promote(db, model_id=worse.id, user=users["admin"])
    assert err.value.status_code == 409
    with pytest.raises(AppError) as err:
        service.promote(db, model_id=worse.id, user=users["admin"], reason="急")
    assert err.value.status_code == 422
    reason = "新政策问答必须今天上线，意图下降已人工核对"
    service.promote(db, model_id=worse.id, user=users["admin"], reason=reason)
    db.commit()
    assert worse.status == "live" and worse.override_reason == reason
    audit = db.scalars(select(AuditLog).where(AuditLog.action == "model.override")).one()
    assert audit.after["reason"] == reason and audit.actor == f"staff:{users['admin'].username}"


def test_rollback_promotes_the_retired_model_without_checks(db, users, live, tmp_path):
    """After a promotion, the previous live model is the rollback target; promoting it needs no
    checks (it served before), is audited as a rollback and retires the other one."""
    better = _candidate(db, tmp_path, users["maintainer"], metrics(0.97))
    service.promote(db, model_id=better.id, user=users["maintainer"])
    db.commit()
    assert service.previous_live(db).id == live.id
    service.promote(db, model_id=live.id, user=users["maintainer"])
    db.commit()
    assert (live.status, better.status) == ("live", "retired")
    assert service.previous_live(db).id == better.id
    assert db.scalars(select(AuditLog).where(AuditLog.action == "model.rollback")).one()
    with pytest.raises(AppError) as err:
        service.promote(db, model_id=live.id, user=users["maintainer"])
    assert err.value.code == "already_live"


def test_training_and_failed_models_cannot_be_promoted(db, users, live):
    """Only candidates and retired models go live."""
    row = NluModel(status="failed", started_by="staff:x", error="boom")
    db.add(row)
    db.flush()
    with pytest.raises(AppError) as err:
        service.promote(db, model_id=row.id, user=users["admin"], reason="无论如何上线")
    assert err.value.code == "not_promotable"
    with pytest.raises(AppError) as err:
        service.promote(db, model_id=99999, user=users["admin"])
    assert err.value.status_code == 404


def test_baseline_measured_in_the_same_job_is_what_the_candidate_is_compared_with(
    db, users, live, tmp_path
):
    """The trainer may send `metrics.baseline` (the live model on the same held-out set and
    suite): the candidate is judged against it when it names the live fingerprint (or none);
    a baseline of another model is ignored."""
    same_run = metrics(0.93, baseline=metrics(0.93) | {"fingerprint": live.fingerprint})
    ok = _candidate(db, tmp_path, users["maintainer"], same_run)
    assert ok.refusal is None
    other = metrics(0.93, baseline=metrics(0.93) | {"fingerprint": "someone-else"})
    refused = _candidate(db, tmp_path, users["maintainer"], other)
    assert refused.refusal and "0.950" in refused.refusal


def test_refusals_follow_the_live_model(db, users, live, tmp_path):
    """A candidate refused against one live model is judged again when another goes live."""
    mid = _candidate(
        db, tmp_path, users["maintainer"], metrics(0.94, per_intent=dict.fromkeys(INTENTS, 0.94))
    )
    assert mid.refusal
    low = _candidate(
        db, tmp_path, users["maintainer"], metrics(0.90, per_intent=dict.fromkeys(INTENTS, 0.90))
    )
    service.promote(db, model_id=low.id, user=users["admin"], reason="测试用的强制上线")
    db.commit()
    db.refresh(mid)
    assert mid.refusal is None


def test_two_promotions_racing_leave_exactly_one_live_model(committing_sessions, tmp_path):
    """Two maintainers promote two candidates at the same moment (two real transactions): one
    wins, the other is told to refresh (409); the registry has exactly one live model."""
    from staff.staffkit import make_user

    with committing_sessions() as db:
        user = make_user(db, "maintainer")
        service.register_live(
            db, path=make_archive(tmp_path / "l"), actor="cli:t", metrics=metrics()
        )
        ids = [_candidate(db, tmp_path, user, metrics(0.96)).id for _ in range(2)]
        db.commit()
        user_id = user.id
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def promote(model_id: int) -> None:
        from app.staff.models import StaffUser

        with committing_sessions() as db:
            staff = db.get(StaffUser, user_id)
            seen = service.live_model(db)  # what each maintainer's page showed
            assert seen is not None
            barrier.wait()
            try:
                service.promote(db, model_id=model_id, user=staff, expected_live=seen.id)
                db.commit()
                outcomes.append("live")
            except AppError as exc:
                db.rollback()
                outcomes.append(f"{exc.status_code}")

    threads = [threading.Thread(target=promote, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["409", "live"]
    with committing_sessions() as db:
        live = db.scalars(select(NluModel).where(NluModel.status == "live")).all()
        assert len(live) == 1 and live[0].id in ids


def test_a_promotion_committed_while_another_is_being_judged_leaves_one_winner(
    committing_sessions, tmp_path, monkeypatch
):
    """The race's narrow window, made certain: maintainer B's promotion has checked that the
    live model is still the one B's page showed, and while B's candidate is being judged,
    maintainer A's promotion commits. B is told to refresh (409), A's model stays live."""
    from staff.staffkit import make_user

    from app.staff.models import StaffUser

    with committing_sessions() as db:
        user = make_user(db, "maintainer")
        old = service.register_live(
            db, path=make_archive(tmp_path / "l"), actor="cli:t", metrics=metrics()
        ).model
        first, second = (_candidate(db, tmp_path, user, metrics(0.96)).id for _ in range(2))
        db.commit()
        user_id, old_id = user.id, old.id
    judge = service.verdict
    colleague_done: list[int] = []

    def verdict_while_colleague_commits(row, live):
        if row.id == second and not colleague_done:
            colleague_done.append(first)
            with committing_sessions() as other:
                staff = other.get(StaffUser, user_id)
                service.promote(other, model_id=first, user=staff, expected_live=old_id)
                other.commit()
        return judge(row, live)

    monkeypatch.setattr(service, "verdict", verdict_while_colleague_commits)
    with committing_sessions() as db:
        staff = db.get(StaffUser, user_id)
        with pytest.raises(AppError) as refused:
            service.promote(db, model_id=second, user=staff, expected_live=old_id)
        db.rollback()
    assert colleague_done == [first]
    assert (refused.value.status_code, refused.value.code) == (409, "promotion_conflict")
    with committing_sessions() as db:
        live = db.scalars(select(NluModel).where(NluModel.status == "live")).all()
        assert [m.id for m in live] == [first]
        assert db.get(NluModel, old_id).status == "retired"
        assert db.get(NluModel, second).status == "candidate"


def test_a_promotion_over_a_live_model_the_page_did_not_show_is_refused(db, tmp_path):
    """The slower of two maintainers clicks after the other's promotion has committed: told to
    refresh, the colleague's model stays live; without `expected_live` (the API's callers of
    before) the promotion goes through as it always did."""
    from staff.staffkit import make_user

    user = make_user(db, "maintainer")
    old = service.register_live(
        db, path=make_archive(tmp_path / "l"), actor="cli:t", metrics=metrics()
    ).model
    first, second = (_candidate(db, tmp_path, user, metrics(0.96)) for _ in range(2))
    service.promote(db, model_id=first.id, user=user, expected_live=old.id)
    with pytest.raises(AppError) as err:
        service.promote(db, model_id=second.id, user=user, expected_live=old.id)
    assert err.value.status_code == 409 and err.value.code == "promotion_conflict"
    assert "刷新" in err.value.message
    assert service.live_model(db).id == first.id
    service.promote(db, model_id=second.id, user=user, expected_live=first.id)
    assert service.live_model(db).id == second.id


def test_a_silent_trainer_fails_its_training(db, users, sqlite_queue, monkeypatch):
    """Progress reports keep a training alive; one not started, or silent for longer than
    MODEL_TRAINING_STALL_SECONDS since its last step (the trainer was killed), is failed with
    the reason in Chinese and a new one can start; a late report of the lost one is refused
    (409), which stops that job."""
    from app.modelhub.config import settings

    monkeypatch.setattr(settings, "model_training_stall_seconds", 600)
    row = service.start_training(db, user=users["maintainer"])
    db.commit()
    assert row.stage_label == "排队等待训练进程"
    service.record_progress(db, model_id=row.id, stage="train")
    db.commit()
    assert row.stage_label == "训练模型" and row.heartbeat_at is not None
    service.expire_stale_trainings(db)
    assert row.status == "training"  # it reported just now

    # Ten minutes and a second of silence since the last step: lost.
    row.heartbeat_at = utcnow() - timedelta(seconds=601)
    db.commit()
    service.expire_stale_trainings(db)
    assert row.status == "failed" and row.finished_at is not None
    assert "没有报告进度" in row.error and row.stage_label is None
    with pytest.raises(AppError) as err:
        service.record_progress(db, model_id=row.id, stage="upload")
    assert err.value.status_code == 409

    # Never picked up (no trainer running): failed too, with that reason.
    never = service.start_training(db, user=users["admin"])
    never.created_at = utcnow() - timedelta(seconds=601)
    db.commit()
    assert service.start_training(db, user=users["admin"]).status == "training"
    db.refresh(never)
    assert never.status == "failed" and "没有开始" in never.error


def test_the_sweep_on_the_job_queue_fails_lost_trainings(outbox_db):
    """The api's worker runs the sweep every minute (app.tasks): it commits the failure."""
    from app import tasks

    with outbox_db.sessions() as db:
        lost = NluModel(status="training", started_by="staff:m", stage="heldout")
        lost.heartbeat_at = utcnow() - timedelta(hours=1)
        alive = NluModel(status="candidate", started_by="staff:m")
        db.add_all([lost, alive])
        db.commit()
        ids = (lost.id, alive.id)
    assert "sweep_trainings" in tasks.__all__
    tasks.sweep_trainings.call_local()
    with outbox_db.sessions() as db:
        lost, alive = (db.get(NluModel, i) for i in ids)
        assert lost.status == "failed" and "中断" in lost.error
        assert alive.status == "candidate"
