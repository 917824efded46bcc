"""Ledger upload vs. the api's responsiveness, and the api's memory on an XLSX bomb (issue 13).

    api/.venv/bin/python bench/upload_health_bench.py [--units 400000] [--bomb-mb 711]
        [--backends sqlite,postgresql] [--xlsx]

For each backend: a fresh database (SQLite file, or a schema of its own in PostgreSQL), the
api for real (uvicorn, one process, as `make run` starts it) and the worker
(`python -m app.worker`) on a queue of their own. A clerk first uploads an XLSX bomb (a real
workbook whose sharedStrings.xml unpacks to --bomb-mb MB of one character: the issue's probe
was 1.5 MB → 711 MB) and the api's peak RSS is read from /proc before and after. Then a
--units-row ledger (bench/gen_ledger.py; CSV, or one workbook with --xlsx) is uploaded while
a thread GETs /healthz every 20 ms and another files a petition every 100 ms until the import
job has ended (on SQLite they wait for the import's one short write, never fail). Prints the
/healthz p50/p99/max and failures during upload + import, the upload's answer time, the import's
duration (job start to end, and upload to done), the petitions' latency and failures, and the
RSS figures.
Target: /healthz p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
API_DIR = ROOT / "api"
API_PY = str(API_DIR / ".venv" / "bin" / "python")
PG_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _bomb(path: Path, unpacked_mb: int) -> Path:
    """A real workbook whose shared strings unpack to `unpacked_mb` MB (written streaming)."""
    sys.path.insert(0, str(API_DIR))
    from openpyxl import Workbook

    seed = path.with_name("seed.xlsx")
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["项目编号", "幢号", "单元", "房号", "业主姓名", "身份证号", "转移登记"])
    wb.save(seed)
    with zipfile.ZipFile(seed) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            if item.filename != "xl/sharedStrings.xml":
                out.writestr(item, src.read(item))
        with out.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:
            fh.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
            fh.write(b"<si><t>")
            block = b"A" * (1 << 20)
            for _ in range(unpacked_mb):
                fh.write(block)
            fh.write(b"</t></si></sst>")
    return path


@contextmanager
def _database(backend: str, work: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{work / 'bench.db'}"
        return
    sys.path.insert(0, str(API_DIR))
    from sqlalchemy import create_engine, text

    schema = f"upb_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def _stack(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """uvicorn (as make run starts it) and the worker; yields (url, api process)."""
    port = _free_port()
    api = subprocess.Popen(
        [API_PY, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--no-proxy-headers"],
        cwd=API_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    worker = subprocess.Popen(
        [API_PY, "-m", "app.worker"],
        cwd=API_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or api.poll() is not None:
                raise RuntimeError("the api did not start")
            time.sleep(0.2)
        yield url, api
    finally:
        for proc in (api, worker):
            proc.terminate()
        for proc in (api, worker):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_done(client: httpx.Client, url: str, headers: dict[str, str]) -> dict[str, Any]:
    while True:
        body: dict[str, Any] = client.get(url, headers=headers, timeout=30).json()
        if body["state"] in ("done", "failed"):
            return body
        time.sleep(0.5)


def run(backend: str, ledger: list[Path], bomb: Path) -> dict[str, Any]:
    """One backend: the bomb, then the big upload under /healthz sampling."""
    with (
        tempfile.TemporaryDirectory(prefix="upload-bench-") as tmp,
        _database(backend, Path(tmp)) as db_url,
    ):
        work = Path(tmp)
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "JOB_QUEUE_URL": f"sqlite:///{work / 'jobs.db'}",
            "JOB_QUEUE_NAME": f"upload-bench-{uuid.uuid4().hex[:6]}",
            "LEDGER_UPLOAD_DIR": str(work / "uploads"),
            "ENVIRONMENT": "test",
            "LOG_LEVEL": "WARNING",
            # The petitions filed during the import come from one address.
            "PETITION_RATE_PER_IP": "1000000",
        }
        env.pop("REDIS_URL", None)
        subprocess.run(
            [API_PY, "-m", "alembic", "-x", f"url={db_url}", "upgrade", "head"],
            cwd=API_DIR, env=env, check=True, capture_output=True,
        )  # fmt: skip
        password = secrets.token_urlsafe(16)
        subprocess.run(
            [API_PY, "-m", "app.staff.cli", "create-user", "--username", "bench_clerk",
             "--role", "clerk", f"--password={password}"],
            cwd=API_DIR, env=env, check=True, capture_output=True,
        )  # fmt: skip
        with _stack(env) as (url, api), httpx.Client(base_url=url, timeout=120) as client:
            token = client.post(
                "/api/v1/auth/token", data={"username": "bench_clerk", "password": password}
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}

            # 1. The XLSX bomb: refused at the upload, the api's memory barely moves.
            hwm_before = _proc_kb(api.pid, "VmHWM")
            t0 = time.perf_counter()
            with bomb.open("rb") as fh:
                r = client.post(
                    "/api/v1/staff/ledger/import",
                    files=[("files", ("bomb.xlsx", fh, "application/octet-stream"))],
                    headers=headers,
                )
            bomb_s = time.perf_counter() - t0
            hwm_after = _proc_kb(api.pid, "VmHWM")
            bomb_status = r.status_code

            # 2. The big ledger while /healthz is sampled.
            samples: list[float] = []
            failures = 0
            stop = threading.Event()

            def sample() -> None:
                nonlocal failures
                with httpx.Client(base_url=url, timeout=10) as probe:
                    while not stop.is_set():
                        s0 = time.perf_counter()
                        try:
                            ok = probe.get("/healthz").status_code == 200
                        except httpx.HTTPError:
                            ok = False
                        samples.append((time.perf_counter() - s0) * 1000)
                        failures += 0 if ok else 1
                        time.sleep(0.02)

            petitions: list[float] = []
            petition_fail = 0

            def file_petitions() -> None:
                nonlocal petition_fail
                body = {
                    "person_name": "测试人",
                    "phone": "13800000000",
                    "address": "测试路1号",
                    "description": "交房多年还没有房本。",
                    "consent": True,
                    "channel": "webchat",
                }
                with httpx.Client(base_url=url, timeout=60) as probe:
                    while not stop.is_set():
                        s0 = time.perf_counter()
                        try:
                            ok = probe.post("/api/v1/petitions", json=body).status_code == 201
                        except httpx.HTTPError:
                            ok = False
                        petitions.append((time.perf_counter() - s0) * 1000)
                        petition_fail += 0 if ok else 1
                        time.sleep(0.1)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            filer = threading.Thread(target=file_petitions, daemon=True)
            filer.start()
            t0 = time.perf_counter()
            handles = [p.open("rb") for p in ledger]
            try:
                r = client.post(
                    "/api/v1/staff/ledger/import",
                    files=[
                        ("files", (p.name, h, "text/csv"))
                        for p, h in zip(ledger, handles, strict=True)
                    ],
                    headers=headers,
                )
            finally:
                for h in handles:
                    h.close()
            answered_s = time.perf_counter() - t0
            if r.status_code != 202:
                stop.set()
                raise RuntimeError(f"upload answered {r.status_code}: {r.text[:300]}")
            result = _wait_done(client, r.json()["status_url"], headers)
            total_s = time.perf_counter() - t0
            stop.set()
            sampler.join()
            filer.join()
            api_hwm_end = _proc_kb(api.pid, "VmHWM")
    if result["state"] != "done":
        raise RuntimeError(f"import {result['state']}: {result.get('message')}")
    started = datetime.fromisoformat(result["started_at"])
    finished = datetime.fromisoformat(result["finished_at"])
    return {
        "backend": backend,
        "bomb_status": bomb_status,
        "bomb_s": bomb_s,
        "api_hwm_before_mb": hwm_before / 1024,
        "api_hwm_after_bomb_mb": hwm_after / 1024,
        "api_hwm_end_mb": api_hwm_end / 1024,
        "upload_answer_s": answered_s,
        "job_s": (finished - started).total_seconds(),
        "upload_to_done_s": total_s,
        "units": result["report"]["units_created"],
        "healthz_n": len(samples),
        "healthz_fail": failures,
        "healthz_p50": statistics.median(samples),
        "healthz_p99": _percentile(samples, 0.99),
        "healthz_max": max(samples),
        "petitions_n": len(petitions),
        "petitions_fail": petition_fail,
        "petitions_p50": statistics.median(petitions),
        "petitions_p99": _percentile(petitions, 0.99),
        "petitions_max": max(petitions),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--units", type=int, default=400_000)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--bomb-mb", type=int, default=711)
    ap.add_argument("--xlsx", action="store_true", help="upload one workbook instead of 2 CSVs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="upload-bench-ledger-") as tmp:
        out = Path(tmp)
        gen = [sys.executable, str(ROOT / "bench" / "gen_ledger.py"), "--units", str(args.units)]
        subprocess.run([*gen, "--out", str(out), *(["--xlsx"] if args.xlsx else [])], check=True,
                       capture_output=True)  # fmt: skip
        ledger = [out / "ledger.xlsx"] if args.xlsx else [out / "projects.csv", out / "units.csv"]
        size_mb = sum(p.stat().st_size for p in ledger) / 1e6
        bomb = _bomb(out / "bomb.xlsx", args.bomb_mb)
        print(
            f"ledger: {args.units} units, {size_mb:.1f} MB ({'XLSX' if args.xlsx else 'CSV'}); "
            f"bomb: {bomb.stat().st_size / 1e6:.2f} MB packed, {args.bomb_mb} MB of shared strings"
        )
        print(
            "backend     bomb  bomb_s  api_peak_rss_MB(start→bomb→end)  upload_answer_s  "
            "job_s  upload→done_s  healthz_n  fail  p50_ms  p99_ms  max_ms"
        )
        worst = 0.0
        for backend in args.backends.split(","):
            try:
                f = run(backend, ledger, bomb)
            except Exception as exc:  # noqa: BLE001 - one backend failing still prints the rest
                print(f"{backend:<10}  failed: {exc}")
                continue
            worst = max(worst, f["healthz_p99"])
            print(
                f"{backend:<10}  {f['bomb_status']:>4}  {f['bomb_s']:6.2f}  "
                f"{f['api_hwm_before_mb']:7.0f} → {f['api_hwm_after_bomb_mb']:4.0f} → "
                f"{f['api_hwm_end_mb']:4.0f}{'':15}{f['upload_answer_s']:8.2f}  "
                f"{f['job_s']:6.1f}  {f['upload_to_done_s']:13.1f}  {f['healthz_n']:9d}  "
                f"{f['healthz_fail']:4d}  {f['healthz_p50']:6.1f}  {f['healthz_p99']:6.1f}  "
                f"{f['healthz_max']:6.1f}"
            )
            print(
                f"{'':10}  petitions filed during the import: {f['petitions_n']}, "
                f"{f['petitions_fail']} not 201; p50 {f['petitions_p50']:.0f} ms, "
                f"p99 {f['petitions_p99']:.0f} ms, max {f['petitions_max']:.0f} ms"
            )
        print(f"target: /healthz p99 < 100 ms during the upload and import — worst {worst:.1f} ms")


if __name__ == "__main__":
    main()
