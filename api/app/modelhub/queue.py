"""The training queue: Huey queue `<JOB_QUEUE_NAME>-training` on the storage of JOB_QUEUE_URL.

The api only puts jobs on it; the consumer is the trainer in the bot environment
(`bot/.venv/bin/python -m trainer`), which defines the real task. Huey finds a task by the
string `<function's __module__>.<task name>` (huey.registry.Registry.task_to_string): the job
is queued as **`trainer.train_candidate`** with one positional argument, the model id. The
trainer must register exactly that string, for example in `bot/trainer/__init__.py`:

    huey = Huey("<JOB_QUEUE_NAME>-training", results=False, utc=True, storage_class=…)
    @huey.task()                       # module `trainer` + function `train_candidate`
    def train_candidate(model_id: int) -> None: ...

(`@huey.task(name="trainer.train_candidate")` would register `trainer.trainer.train_candidate`
or `__main__.trainer.train_candidate`: the module is always prefixed). Both sides use Huey's
default pickle serializer without compression. The stub below is never run by the api's own
worker, which consumes another queue (`<JOB_QUEUE_NAME>`).
"""

from __future__ import annotations

from typing import Any

from huey import Huey

from app.jobs import queue as job_queue

TASK_MODULE = "trainer"
TASK_NAME = "train_candidate"
QUEUE_SUFFIX = "-training"

_cache: dict[tuple[Any, ...], tuple[Huey, Any]] = {}


def queue_name() -> str:
    """`<JOB_QUEUE_NAME>-training` (follows the job queue when tests point it elsewhere)."""
    return f"{job_queue.huey.name}{QUEUE_SUFFIX}"


def _stub(model_id: int) -> None:  # pragma: no cover - the trainer runs the real one
    raise RuntimeError("trainer.train_candidate runs in the bot environment (python -m trainer)")


def _training() -> tuple[Huey, Any]:
    main = job_queue.huey
    key = (main.storage_class, tuple(sorted(main.storage_kwargs.items())), queue_name())
    if key not in _cache:
        for old, _task in _cache.values():
            try:
                old.storage.close()
            except Exception:  # noqa: BLE001 - a storage that cannot close is dropped anyway
                pass
        _cache.clear()
        huey = Huey(
            queue_name(),
            results=False,
            utc=True,
            storage_class=main.storage_class,
            **main.storage_kwargs,
        )
        _stub.__module__ = TASK_MODULE
        _stub.__name__ = _stub.__qualname__ = TASK_NAME
        # retries=0: a training that failed is reported by the trainer (status failed).
        task = huey.task(retries=0)(_stub)
        _cache[key] = (huey, task)
    return _cache[key]


def training_huey() -> Huey:
    """The Huey instance of the training queue."""
    return _training()[0]


def enqueue_training(model_id: int) -> str:
    """Put `trainer.train_candidate(model_id)` on the training queue; the Huey task id."""
    huey, task = _training()
    job = task.s(model_id)
    huey.enqueue(job)
    return str(job.id)


def task_string() -> str:
    """The registry string the message carries (`trainer.train_candidate`)."""
    huey, task = _training()
    return str(huey._registry.task_to_string(task.task_class))
