"""The training job (issue 12): a Huey consumer in the bot environment that trains a candidate
model from nlu_data/ plus the maintainers' annotations, evaluates it on the held-out set and on
the conversation suite, and reports back to the api (docs/maintainers.md).

    cd bot && .venv/bin/python -m trainer          # the consumer
    cd bot && .venv/bin/python -m trainer --once 7 # one job, in the foreground
"""

# The api enqueues by this name (`huey.task(name=TASK_NAME)` on both sides).
TASK_NAME = "trainer.train_candidate"
