"""Tests the recording wired through memtui: `run --record`, `memtui report`, markers, the
profiler's output_dir recording (a simulated week) and the HTML report from the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memtui.cli import main
from memtui.engine.profiler import MemoryProfiler
from memtui.engine.report.json_report import build_report
from memtui.engine.report.recording import Recording
from memtui.engine.report.replay import build_report_input_from_recording
from memtui.errors import ReportError
from memtui.probe.clock import FakeClock

DAY = 86400
MEMTUI = [sys.executable, "-m", "memtui"]

# Leaks 2 MB/s for argv[1] seconds (forever with "inf"), marks its start and its end.
LEAKY = textwrap.dedent("""\
    import sys, time
    import memtui
    keep = []
    end = time.time() + float(sys.argv[1])
    memtui.mark("start work")
    print("ready", flush=True)
    while time.time() < end:
        block = bytearray(2 * 1024 * 1024 // 10)
        block[::4096] = b"x" * len(block[::4096])
        keep.append(block)
        time.sleep(0.1)
    memtui.mark("deploy 42")
    time.sleep(0.2)
    """)


def _memtui(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MEMTUI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def _is_html_page(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    head = text.lstrip()[:200].lower()
    # Self-contained: no scripts or stylesheets fetched from the network.
    return head.startswith("<!doctype html") and '<script src="http' not in text


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One real `memtui run --headless --record` of the leaky program (shared: ~9 s)."""
    d = tmp_path_factory.mktemp("run")
    (d / "leaky.py").write_text(LEAKY)
    proc = _memtui(
        "run",
        "--headless",
        "--record",
        "RUN.db",
        "--output",
        "r.json",
        "--sample-interval",
        "0.25",
        "--",
        sys.executable,
        "leaky.py",
        "8",
        cwd=d,
    )
    assert proc.returncode == 0, proc.stderr
    return {"dir": d, "live": json.loads((d / "r.json").read_text())}


def test_run_record_then_report_json_and_html(recorded_run: dict[str, Any]) -> None:
    d: Path = recorded_run["dir"]
    live = recorded_run["live"]
    assert (d / "RUN.db").exists()
    as_json = _memtui("report", "RUN.db", "--output", "rep.json", cwd=d)
    assert as_json.returncode == 0, as_json.stderr
    assert as_json.stderr.count("\n") == 1 and "RUN.db" in as_json.stderr
    as_html = _memtui("report", "RUN.db", "--output", "rep.html", cwd=d)
    assert as_html.returncode == 0, as_html.stderr
    assert _is_html_page(d / "rep.html")

    rep = json.loads((d / "rep.json").read_text())
    # The same documented structure as the live report (the live one also has "agent").
    assert set(live) - {"agent"} <= set(rep), set(live) - set(rep)
    for section in ("summary", "leak_detection", "source"):
        assert set(live[section]) <= set(rep[section]) | {"python_version", "uss_mb"}, section
    assert rep["source"]["pid"] == live["source"]["pid"]
    # The same growth: 2 MB/s for 8 s (~16 MB) seen live and replayed from the recording.
    live_growth = live["summary"]["end_memory_mb"] - live["summary"]["start_memory_mb"]
    rec_growth = rep["summary"]["end_memory_mb"] - rep["summary"]["start_memory_mb"]
    assert live_growth > 8
    assert rec_growth == pytest.approx(live_growth, rel=0.25, abs=2.0)
    assert rep["summary"]["net_growth_mb_per_hour"] == pytest.approx(
        live["summary"]["net_growth_mb_per_hour"], rel=0.3
    )
    assert rep["summary"]["duration_hours"] * 3600 >= 7.0


def test_marks_in_the_target_reach_the_report(recorded_run: dict[str, Any]) -> None:
    d: Path = recorded_run["dir"]
    proc = _memtui("report", "RUN.db", "--output", "markers.json", cwd=d)
    assert proc.returncode == 0, proc.stderr
    labels = [m["label"] for m in json.loads((d / "markers.json").read_text())["markers"]]
    assert "deploy 42" in labels and "start work" in labels
    assert all(
        m["source"] == "target" for m in json.loads((d / "markers.json").read_text())["markers"]
    )
    # The live report saw them through the agent's frames too.
    assert "start work" in [m["label"] for m in recorded_run["live"]["markers"]]


def test_report_of_a_run_whose_target_was_killed(tmp_path: Path) -> None:
    (tmp_path / "leaky.py").write_text(LEAKY)
    monitor = subprocess.Popen(
        [
            *MEMTUI,
            "run",
            "--headless",
            "--record",
            "RUN.db",
            "--output",
            "r.json",
            "--sample-interval",
            "0.25",
            "--",
            sys.executable,
            "leaky.py",
            "inf",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        target_pid = 0
        while not target_pid and time.monotonic() < deadline:
            time.sleep(0.1)
            try:  # the file exists a moment before its first transaction is in
                with Recording(tmp_path / "RUN.db") as rec:
                    target_pid = int(rec.meta["pid"])
            except ReportError:
                continue
        assert target_pid, "the agent did not start recording"
        started = time.monotonic()
        time.sleep(max(0.0, 5.5 - (time.monotonic() - started)))
        os.kill(target_pid, signal.SIGKILL)
        monitor.communicate(timeout=30)
    finally:
        if monitor.poll() is None:
            monitor.kill()
            monitor.communicate()
    proc = _memtui("report", "RUN.db", "--output", "after.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((tmp_path / "after.json").read_text())
    assert rep["summary"]["duration_hours"] * 3600 >= 4.0
    assert rep["summary"]["end_memory_mb"] - rep["summary"]["start_memory_mb"] > 5
    assert proc.stderr.count("\n") == 1
    assert _memtui("report", "RUN.db", "--output", "after.html", cwd=tmp_path).returncode == 0
    assert _is_html_page(tmp_path / "after.html")


def test_profiler_output_dir_records_a_week_and_the_report_finds_the_day3_leak(
    tmp_path: Path, fake_clock: FakeClock, synthetic: Callable[..., Any]
) -> None:
    memory = synthetic(
        base_mb=300.0,
        leak_mb_per_hour=20.0,
        onset_s=3 * DAY,
        sawtooth_mb=20.0,
        daily_mb=30.0,
    )
    profiler = MemoryProfiler(
        snapshot_interval=3600.0,
        growth_threshold_mb_per_hour=5.0,
        output_dir=tmp_path,
        sample_interval=60.0,
        clock=fake_clock,
        memory_reader=memory,
    )
    started = time.perf_counter()
    asyncio.run(profiler.monitor_continuous(days=7))
    elapsed = time.perf_counter() - started
    recordings = list(tmp_path.glob("memtui_*.db"))
    assert len(recordings) == 1, list(tmp_path.iterdir())
    assert profiler.recording_path == str(recordings[0])
    assert elapsed < 20, f"a simulated week took {elapsed:.1f} s"

    report = build_report(build_report_input_from_recording(recordings[0]))
    leak = report["leak_detection"]
    assert leak["leak_detected"] is True, leak
    assert abs(leak["onset_seconds"] - 3 * DAY) < 6 * 3600, leak
    assert leak["leak_rate_mb_per_hour"] == pytest.approx(20.0, rel=0.3)
    assert report["summary"]["duration_hours"] == pytest.approx(7 * 24, abs=0.5)
    assert report["recording"]["clean_end"] is True
    # The live report of the same run names the recording and carries the timeline.
    live = profiler.generate_report()
    assert live["recording"]["path"] == str(recordings[0])
    assert live["timeline"]["t_s"]


def test_profiler_records_marks(tmp_path: Path) -> None:
    import memtui

    async def run() -> MemoryProfiler:
        profiler = MemoryProfiler(
            record_path=tmp_path / "p.db", sample_interval=0.05, enable_tracemalloc=False
        )
        await profiler.start()
        await asyncio.sleep(0.2)
        assert memtui.mark("cache warm")
        await asyncio.sleep(0.2)
        await profiler.stop()
        return profiler

    profiler = asyncio.run(run())
    assert [m["label"] for m in profiler.generate_report()["markers"]] == ["cache warm"]
    with Recording(tmp_path / "p.db") as rec:
        assert [m[1] for m in rec.markers(0, 2**40)] == ["cache warm"]
    assert not memtui.mark("nobody listens")


def test_cli_detailed_report_writes_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = subprocess.Popen(["sleep", "30"])
    try:
        out = tmp_path / "r.html"
        code = main(
            [
                "--pid",
                str(target.pid),
                "--no-attach",
                "--duration",
                "3",
                "--sample-interval",
                "0.2",
                "--detailed-report",
                "--output",
                str(out),
            ]
        )
    finally:
        target.kill()
        target.wait()
    err = capsys.readouterr().err
    assert code == 0, err
    assert _is_html_page(out)
    assert "memory-chart" in out.read_text()


def test_cli_report_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["report", str(tmp_path / "missing.db")])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "missing.db" in err and "Traceback" not in err

    not_a_recording = tmp_path / "notes.db"
    not_a_recording.write_text("hello")
    code = main(["report", str(not_a_recording)])
    _, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1 and "not a memtui recording" in err

    code = main(["report", str(tmp_path / "missing.db"), "--output", str(tmp_path / "r.pdf")])
    out, err = capsys.readouterr()
    assert code in (1, 2) and out == ""
    assert err.count("\n") == 1 and "unknown report extension" in err
    assert not (tmp_path / "r.pdf").exists()


class _FakeClient:
    def __init__(self, hello: dict[str, Any]) -> None:
        self.hello = hello

    def close(self) -> None:
        pass


def test_a_session_attaching_later_replays_the_agents_recording(tmp_path: Path) -> None:
    from memtui.probe.recorder import Recorder
    from memtui.remote.session import AgentSession

    t0 = time.time() - 600.0
    path = tmp_path / "agent.db"
    with Recorder(path, {"role": "agent", "pid": os.getpid()}) as rec:
        rec.add_samples((t0 - 3600 + i, 50 << 20, 0, None, 10) for i in range(0, 600, 10))
        rec.add_samples((t0 + i, (100 << 20) + i * 4096, 0, None, 10) for i in range(600))
    hello = {"pid": os.getpid(), "started_at": t0, "recording": str(path), "argv": ["x"]}
    session = AgentSession(_FakeClient(hello))  # type: ignore[arg-type]
    ring = [[seq, t0 + 590 + seq, (100 << 20) + (590 + seq) * 4096, 0, 0, 10] for seq in range(20)]
    session.apply_frame({"samples": ring, "history": [{"t_end": t0, "mean": [1 << 30, 0, 0, 0]}]})
    # The whole run since the agent started (not an earlier run's rows, not the coarse
    # history), then only the ring samples that are newer than the recording.
    assert session.metrics.samples == 600 + 10
    assert session.metrics.peak_mb < 200
    assert session.metrics.start_t_s == pytest.approx(t0, abs=1.0)
    assert session.seq == 19
