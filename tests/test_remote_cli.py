"""End-to-end: `memtui run`, `memtui attach`, `--pid` and `detach` on real leaking programs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memtui.cli import EXIT_LEAK, main
from memtui.remote.client import find_socket

LEAKY = textwrap.dedent("""\
    import sys, time
    CACHE = []

    def handle(i):
        CACHE.append(("request-%08d" % i) * 8)  # LEAK

    def main(seconds):
        print("ready", flush=True)
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            for _ in range(2000):  # about 1 MB/s of surviving strings
                handle(i)
                i += 1
            junk = [str(j) * 3 for j in range(5000)]  # churn that does not survive
            del junk
            time.sleep(0.1)

    main(float(sys.argv[1]))
    sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    """)
LEAK_LINE = 5

pytestmark = pytest.mark.skipif(shutil.which("gdb") is None, reason="attach needs gdb")


@pytest.fixture(autouse=True)
def _fast_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short tracing windows and census interval, so a test sees several in seconds."""
    monkeypatch.setenv("MEMTUI_WATCH_PERIOD", "2")
    monkeypatch.setenv("MEMTUI_WATCH_WINDOW", "0.25")
    monkeypatch.setenv("MEMTUI_CENSUS_INTERVAL", "2")


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "leaky.py"
    path.write_text(LEAKY)
    return path


@pytest.fixture
def running(script: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen([sys.executable, str(script), "120"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield proc
    proc.kill()
    proc.wait()


def _top(report: dict[str, object]) -> tuple[str, int]:
    top = report["top_allocators"]
    assert isinstance(top, list) and top, report
    return str(top[0]["file"]), int(top[0]["line"])


def test_run_names_the_leaking_line_and_passes_the_exit_code(
    script: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A suspect needs 6 censuses; each is spaced by its cost (1% of wall time), which a loaded
    # CI machine stretches to 2-3 s: a census a second asked for, and 20 s, leave room.
    monkeypatch.setenv("MEMTUI_CENSUS_INTERVAL", "1")
    out = tmp_path / "run.json"
    code = main(
        [
            "run",
            "--headless",
            "--output",
            str(out),
            "--sample-interval",
            "0.5",
            "--",
            sys.executable,
            str(script),
            "20",
            "7",
        ]
    )
    assert code == 7  # the program's own exit status
    report = json.loads(out.read_text())
    assert _top(report) == (str(script), LEAK_LINE)
    assert report["source"]["kind"] == "agent" and report["source"]["target_exited"]
    assert report["summary"]["samples"] >= 15
    assert report["gc_statistics"]["available"] is True
    assert any(
        s["kind"] == "unbounded_collection" and "CACHE" in s["name"]
        for s in report["leak_detection"]["suspects"]
    ), report["leak_detection"]
    assert "ready" in capfd.readouterr().out  # the program's output stays ours


def test_run_without_a_program() -> None:
    assert main(["run", "--headless"]) == 2
    assert main(["run", "--headless", "--", "/nonexistent/python"]) == 2


def test_attach_names_the_leaking_line(
    running: subprocess.Popen[str], script: Path, tmp_path: Path
) -> None:
    out = tmp_path / "attach.json"
    started = time.monotonic()
    code = main(
        [
            "attach",
            str(running.pid),
            "--headless",
            "--duration",
            "10",
            "--sample-interval",
            "0.5",
            "--output",
            str(out),
            "--fail-on-leak",
        ]
    )
    report = json.loads(out.read_text())
    assert _top(report) == (str(script), LEAK_LINE)
    assert report["source"]["kind"] == "agent"
    assert code in (0, EXIT_LEAK)
    assert time.monotonic() - started < 40
    assert running.poll() is None  # the target keeps running
    # A second watch reuses the running agent, then detach removes it.
    assert main(
        ["--pid", str(running.pid), "--duration", "2", "--output", str(tmp_path / "again.json")]
    ) in (0, EXIT_LEAK)
    assert json.loads((tmp_path / "again.json").read_text())["source"]["kind"] == "agent"
    assert main(["detach", str(running.pid)]) == 0
    assert find_socket(running.pid) is None
    assert main(["detach", str(running.pid)]) == 1
    assert running.poll() is None


def test_pid_of_a_non_python_process_falls_back_to_outside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        out = tmp_path / "sleep.json"
        code = main(
            [
                "--pid",
                str(sleeper.pid),
                "--duration",
                "2",
                "--sample-interval",
                "0.5",
                "--output",
                str(out),
            ]
        )
    finally:
        sleeper.kill()
        sleeper.wait()
    err = capsys.readouterr().err
    assert code == 0
    assert "not a Python process" in err and "from outside" in err
    report = json.loads(out.read_text())
    assert report["source"]["kind"] == "outside"


def test_attach_to_a_non_python_process_fails_clearly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        code = main(["attach", str(sleeper.pid), "--headless", "--duration", "1"])
    finally:
        sleeper.kill()
        sleeper.wait()
    err = capsys.readouterr().err
    assert code == 1 and "not a Python process" in err and err.count("\n") == 1
