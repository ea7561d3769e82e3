"""End to end: the report names the leaking container by its path, on the demo, a real Flask app
under real HTTP load, and an asyncio program using the in-process API."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from memtui import MemoryProfiler

LEAKERS = Path(__file__).parent / "leakers"
MEMTUI = str(Path(sys.executable).parent / "memtui")
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork-based")


@pytest.fixture(autouse=True)
def _fast_summaries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Heap summaries every 3 s (10 s by default), so a short run has several."""
    monkeypatch.setenv("MEMTUI_HEAP_SUMMARY_INTERVAL", "3")


def _suspects(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["path"]: s for s in report["leak_detection"]["suspects"] if s.get("path")}


def test_demo_report_names_order_log_and_counts_its_dicts(tmp_path: Path) -> None:
    out, db = tmp_path / "r.json", tmp_path / "run.db"
    run = subprocess.run(
        [MEMTUI, "run", "--headless", "--duration", "20", "--output", str(out),
         "--record", str(db), "--", sys.executable, "-m", "memtui.demo"],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert out.exists(), run.stderr
    report = json.loads(out.read_text())
    found = _suspects(report)
    assert "memtui.demo.ORDER_LOG" in found, sorted(found)
    log = found["memtui.demo.ORDER_LOG"]
    assert log["holds"] == "dict" and log["items"] > 10_000
    assert log["retained_bytes"] > 5 << 20 and log["bytes_per_hour"] > 0
    first = report["leak_detection"]["suspects"][0]
    assert first["path"] == "memtui.demo.ORDER_LOG"
    assert "memtui.demo.ORDER_LOG" in run.stderr + run.stdout  # the summary line names it
    census = {row["type"]: row for row in report["leak_detection"]["heap"]["census"]}
    assert census["dict"]["count"] >= log["items"]  # the leaked records, untracked by gc
    assert report["snapshots"][-1]["top_types"]["dict"] >= log["items"]
    assert report["leak_detection"]["heap"]["collection"]["source"] == "fork"
    # The recording keeps the summaries: a report rebuilt from it names the same container.
    rebuilt = tmp_path / "rebuilt.json"
    subprocess.run(
        [MEMTUI, "report", str(db), "--output", str(rebuilt)], check=True, timeout=60,
        capture_output=True,
    )  # fmt: skip
    again = _suspects(json.loads(rebuilt.read_text()))
    assert "memtui.demo.ORDER_LOG" in again, sorted(again)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


GUNICORN = Path(sys.executable).parent / "gunicorn"


@pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn and flask are in the dev extra")
def test_flask_pool_under_gunicorn_names_the_pool_per_worker(tmp_path: Path) -> None:
    pytest.importorskip("flask")
    port = _free_port()
    out = tmp_path / "web.json"
    env = {**os.environ, "PYTHONPATH": str(LEAKERS)}
    log = (tmp_path / "server.log").open("w")  # a pipe nobody reads would block the server
    proc = subprocess.Popen(
        [MEMTUI, "run", "--headless", "--duration", "25", "--output", str(out), "--",
         str(GUNICORN), "-w", "2", "-b", f"127.0.0.1:{port}", "web_app:app"],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        sent, deadline = 0, time.monotonic() + 27
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/order/{sent}", timeout=2):
                    sent += 1
            except OSError:
                time.sleep(0.1)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    assert sent > 1000
    report = json.loads(out.read_text())
    workers = [p for p in report["processes"] if p["role"] == "worker"]
    assert len(workers) == 2, [p["role"] for p in report["processes"]]
    named = []
    for worker in workers:
        found = {s.get("path"): s for s in worker["leak_detection"]["suspects"]}
        assert not any("price" in str(p) or "lru_cache" in str(p) for p in found)
        if "web_app.POOL._idle" in found:
            assert found["web_app.POOL._idle"]["holds"] == "dict"
            named.append(worker["pid"])
    assert named, [w["leak_detection"]["suspects"] for w in workers]


class _Session:
    def __init__(self) -> None:
        self.pending: dict[int, dict[str, object]] = {}


class _Service:
    def __init__(self) -> None:
        self.sessions = _Session()
        self.n = 0

    async def handle(self) -> None:
        self.n += 1
        self.sessions.pending[self.n] = {"req": self.n, "payload": "x" * 200}


SERVICE = _Service()


def test_in_process_profiler_names_an_instance_attribute() -> None:
    async def main() -> MemoryProfiler:
        profiler = MemoryProfiler(snapshot_interval=5)
        await profiler.start()
        # At least four heap summaries (3 s apart; later when the machine is busy).
        end = time.monotonic() + 60
        while time.monotonic() < end and profiler._summaries.taken < 4:
            for _ in range(50):
                await SERVICE.handle()
            await asyncio.sleep(0.01)
        await profiler.stop()
        return profiler

    profiler = asyncio.run(main())
    path = f"{__name__}.SERVICE.sessions.pending"
    found = _suspects(profiler.generate_report())
    assert path in found, sorted(found)
    assert found[path]["holds"] == "dict"
    patterns = profiler.analyze_allocation_patterns()
    assert path in {s.get("path") for s in patterns["signatures"]}
