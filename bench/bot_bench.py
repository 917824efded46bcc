"""Bot benchmark: message latency over the REST channel with concurrent conversations.

    bot/.venv/bin/python bench/bot_bench.py [--conversations 10] [--messages 8] [--think 5]
                                            [--train]

Starts api (temp SQLite, demo ledger), action server and Rasa (the newest model in bot/models/)
on free loopback ports and measures three scenarios: one conversation alone (the service time
of a message), N conversations sending back to back (no pause: a stress figure), and N
conversations pausing `--think` seconds between messages as residents typing on a phone do.
Prints p50/p95 latency per scenario, the training time of the model (from the `<hash>.json`
that scripts/train.sh writes, or measured afresh in a scratch directory with --train), the
model size and the servers' memory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from e2e_stack import BOT_DIR, Stack, latest_model, running_stack  # noqa: E402

# What residents send, in order; each conversation walks it from its own starting point.
SCRIPT = [
    "你好",
    "我家房本为什么一直办不下来",
    "观象山庄3号楼2单元501",
    "那我现在该做什么",
    "办房本要带什么材料",
    "开发商欠的税要我们交吗",
    "去哪里办",
    "谢谢",
    "阳光花园2号楼1单元302的房产证啥时候能办",
    "滨河湾一期5-1-101",
]


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def converse(
    stack: Stack,
    index: int,
    messages: int,
    out: list[float],
    errors: list[str],
    think: float = 0.0,
) -> None:
    """One conversation of `messages` messages; latencies (seconds) appended to `out`."""
    sender = f"bench-{index}-{uuid.uuid4().hex[:6]}"
    pause = random.Random(index)
    with httpx.Client(timeout=60) as client:
        for step in range(messages):
            if think:
                # Residents do not all press "send" at the same instant: the first message comes
                # after a random part of one pause, the next ones after a typing pause each.
                time.sleep(
                    think * (pause.uniform(0.0, 1.0) if step == 0 else pause.uniform(0.5, 1.5))
                )
            text = SCRIPT[(index + step) % len(SCRIPT)]
            started = time.perf_counter()
            try:
                replies = stack.say(sender, text, client=client)
            except httpx.HTTPError as exc:
                errors.append(f"{type(exc).__name__}")
                continue
            out.append(time.perf_counter() - started)
            if not replies:
                errors.append("empty reply")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (MB), from /proc."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def train_figures(model: Path, retrain: bool) -> dict[str, object]:
    """Training time and model size: from train.sh's record, or by training a scratch copy."""
    figures: dict[str, object] = {"model": model.name, "model_mb": model.stat().st_size / 2**20}
    record = model.with_name(model.name.replace(".tar.gz", ".json"))
    if record.exists():
        data = json.loads(record.read_text())
        figures["train_seconds"] = data.get("train_seconds")
        figures["train_source"] = str(record.relative_to(ROOT))
    if retrain:
        nlu = sorted(
            str(p.relative_to(ROOT))
            for p in (ROOT / "nlu_data").rglob("*.yml")
            if "test" not in p.relative_to(ROOT / "nlu_data").parts[:1]
        )
        with tempfile.TemporaryDirectory(prefix="fangben-train-") as out:
            started = time.monotonic()
            subprocess.run(
                [
                    str(BOT_DIR / ".venv" / "bin" / "rasa"),
                    "train",
                    "--config",
                    "bot/config.yml",
                    "--domain",
                    "bot/domain",
                    "--data",
                    *nlu,
                    "bot/data",
                    "--out",
                    out,
                    "--fixed-model-name",
                    "bench",
                    "--quiet",
                ],
                cwd=ROOT,
                env={
                    **os.environ,
                    "RASA_TELEMETRY_ENABLED": "false",
                    "RASA_CACHE_DIRECTORY": str(Path(out) / "cache"),
                },
                check=True,
                stdout=subprocess.DEVNULL,
            )
            figures["train_seconds"] = round(time.monotonic() - started, 1)
            figures["train_source"] = "measured now (scratch copy, no cache)"
            figures["scratch_model_mb"] = (Path(out) / "bench.tar.gz").stat().st_size / 2**20
    return figures


def run_scenario(
    stack: Stack, conversations: int, messages: int, think: float
) -> tuple[list[float], list[str], float]:
    """Run the conversations at the same time; latencies (ms), errors and wall time (s)."""
    latencies: list[float] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=converse, args=(stack, i, messages, latencies, errors, think))
        for i in range(conversations)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [v * 1000 for v in latencies], errors, time.perf_counter() - started


def report(title: str, ms: list[float], errors: list[str], wall: float) -> None:
    """Print one scenario's figures."""
    print(f"  {title}")
    print(
        f"    {len(ms)} messages ({len(errors)} errors) in {wall:.1f} s; "
        f"p50 {percentile(ms, 50):.0f} ms, p95 {percentile(ms, 95):.0f} ms, "
        f"max {max(ms) if ms else float('nan'):.0f} ms, "
        f"mean {statistics.mean(ms) if ms else float('nan'):.0f} ms"
    )


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10)
    parser.add_argument("--messages", type=int, default=8, help="messages per conversation")
    parser.add_argument("--think", type=float, default=5.0, help="mean pause between messages")
    parser.add_argument("--train", action="store_true", help="measure training afresh")
    args = parser.parse_args()

    model = latest_model()
    failed = False
    with running_stack(tracker="memory", model=model) as stack:
        converse(stack, 0, 3, [], [])  # first messages load lazily; not counted
        print(f"bot bench over the REST channel (target: p95 < 300 ms), model {model.name}")
        alone = run_scenario(stack, 1, args.messages * 2, 0.0)
        report("1 conversation alone (service time per message)", *alone)
        burst = run_scenario(stack, args.conversations, args.messages, 0.0)
        report(
            f"{args.conversations} concurrent conversations × {args.messages} messages, "
            "back to back (stress)",
            *burst,
        )
        paced = run_scenario(stack, args.conversations, args.messages, args.think)
        report(
            f"{args.conversations} concurrent conversations × {args.messages} messages, "
            f"~{args.think:g} s typing pause between messages",
            *paced,
        )
        failed = any(result[1] for result in (alone, burst, paced))
        rasa_rss = rss_mb(stack.procs["rasa"].pid)
        actions_rss = rss_mb(stack.procs["actions"].pid)
        startup = stack.timings.get("start_servers", float("nan"))

    print(f"  servers ready in {startup:.1f} s (api, actions, Rasa model load)")
    print(f"  memory: Rasa {rasa_rss:.0f} MB, action server {actions_rss:.0f} MB (RSS)")
    figures = train_figures(model, args.train)
    print(f"  model size {figures['model_mb']:.1f} MB")
    if figures.get("train_seconds") is not None:
        print(f"  training time {figures['train_seconds']} s ({figures['train_source']})")
    else:
        print("  training time unknown (no train record; rerun with --train)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
