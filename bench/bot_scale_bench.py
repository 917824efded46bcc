"""Bot scaling benchmark: CPU per message, and 50 conversations at residents' pace, on 1 and 2 Rasa
replicas sharing the production stores.

    bot/.venv/bin/python bench/bot_scale_bench.py [--replicas 1,2] [--conversations 50]
        [--messages 8] [--think 5] [--burst-messages 80] [--route round-robin|hash]
        [--py-spy PATH] [--profile-out FILE]

For each replica count it starts the api (temp SQLite, demo ledger), the action server and N Rasa
processes on the newest model of bot/models/ (registered live on the api's model server, which
every replica pulls from, as in production), all started from bot/endpoints.prod.yml itself: the
redacting SQL tracker store on PostgreSQL (a database `i15bot_<tag>_r<N>` made for the run and
dropped after it) and the Redis ticket lock store (db 13 instead of production's db 1; flushed
before and after). Then three figures per replica count:

(a) back to back: 4 senders per replica send without pause, walking the resident conversations
    below (a new sender after each conversation, so the trackers stay conversation-sized). CPU of
    each Rasa process from /proc/<pid>/stat (utime + stime of its process group) divided by the
    messages it served; messages/s of the whole stack; the action server's and the api's CPU per
    message beside them. Anchor: "today" one Rasa process spent ~80 ms CPU per message (~12
    messages/s per core, issue 15).
(b) `--conversations` residents, each sending a message every `--think` seconds (starts spread
    evenly over the first pause), p50/p95/max latency and errors. Goal: p95 < 300 ms on several
    replicas.
(c) RSS of each Rasa replica after the run (/proc/<pid>/status, its process group).

Routing: the client picks the replica itself, so no proxy process competes for the two cores with
the replicas it measures. `round-robin` (the default) sends each message to the next replica,
whatever its sender, which is what production does (docker-compose's service DNS and the
Kubernetes Service spread requests over the replicas): every turn of a conversation may land on
another replica, and Rasa's lock store (one turn of a sender at a time) and the shared SQL tracker
store make that safe. `hash` keeps a sender on one replica (hash of the sender id), as an ingress
with consistent hashing would; Rasa 3.6 holds no tracker cache between turns (each turn reads the
tracker from the store), so it buys nothing but avoids the rare lock wait when two turns of one
sender overlap.

With `--py-spy PATH` (py-spy is not a project dependency: install it in a scratch venv) the first
Rasa process is sampled during (a) of the first replica count and the collapsed stacks are written
to `--profile-out` (default bot_scale_profile.txt in the temp dir, printed at the end).

Figures are printed beside their anchors and recorded with bench/results.py as section "bot".
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg2
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bot_bench import percentile  # noqa: E402
from e2e_stack import Stack, latest_model, running_stack  # noqa: E402
from results import record  # noqa: E402

PG_HOST = "127.0.0.1"
REDIS_HOST = "127.0.0.1"
REDIS_DB = 13  # this bench's own db; production's endpoints use db 1
# docker-compose's TICKET_LOCK_LIFETIME (a turn cut off by a dead replica holds its lock this long).
LOCK_LIFETIME = 20
ANCHOR_CPU_MS = 80.0  # issue 15: one Rasa process, ~80 ms of CPU per message
GOAL_P95_MS = 300.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Residents' conversations (the messages of bench/bot_bench.py and tests/conversations/cases):
# conversation i walks CONVERSATIONS[i % len(CONVERSATIONS)].
CONVERSATIONS: list[list[str]] = [
    [
        "你好",
        "我家房本为什么一直办不下来",
        "观象山庄3号楼2单元501",
        "详细原因",
        "那我现在该做什么",
        "办房本要带什么材料",
        "去哪里办",
        "谢谢",
    ],
    [
        "阳光花园3号楼1单元201",
        "土地出让金要俺们老百姓交吗",
        "多久能办好",
        "找谁问",
        "开发商欠的税要我们交吗",
        "被法院查封了还能办证吗",
        "好嘞谢谢",
        "再见",
    ],
    [
        "觀象山莊3號樓2單元501的房本為什麼還辦不下來",
        "要帶什麼材料",
        "去哪裡辦",
        "多久",
        "孩子上学会不会受影响",
        "我要找工作人员",
        "算了",
        "謝謝",
    ],
    [
        "阳光花园2号楼1单元302的房产证啥时候能办",
        "为啥",
        "那我现在能申请吗",
        "滨河湾一期5-1-101",
        "多久能好",
        "这事找谁",
        "电话多少",
        "谢了",
    ],
    [
        "你好",
        "房本啥时候能办下来",
        "滨河湾2号楼1单元301",
        "二期那个",
        "为啥这么久",
        "那我还能干点啥",
        "开发商不配合怎么办",
        "再见",
    ],
]


# -- processes ----------------------------------------------------------------------------------


def group_pids(pgid: int) -> list[int]:
    """The live processes of a process group (every server of the stack leads its own)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def cpu_seconds(pgid: int) -> float:
    """User + system CPU time of a process group's live processes (s)."""
    total = 0
    for pid in group_pids(pgid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLK_TCK


def rss_mb(pgid: int) -> float:
    """Resident memory of a process group (MB)."""
    total = 0
    for pid in group_pids(pgid):
        try:
            match = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
        except OSError:
            continue
        total += int(match.group(1)) if match else 0
    return total / 1024


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg shows them."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


# -- stores -------------------------------------------------------------------------------------


def _admin() -> Any:
    conn = psycopg2.connect(host=PG_HOST, port=5432, user="postgres", dbname="test")
    conn.autocommit = True
    return conn


@contextmanager
def tracker_database(replicas: int) -> Iterator[str]:
    """A fresh PostgreSQL database for the shared tracker store, dropped afterwards."""
    name = f"i15bot_{uuid.uuid4().hex[:8]}_r{replicas}"
    admin = _admin()
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def prod_endpoints(workdir: Path) -> Path:
    """bot/endpoints.prod.yml with only the lock store's Redis db number changed (to 13)."""
    text = (ROOT / "bot" / "endpoints.prod.yml").read_text(encoding="utf-8")
    lock = text.index("\nlock_store:")
    end = text.find("\n\n", lock)
    end = len(text) if end < 0 else end
    section = re.sub(r"\n  db: 1(?=\n|$)", f"\n  db: {REDIS_DB}", text[lock:end])
    assert f"\n  db: {REDIS_DB}" in section, section
    path = workdir / "endpoints.bench.yml"
    path.write_text(text[:lock] + section + text[end:], encoding="utf-8")
    return path


# -- load ---------------------------------------------------------------------------------------


@dataclass
class Router:
    """Which replica gets a message: the next one, or the sender's by hash."""

    stack: Stack
    route: str
    _next: Iterator[int] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._next = itertools.cycle(range(len(self.stack.rasa_ports)))

    def pick(self, sender: str) -> int:
        if self.route == "hash":
            return zlib.crc32(sender.encode()) % len(self.stack.rasa_ports)
        with self._lock:
            return next(self._next)


@dataclass
class Tally:
    """Latencies (ms), errors and messages per replica of one scenario."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    per_replica: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, replica: int, ms: float | None, error: str | None) -> None:
        with self.lock:
            self.per_replica[replica] = self.per_replica.get(replica, 0) + 1
            if ms is not None:
                self.latencies.append(ms)
            if error:
                self.errors.append(error)


def send(
    client: httpx.Client, stack: Stack, router: Router, sender: str, text: str, tally: Tally
) -> None:
    """One message to the replica the router picks; its latency or error in `tally`."""
    replica = router.pick(sender)
    started = time.perf_counter()
    try:
        replies = stack.say(sender, text, client=client, replica=replica)
    except httpx.HTTPError as exc:
        tally.add(replica, None, type(exc).__name__)
        return
    tally.add(replica, (time.perf_counter() - started) * 1000, None if replies else "empty reply")


def back_to_back(stack: Stack, router: Router, senders: int, messages: int) -> tuple[Tally, float]:
    """`senders` threads sending `messages` in all without pause; the tally and the wall time."""
    tally = Tally()
    counter = itertools.count()

    def worker(index: int) -> None:
        with httpx.Client(timeout=60) as client:
            sender, script, step, walked = "", CONVERSATIONS[0], 0, 0
            while next(counter) < messages:
                if step == 0:  # a new resident, walking the next conversation
                    script = CONVERSATIONS[(index + walked) % len(CONVERSATIONS)]
                    sender = f"bench-b2b-{index}-{uuid.uuid4().hex[:8]}"
                    walked += 1
                send(client, stack, router, sender, script[step], tally)
                step = (step + 1) % len(script)

    return tally, run_threads(worker, senders)


def run_threads(target: Any, count: int) -> float:
    """Run target(0) … target(count - 1) in threads side by side; the seconds until all end."""
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def paced(
    stack: Stack, router: Router, conversations: int, messages: int, think: float
) -> tuple[Tally, float]:
    """Each conversation sends a message every `think` s (starts spread evenly over one pause)."""
    tally = Tally()
    start = time.monotonic() + 0.5

    def resident(index: int) -> None:
        sender = f"bench-paced-{index}-{uuid.uuid4().hex[:8]}"
        script = CONVERSATIONS[index % len(CONVERSATIONS)]
        first = start + think * index / conversations
        with httpx.Client(timeout=60) as client:
            for step in range(messages):
                delay = first + step * think - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                send(client, stack, router, sender, script[step % len(script)], tally)

    return tally, run_threads(resident, conversations)


def latency_figures(tally: Tally) -> dict[str, Any]:
    ms = tally.latencies
    return {
        "messages": len(ms) + sum(1 for e in tally.errors if e != "empty reply"),
        "errors": len(tally.errors),
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "max_ms": round(max(ms), 1) if ms else float("nan"),
    }


# -- one replica count --------------------------------------------------------------------------


def run_replicas(replicas: int, args: argparse.Namespace, model: Path) -> dict[str, Any]:
    """Start the stack with `replicas` Rasa processes, measure (a), (b), (c); the figures."""
    red = redis.Redis(host=REDIS_HOST, port=6379, db=REDIS_DB)
    red.flushdb()
    scratch = Path(tempfile.mkdtemp(prefix="i15bot-scale-"))
    figures: dict[str, Any] = {}
    with tracker_database(replicas) as database:
        store_env = {  # what docker-compose gives the rasa service
            "TRACKER_DB_HOST": PG_HOST,
            "TRACKER_DB_NAME": database,
            "TRACKER_DB_USER": "postgres",
            "TRACKER_DB_PASSWORD": "unused-trust-auth",
            "LOCK_STORE_HOST": REDIS_HOST,
            "TICKET_LOCK_LIFETIME": str(LOCK_LIFETIME),
        }
        started = time.monotonic()
        with running_stack(
            model=model,
            endpoints=prod_endpoints(scratch),
            model_server=True,
            pull_seconds=20,
            replicas=replicas,
            replica_env=lambda index, stack: store_env,
        ) as stack:
            up = time.monotonic() - started
            names = ["rasa"] + [f"rasa-{i + 2}" for i in range(replicas - 1)]
            pgids = {name: stack.procs[name].pid for name in names}
            router = Router(stack, args.route)
            # The first turns load lazily (tokenizer dictionary, lock store, tables): not counted.
            warm = Tally()
            with httpx.Client(timeout=120) as client:
                for replica in range(replicas):
                    sender = f"bench-warm-{replica}-{uuid.uuid4().hex[:6]}"
                    for text in CONVERSATIONS[replica % len(CONVERSATIONS)][:4]:
                        replies = stack.say(sender, text, client=client, replica=replica)
                        warm.add(replica, None, None if replies else "empty reply")
            if warm.errors:
                raise RuntimeError(f"warm-up failed: {warm.errors}")
            print(
                f"\n{replicas} Rasa replica(s) up in {up:.0f} s "
                f"(route {args.route}; load average {loadavg()})",
                flush=True,
            )

            # (a) back to back
            others = {"actions": stack.procs["actions"].pid, "api": stack.procs["api"].pid}
            before = {name: cpu_seconds(pgid) for name, pgid in {**pgids, **others}.items()}
            profiler = None
            if args.py_spy and replicas == args.replica_counts[0]:
                profiler = subprocess.Popen(
                    [
                        args.py_spy,
                        "record",
                        "--pid",
                        str(pgids["rasa"]),
                        "--format",
                        "raw",
                        "--rate",
                        "200",
                        "--nonblocking",
                        "-o",
                        str(args.profile_out),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1.0)
            tally, wall = back_to_back(
                stack, router, args.senders_per_replica * replicas, args.burst_messages * replicas
            )
            if profiler:
                profiler.send_signal(2)  # SIGINT: py-spy writes what it sampled and exits
                profiler.wait(30)
            after = {name: cpu_seconds(pgid) for name, pgid in {**pgids, **others}.items()}
            load_a = loadavg()
            served = len(tally.latencies) + len(tally.errors)
            cpu_ms = {
                name: (after[name] - before[name]) * 1000 / max(1, tally.per_replica.get(i, 0))
                for i, name in enumerate(names)
            }
            rasa_ms = sum(after[n] - before[n] for n in names) * 1000 / max(1, served)
            b2b = {
                **latency_figures(tally),
                "wall_s": round(wall, 1),
                "msgs_per_s": round(served / wall, 1),
                "rasa_cpu_ms_per_msg": round(rasa_ms, 1),
                "rasa_cpu_ms_per_msg_by_replica": {k: round(v, 1) for k, v in cpu_ms.items()},
                "rasa_msgs_per_s_per_core": round(1000 / rasa_ms, 1) if rasa_ms else None,
                "actions_cpu_ms_per_msg": round(
                    (after["actions"] - before["actions"]) * 1000 / max(1, served), 1
                ),
                "api_cpu_ms_per_msg": round(
                    (after["api"] - before["api"]) * 1000 / max(1, served), 1
                ),
                "senders": args.senders_per_replica * replicas,
                "loadavg": load_a,
            }
            figures["back_to_back"] = b2b
            print(
                f"  (a) back to back, {b2b['senders']} senders, {served} messages in {wall:.1f} s: "
                f"{b2b['msgs_per_s']} msgs/s, {len(tally.errors)} errors\n"
                f"      Rasa CPU {rasa_ms:.1f} ms/msg ("
                + ", ".join(f"{k} {v:.1f}" for k, v in cpu_ms.items())
                + f") = {b2b['rasa_msgs_per_s_per_core']} msgs/s per core   "
                f"[anchor: today {ANCHOR_CPU_MS:.0f} ms CPU/msg, ~12 msgs/s/core]\n"
                f"      action server {b2b['actions_cpu_ms_per_msg']} ms/msg, "
                f"api {b2b['api_cpu_ms_per_msg']} ms/msg; latency p50 {b2b['p50_ms']:.0f} ms, "
                f"p95 {b2b['p95_ms']:.0f} ms (load average {load_a})",
                flush=True,
            )

            # (b) residents' pace
            load_before = loadavg()
            before = {name: cpu_seconds(pgid) for name, pgid in {**pgids, **others}.items()}
            tally, wall = paced(stack, router, args.conversations, args.messages, args.think)
            after = {name: cpu_seconds(pgid) for name, pgid in {**pgids, **others}.items()}
            load_b = loadavg()
            pace = {
                **latency_figures(tally),
                "conversations": args.conversations,
                "think_s": args.think,
                "wall_s": round(wall, 1),
                "rasa_cpu_ms_per_msg": round(
                    sum(after[n] - before[n] for n in names)
                    * 1000
                    / max(1, len(tally.latencies) + len(tally.errors)),
                    1,
                ),
                "per_replica_messages": {names[k]: v for k, v in sorted(tally.per_replica.items())},
                "loadavg_before": load_before,
                "loadavg": load_b,
            }
            figures["paced"] = pace
            print(
                f"  (b) {args.conversations} conversations x {args.messages} messages, one every "
                f"{args.think:g} s: {pace['messages']} messages in {wall:.1f} s, "
                f"{pace['errors']} errors\n"
                f"      p50 {pace['p50_ms']:.0f} ms, p95 {pace['p95_ms']:.0f} ms, "
                f"max {pace['max_ms']:.0f} ms   [goal: p95 < {GOAL_P95_MS:.0f} ms]   "
                f"Rasa CPU {pace['rasa_cpu_ms_per_msg']} ms/msg (load average {load_b})",
                flush=True,
            )

            # (c) memory
            figures["rss_mb"] = {name: round(rss_mb(pgid), 0) for name, pgid in pgids.items()}
            figures["actions_rss_mb"] = round(rss_mb(others["actions"]), 0)
            figures["up_s"] = round(up, 1)
            print(
                "  (c) RSS per Rasa replica: "
                + ", ".join(f"{k} {v:.0f} MB" for k, v in figures["rss_mb"].items())
                + f"   [anchor: ~1.6 GB each]; action server {figures['actions_rss_mb']:.0f} MB",
                flush=True,
            )
    red.flushdb()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", default="1,2", help="replica counts, comma-separated")
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--messages", type=int, default=8, help="messages per conversation")
    parser.add_argument("--think", type=float, default=5.0, help="seconds between messages")
    parser.add_argument(
        "--burst-messages", type=int, default=80, help="back-to-back messages per replica"
    )
    parser.add_argument("--senders-per-replica", type=int, default=4)
    parser.add_argument("--route", choices=("round-robin", "hash"), default="round-robin")
    parser.add_argument("--py-spy", default=None, help="py-spy binary: profile (a) on rasa")
    parser.add_argument("--profile-out", type=Path, default=None)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    args.replica_counts = [int(n) for n in args.replicas.split(",") if n.strip()]
    if args.py_spy and args.profile_out is None:
        args.profile_out = Path(tempfile.gettempdir()) / "bot_scale_profile.txt"
    model = latest_model()
    print(
        f"bot scale bench: model {model.name}, {os.cpu_count()} cores, load average {loadavg()}",
        flush=True,
    )
    figures: dict[str, Any] = {"model": model.name, "route": args.route}
    for count in args.replica_counts:
        figures[f"replicas_{count}"] = run_replicas(count, args, model)
    counts = args.replica_counts
    if len(counts) > 1:
        one, more = figures[f"replicas_{counts[0]}"], figures[f"replicas_{counts[-1]}"]
        figures["scaling"] = {
            "back_to_back_msgs_per_s": round(
                more["back_to_back"]["msgs_per_s"] / one["back_to_back"]["msgs_per_s"], 2
            ),
            "paced_p95": round(more["paced"]["p95_ms"] / one["paced"]["p95_ms"], 2),
        }
        print(
            f"\nscaling {counts[0]} -> {counts[-1]} replicas on {os.cpu_count()} cores: "
            f"back-to-back msgs/s x{figures['scaling']['back_to_back_msgs_per_s']}, "
            f"paced p95 x{figures['scaling']['paced_p95']}"
        )
    goals = {f"replicas_{counts[0]}.back_to_back.rasa_cpu_ms_per_msg": f"< {ANCHOR_CPU_MS:.0f}"}
    several = [c for c in counts if c > 1]
    for count in several or counts[-1:]:
        goals[f"replicas_{count}.paced.p95_ms"] = f"< {GOAL_P95_MS:.0f}"
    if not args.no_record:
        print(f"recorded in {record('bot', figures, goals=goals)}")
    if args.py_spy:
        print(f"profile (collapsed stacks) in {args.profile_out}")
    failed = any(figures[f"replicas_{c}"]["paced"]["errors"] for c in counts)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
