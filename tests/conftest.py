"""Settings every test run shares, set before any test imports the api: the jobs a test queues
go to a queue of this run's own, never to the developer's api/data/jobs.db."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_JOBS_DIR = Path(tempfile.gettempdir()) / f"fangben-test-jobs-{os.getpid()}"
_JOBS_DIR.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("JOB_QUEUE_URL", f"sqlite:///{_JOBS_DIR / 'jobs.db'}")
