"""The training queue and its one task, `trainer.train_candidate(model_id)`.

Huey names a task in its messages `<function's __module__>.<task name>`
(huey.registry.Registry.task_to_string). The api's stub (app.modelhub.queue) is the function
`train_candidate` with `__module__ = "trainer"`, so its messages say `trainer.train_candidate`;
the task here is registered under exactly that string. A stub declared the other obvious way,
`@huey.task(name="trainer.train_candidate")` in any module (`<module>.trainer.train_candidate`),
is run by the same task.

The job retries itself and reports its final failure (trainer.job), so Huey's own retries,
whatever the enqueuing side declared, never start.
"""

from __future__ import annotations

from typing import Any

from huey import Huey
from huey.registry import Registry

from trainer import TASK_NAME, config, job
from trainer.queue import make_huey

TASK_MODULE, TASK_FUNCTION = TASK_NAME.rsplit(".", 1)


class TaskNameRegistry(Registry):  # type: ignore[misc]
    """Huey's registry, also finding `trainer.train_candidate` under a module prefix."""

    def string_to_task(self, task_str: str) -> Any:
        """The task class of a message's name."""
        if task_str not in self._registry and task_str.endswith("." + TASK_NAME):
            task_str = TASK_NAME
        return super().string_to_task(task_str)


def _train_candidate(model_id: int) -> None:
    """Train, evaluate and report the candidate `model_id` (the api's nlu_model id)."""
    job.train_candidate(model_id, settings)


def register(huey: Huey) -> Any:
    """Declare the training task on `huey` as `trainer.train_candidate`; the task."""
    huey._registry = TaskNameRegistry()
    _train_candidate.__module__ = TASK_MODULE
    return huey.task(name=TASK_FUNCTION)(_train_candidate)


settings = config.load()
huey = make_huey(settings.job_queue_url, settings.queue_name)
train_candidate = register(huey)
