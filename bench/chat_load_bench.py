"""Web chat under load over the whole stack: N residents send a message at the same moment.

    bot/.venv/bin/python bench/chat_load_bench.py [--residents 100] [--rounds 3]

Starts api + action server + Rasa on free loopback ports (tests/e2e/e2e_stack.py, embedded
defaults), then, for each round, N new residents open the chat page and send one status
question at once: the message goes api (/chat proxy) → Rasa → the action server → the api's
lookup and back. Prints the answers by status code (target: no 5xx; 429 "稍等" only beyond
CHAT_MAX_IN_FLIGHT), chat latency p50/p95/max, and /healthz p50/p99 sampled during the burst.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from e2e_stack import running_stack  # noqa: E402

QUESTIONS = [
    "观象山庄3号楼2单元501的房本什么时候能办",
    "我家是海岸花园的，为什么一直办不了房本",
    "房本办到哪一步了",
    "要带什么材料",
]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def _resident(base: str, text: str, start: threading.Barrier) -> tuple[int, float]:
    with httpx.Client(base_url=base, timeout=120) as client:
        client.get("/chat")
        start.wait()
        began = time.monotonic()
        r = client.post("/chat/api/messages", json={"text": text}, headers={"X-Chat-Client": "web"})
        return r.status_code, time.monotonic() - began


def _health(base: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        while not stop.is_set():
            began = time.monotonic()
            client.get("/healthz")
            out.append(time.monotonic() - began)
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    env = {"CHAT_RATE_PER_IP": "100000", "LOOKUP_RATE_PER_IP": "100000"}
    codes: Counter[int] = Counter()
    latencies: list[float] = []
    health: list[float] = []
    with running_stack(extra_env=env) as stack:
        base = stack.api_url
        _resident(base, "你好", threading.Barrier(1))  # warm up NLU and the action server
        for _ in range(args.rounds):
            start = threading.Barrier(args.residents)
            stop = threading.Event()
            sampler = threading.Thread(target=_health, args=(base, stop, health))
            sampler.start()
            with concurrent.futures.ThreadPoolExecutor(max_workers=args.residents) as pool:
                futures = [
                    pool.submit(_resident, base, QUESTIONS[i % len(QUESTIONS)], start)
                    for i in range(args.residents)
                ]
                for future in futures:
                    code, seconds = future.result()
                    codes[code] += 1
                    if code == 200:
                        latencies.append(seconds)
            stop.set()
            sampler.join()
    total = sum(codes.values())
    server_errors = sum(n for code, n in codes.items() if code >= 500)
    print(f"messages: {total} ({args.rounds} rounds × {args.residents} at once)")
    print("answers: " + ", ".join(f"{code}×{n}" for code, n in sorted(codes.items())))
    print(f"5xx: {server_errors}")
    if latencies:
        p50, p95 = _percentile(latencies, 0.5), _percentile(latencies, 0.95)
        mean = statistics.mean(latencies)
        print(
            f"chat latency (200s): p50 {p50:.2f} s, p95 {p95:.2f} s, "
            f"max {max(latencies):.2f} s, mean {mean:.2f} s"
        )
    if health:
        h50, h99 = _percentile(health, 0.5) * 1000, _percentile(health, 0.99) * 1000
        samples = len(health)
        print(f"/healthz during the bursts: p50 {h50:.0f} ms, p99 {h99:.0f} ms ({samples} samples)")
    return 1 if server_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
