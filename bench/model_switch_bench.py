"""Model switch benchmark: time from a promotion (or rollback) to every Rasa serving the model.

    bot/.venv/bin/python bench/model_switch_bench.py [--switches 6] [--pull 10] [--replicas 2]
                                                     [--second PATH]

Starts api (temp SQLite), action server and Rasa pulling the live model from the api's model
server every `--pull` seconds (10 s is `make run`'s bot/endpoints.yml, compose uses 20 s), with
Rasa's HTTP API on to read `/status`. With `--replicas 2` a second Rasa process shares the first
one's SQL tracker store (a SQLite file), as compose's replicas share PostgreSQL. The model
`make train` built is registered live; the second model is `--second`, another model of
bot/models/ with a different fingerprint, or one trained here with one extra example (~40 s).
Then it alternates promotion and rollback through the staff API and prints, per switch and as
p50/max, the seconds until each replica's `/status` names the new model, and what a resident
waited for a reply during the switch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from e2e_stack import (  # noqa: E402
    BOT_DIR,
    Stack,
    StackError,
    _start,
    _wait,
    free_port,
    latest_model,
    running_stack,
)

EXTRA_EXAMPLE = 'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - 房本助手你好呀\n'


def model_id(path: Path) -> str:
    """Rasa's model id (metadata.json), the registry's fingerprint."""
    with tarfile.open(path) as archive:
        handle = archive.extractfile("metadata.json")
        assert handle is not None
        return str(json.load(handle)["model_id"])


def second_model(first: Path, given: Path | None, scratch: Path) -> Path:
    """The model to switch to: given, another one of bot/models/, or trained now."""
    if given:
        return given
    for other in sorted((BOT_DIR / "models").glob("*.tar.gz"), key=os.path.getmtime):
        if other != first and model_id(other) != model_id(first):
            return other
    extra = scratch / "extra.yml"
    extra.write_text(EXTRA_EXAMPLE, encoding="utf-8")
    nlu_dir = ROOT / "nlu_data"
    nlu = sorted(
        str(p) for p in nlu_dir.rglob("*.yml") if p.relative_to(nlu_dir).parts[0] != "test"
    )
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(BOT_DIR)}
    argv = [str(BOT_DIR / ".venv" / "bin" / "rasa"), "train", "--config", "bot/config.yml"]
    argv += ["--domain", "bot/domain", "--data", *nlu, str(extra), "bot/data"]
    argv += ["--out", str(scratch), "--fixed-model-name", "second"]
    print("training a second model (project config, one extra example)…", flush=True)
    subprocess.run(argv, cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    return scratch / "second.tar.gz"


def add_candidate(stack: Stack, staff: dict[str, str], path: Path) -> tuple[int, str]:
    """The trainer's part over HTTP: a training row, the artifact, the result."""
    token = stack.api_env.get("SERVICE_TOKEN", "dev-only-service-token-change-me")
    service = {"Authorization": f"Service {token}"}
    r = httpx.post(f"{stack.api_url}/api/v1/staff/models/train", headers=staff, timeout=30)
    r.raise_for_status()
    mid = int(r.json()["id"])
    r = httpx.put(
        f"{stack.api_url}/api/v1/models/{mid}/artifact",
        content=path.read_bytes(),
        headers=service,
        timeout=60,
    )
    r.raise_for_status()
    fingerprint = str(r.json()["fingerprint"])
    live = next(
        m
        for m in httpx.get(
            f"{stack.api_url}/api/v1/staff/models", headers=staff, timeout=30
        ).json()["models"]
        if m["status"] == "live"
    )
    body = {
        "status": "candidate",
        "metrics": live.get("metrics") or {"intent_macro_f1": 1.0, "per_intent": {}},
        "fingerprint": fingerprint,
    }
    r = httpx.post(
        f"{stack.api_url}/api/v1/models/{mid}/result", json=body, headers=service, timeout=30
    )
    r.raise_for_status()
    return mid, fingerprint


def served(url: str, token: str) -> str | None:
    """The model id one Rasa serves now."""
    try:
        r = httpx.get(f"{url}/status", params={"token": token}, timeout=5)
        return str(r.json().get("model_id")) if r.status_code == 200 else None
    except httpx.HTTPError:
        return None


def wait_all(urls: list[str], token: str, fingerprint: str, start: float) -> list[float]:
    """Seconds from `start` until each Rasa serves `fingerprint`."""
    pending, done = dict.fromkeys(urls, 0.0), {}
    deadline = start + 120
    while pending and time.monotonic() < deadline:
        for url in list(pending):
            if served(url, token) == fingerprint:
                done[url] = time.monotonic() - start
                pending.pop(url)
        time.sleep(0.05)
    if pending:
        raise StackError(f"not switched after 120 s: {list(pending)}")
    return [done[u] for u in urls]


class Chatter(threading.Thread):
    """A resident sending a message every second to the first Rasa during the switches."""

    def __init__(self, webhook: str) -> None:
        super().__init__(daemon=True)
        self.webhook, self.latencies, self.errors = webhook, [], 0
        self.stop = threading.Event()

    def run(self) -> None:
        sender = f"bench-switch-{uuid.uuid4().hex[:8]}"
        with httpx.Client(timeout=60) as client:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    r = client.post(self.webhook, json={"sender": sender, "message": "你好"})
                    r.raise_for_status()
                    self.latencies.append(time.monotonic() - started)
                except httpx.HTTPError:
                    self.errors += 1
                self.stop.wait(1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=6)
    parser.add_argument("--pull", type=int, default=10, help="wait_time_between_pulls (s)")
    parser.add_argument("--replicas", type=int, choices=(1, 2), default=2)
    parser.add_argument("--second", type=Path, default=None)
    args = parser.parse_args()
    first = latest_model()
    token = uuid.uuid4().hex
    with tempfile.TemporaryDirectory(prefix="switch-bench-") as scratch:
        second = second_model(first, args.second, Path(scratch))
        tracker = "sql" if args.replicas == 2 else "memory"
        with running_stack(
            tracker=tracker,
            model=first,
            model_server=True,
            pull_seconds=args.pull,
            rasa_token=token,
        ) as stack:
            urls = [stack.rasa_url]
            if args.replicas == 2:
                argv, cwd, env = stack.launches["rasa"]
                port = free_port()
                argv = [str(port) if a == str(stack.rasa_port) else a for a in argv]
                _start(stack, "rasa2", argv, cwd, env)
                _wait(f"http://127.0.0.1:{port}/webhooks/rest/", "rasa2", stack, 420)
                urls.append(f"http://127.0.0.1:{port}")
            staff = {"Authorization": f"Bearer {stack.staff_token('bench_maint', 'maintainer')}"}
            live_id = next(
                m["id"]
                for m in httpx.get(
                    f"{stack.api_url}/api/v1/staff/models", headers=staff, timeout=30
                ).json()["models"]
                if m["status"] == "live"
            )
            first_fp = model_id(first)
            cand_id, cand_fp = add_candidate(stack, staff, second)
            wait_all(urls, token, first_fp, time.monotonic())
            chatter = Chatter(stack.webhook)
            chatter.start()
            all_times: list[float] = []
            print(
                f"{len(urls)} Rasa replica(s), pull every {args.pull} s, model "
                f"{first.stat().st_size / 1e6:.1f} MB; seconds from promotion to served:"
            )
            for i in range(args.switches):
                target, fp = (cand_id, cand_fp) if i % 2 == 0 else (live_id, first_fp)
                started = time.monotonic()
                r = httpx.post(
                    f"{stack.api_url}/api/v1/staff/models/{target}/promote",
                    headers=staff,
                    timeout=30,
                )
                r.raise_for_status()
                times = wait_all(urls, token, fp, started)
                all_times.append(max(times))
                what = "promote " if i % 2 == 0 else "rollback"
                print(f"  {what} #{target}: " + "  ".join(f"{t:5.2f}" for t in times))
            chatter.stop.set()
            chatter.join(10)
            print(
                f"all replicas serving the new model: p50 {statistics.median(all_times):.2f} s, "
                f"max {max(all_times):.2f} s (bound: pull {args.pull} s + load)"
            )
            lat = sorted(chatter.latencies)
            if lat:
                p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
                print(
                    f"a resident chatting meanwhile: {len(lat)} replies, p50 "
                    f"{statistics.median(lat) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
                    f"max {lat[-1] * 1000:.0f} ms, {chatter.errors} errors"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
