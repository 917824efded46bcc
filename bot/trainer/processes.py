"""Child processes of the trainer (rasa train/test, the sandbox servers), each in its own
process group so that a time-box or the consumer's shutdown stops the whole tree."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from trainer.errors import TrainerError

_LOCK = threading.Lock()
_RUNNING: set[subprocess.Popen[bytes]] = set()


def start(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """Start `argv` with its output appended to `log`; registered until `stop`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as handle:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    with _LOCK:
        _RUNNING.add(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """TERM the process group, KILL it after `grace` seconds."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
    with _LOCK:
        _RUNNING.discard(proc)


def stop_all() -> None:
    """Stop every child still running (the consumer is shutting down)."""
    with _LOCK:
        running = list(_RUNNING)
    for proc in running:
        stop(proc, grace=5.0)


def run(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
    timeout: float,
    what: str,
) -> float:
    """Run `argv` to its end within `timeout` seconds; the seconds it took. TrainerError
    (exit status or time-out only: the output may quote examples) otherwise."""
    started = time.monotonic()
    proc = start(argv, cwd, env, log)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc, grace=5.0)
        raise TrainerError(f"{what}超时（超过 {timeout:.0f} 秒）") from None
    finally:
        if proc.poll() is not None:
            with _LOCK:
                _RUNNING.discard(proc)
    if code != 0:
        raise TrainerError(f"{what}失败（退出码 {code}）")
    return time.monotonic() - started
