"""Lookup benchmark: `POST /api/v1/lookup` latency and throughput over HTTP.

    api/.venv/bin/python bench/lookup_bench.py [--requests 5000] [--concurrency 16] [--workers 1]

Loads the demo ledger into a fresh SQLite file, starts uvicorn on a free 127.0.0.1 port (rate
limits raised through the environment, since the bench is one caller), then sends a fixed
number of lookups with bounded concurrency: addresses in the forms residents type (digits,
Chinese numerals, 3-2-501, 栋/室, aliases, extra words, typos, project only, unknown) and some
ID-plus-name lookups, as the action server does (service token, varying X-Sender-Id). Prints
p50/p95/p99 latency and requests/s, then stops the server. The client is a few lines of raw
HTTP/1.1 keep-alive on asyncio so that it takes as little of the shared CPU as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API_DIR = ROOT / "api"
DEMO_DIR = API_DIR / "app" / "ledger" / "demo_data"
TOKEN = "bench-service-token-0123456789"
CN = "零一二三四五六七八九"


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, SIGKILL after 15 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cn_number(n: str) -> str:
    """'3' → '三', '12' → '十二' (building/unit style)."""
    value = int(n)
    if value < 10:
        return CN[value]
    tens, ones = divmod(value, 10)
    return ("" if tens == 1 else CN[tens]) + "十" + ("" if ones == 0 else CN[ones])


def cn_digits(n: str) -> str:
    """'501' → '五零一' (room style)."""
    return "".join(CN[int(c)] if c.isdigit() else c for c in n)


def typo(name: str, rng: random.Random) -> str:
    """The name with one character dropped (a common slip)."""
    if len(name) < 4:
        return name
    i = rng.randrange(1, len(name) - 1)
    return name[:i] + name[i + 1 :]


FORM_NAMES = [
    "digits",
    "chinese numerals",
    "3-2-501",
    "extra words, 栋/室",
    "district prefix",
    "alias",
    "typo",
    "project only",
    "building only",
    "unknown",
]


def build_bodies(count: int, seed: int = 7) -> list[tuple[str, bytes]]:
    """A deterministic mix of (form name, lookup body) from the demo ledger."""
    rng = random.Random(seed)
    with (DEMO_DIR / "projects.csv").open(encoding="utf-8-sig") as fh:
        projects = {r["项目编号"]: r for r in csv.DictReader(fh)}
    with (DEMO_DIR / "units.csv").open(encoding="utf-8-sig") as fh:
        units = [r for r in csv.DictReader(fh) if r["幢号"].isdigit() and r["房号"].isdigit()]
    bodies: list[tuple[str, bytes]] = []
    for _ in range(count):
        u = rng.choice(units)
        p = projects[u["项目编号"]]
        name = p["项目名称"]
        aliases = [a for a in p["别名"].split("、") if a]
        b, un, r = u["幢号"], u["单元"], u["房号"]
        unit_part = f"{un}单元" if un else ""
        forms = [
            f"{name}{b}号楼{unit_part}{r}",
            f"{name}{cn_number(b)}号楼{cn_number(un) + '单元' if un else ''}{cn_digits(r)}",
            f"{name}{b}-{un}-{r}" if un else f"{name}{b}-{r}",
            f"我家在{name}{b}栋{unit_part}{r}室",
            f"{p['区县']}{name}{b}号楼{unit_part}{r}",
            f"{(aliases or [name])[0]}{b}号楼{unit_part}{r}",
            f"{typo(name, rng)}{b}号楼{unit_part}{r}",
            name,
            f"{name}{b}号楼",
            "幸福里小区8号楼3单元1201",
        ]
        if rng.random() < 0.1 and u["身份证号"] and u["业主姓名"]:
            form = "ID + name"
            body = {"id_number": u["身份证号"], "person_name": u["业主姓名"]}
        else:
            i = rng.randrange(len(forms))
            form, body = FORM_NAMES[i], {"address": forms[i]}
        bodies.append((form, json.dumps(body, ensure_ascii=False).encode()))
    return bodies


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int, body: bytes, sender: str
) -> int:
    head = (
        f"POST /api/v1/lookup HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Service {TOKEN}\r\nX-Sender-Id: {sender}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    writer.write(head + body)
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        key, _, value = line.decode("latin-1").partition(":")
        if key.lower() == "content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def run_load(
    port: int, bodies: list[tuple[str, bytes]], concurrency: int
) -> tuple[dict[str, list[float]], Counter[int], float]:
    """Send every body once over `concurrency` keep-alive connections; latencies in seconds
    by address form."""
    latencies: dict[str, list[float]] = {}
    statuses: Counter[int] = Counter()
    queue = iter(enumerate(bodies))

    async def worker(wid: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i, (form, body) in queue:
                start = time.perf_counter()
                status = await _request(reader, writer, port, body, f"bench-{wid}-{i % 97}")
                latencies.setdefault(form, []).append(time.perf_counter() - start)
                statuses[status] += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return latencies, statuses, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until /healthz answers (or the server died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("uvicorn exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("uvicorn did not become ready")


def children_rss_mb() -> float:
    """Peak RSS of the largest waited-for child (the server), in MB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    """Start the server, run the load, print the figures, stop the server."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="lookup-bench-") as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.db'}",
            "SERVICE_TOKEN": TOKEN,
            "LOOKUP_RATE_PER_SENDER": "100000000",
            "LOOKUP_RATE_PER_IP": "100000000",
            "LOG_LEVEL": "WARNING",
            "REDIS_URL": "",
        }
        env.pop("REDIS_URL")
        subprocess.run(
            [sys.executable, "-m", "app.ledger.cli", "load-demo"],
            cwd=API_DIR,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(args.workers), "--log-level", "warning",
                "--no-access-log",
            ],
            cwd=API_DIR,
            env=env,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_ready(port, server)
            bodies = build_bodies(args.warmup + args.requests)
            asyncio.run(run_load(port, bodies[: args.warmup], args.concurrency))
            by_form, statuses, elapsed = asyncio.run(
                run_load(port, bodies[args.warmup :], args.concurrency)
            )
        finally:
            stop_server(server)
    ms = [x * 1000 for values in by_form.values() for x in values]
    print(
        f"== lookup: {len(ms):,} requests, concurrency {args.concurrency}, "
        f"{args.workers} uvicorn worker(s), SQLite demo ledger =="
    )
    print(
        f"p50 {percentile(ms, 50):.1f} ms  p95 {percentile(ms, 95):.1f} ms  "
        f"p99 {percentile(ms, 99):.1f} ms  max {max(ms):.1f} ms"
    )
    print(f"throughput {len(ms) / elapsed:,.0f} req/s over {elapsed:.1f} s")
    print("status codes " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
    if args.workers == 1:
        print(f"server peak RSS {children_rss_mb():.0f} MB")
    print(f"machine load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for form, values in sorted(by_form.items()):
        f_ms = [x * 1000 for x in values]
        print(
            f"  {form:20s} n={len(f_ms):5d}  p50 {percentile(f_ms, 50):6.1f} ms  "
            f"p95 {percentile(f_ms, 95):6.1f} ms"
        )


if __name__ == "__main__":
    main()
