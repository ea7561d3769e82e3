"""Tests the headless CLI: the spec's flags against real processes, bad input, exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from memtui.cli import EXIT_LEAK, EXIT_TARGET_ENDED, main

LEAKER = textwrap.dedent("""\
    import sys, time
    keep = []
    rate = float(sys.argv[1])  # MB/s
    print("ready", flush=True)
    while True:
        block = bytearray(int(rate * 1024 * 1024 / 10))
        block[::4096] = b"x" * len(block[::4096])
        keep.append(block)
        time.sleep(0.1)
    """)
STABLE = textwrap.dedent("""\
    import time
    print("ready", flush=True)
    while True:
        junk = [bytearray(4096) for _ in range(2000)]
        del junk
        time.sleep(0.1)
    """)


def _spawn(source: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", source, *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture
def leaker() -> Iterator[subprocess.Popen[str]]:
    proc = _spawn(LEAKER, "20")
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def stable() -> Iterator[subprocess.Popen[str]]:
    proc = _spawn(STABLE)
    yield proc
    proc.kill()
    proc.wait()


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_pid_of_a_leaking_process_fails_ci(
    leaker: subprocess.Popen[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "memory_report.json"
    code, _, err = _run(
        [
            "--pid",
            str(leaker.pid),
            "--no-attach",
            "--duration",
            "12",
            "--sample-interval",
            "0.2",
            "--growth-threshold",
            "5",
            "--output",
            str(out_file),
            "--fail-on-leak",
        ],
        capsys,
    )
    report = json.loads(out_file.read_text())
    assert report["leak_detection"]["leak_detected"] is True, report["leak_detection"]
    assert code == EXIT_LEAK
    assert report["leak_rate_mb_per_hour"] == pytest.approx(20 * 3600, rel=0.3)
    assert report["source"]["kind"] == "outside"
    assert "top_allocators" in report["source"]["unavailable"]
    assert report["process"]["pid"] == leaker.pid and report["process"]["num_maps"] > 0
    assert f"pid {leaker.pid}: LEAK" in err


def test_pid_of_a_stable_process_passes(
    stable: subprocess.Popen[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        [
            "--pid",
            str(stable.pid),
            "--no-attach",
            "--duration",
            "8",
            "--sample-interval",
            "0.2",
            "--fail-on-leak",
        ],
        capsys,
    )
    report = json.loads(out)
    assert code == 0, report["leak_detection"]
    assert report["leak_detection"]["leak_detected"] is False
    assert "no leak" in err


def test_pid_that_exits_mid_run_still_gets_its_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = _spawn("import time; print('ready', flush=True); time.sleep(2)")
    out_file = tmp_path / "r.json"
    code, _, err = _run(
        [
            "--pid",
            str(proc.pid),
            "--no-attach",
            "--duration",
            "30",
            "--sample-interval",
            "0.2",
            "--output",
            str(out_file),
        ],
        capsys,
    )
    proc.wait()
    assert code == EXIT_TARGET_ENDED
    report = json.loads(out_file.read_text())
    assert report["source"]["target_exited"] is True
    assert report["summary"]["samples"] >= 3
    assert "exited before the end" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--duration", "-5"], "positive number", id="negative-duration"),
        pytest.param(["--duration", "soon"], "expected a number", id="word-duration"),
        pytest.param(["--trace-limit", "1.5"], "whole number", id="fractional-limit"),
        pytest.param(["--pid", "0"], "positive whole number", id="pid-zero"),
        pytest.param(["--bogus"], "unrecognized arguments", id="unknown-flag"),
        pytest.param(
            ["--output", "r.pdf", "--duration", "1"], "unknown report extension", id="bad-extension"
        ),
    ],
)
def test_bad_flags_give_one_line_and_nonzero(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(argv, capsys)
    assert code != 0
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert out == ""


def test_detailed_report_writes_a_self_contained_html_page(
    stable: subprocess.Popen[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # --detailed-report without --output: ./memory_report.html
    code, out, err = _run(
        ["--pid", str(stable.pid), "--no-attach", "--detailed-report", "--duration", "1"], capsys
    )
    assert code == 0, err
    assert out == ""
    page = (tmp_path / "memory_report.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html")
    assert "memory-chart" in page and '<script src="http' not in page
    assert "memory_report.html" in err and err.count("\n") == 1


def test_unknown_pid(capsys: pytest.CaptureFixture[str]) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # its pid is now free (reuse within the test is very unlikely)
    code, _, err = _run(["--pid", str(proc.pid), "--duration", "2"], capsys)
    assert code == 1
    assert f"no process with pid {proc.pid}" in err and err.count("\n") == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another uid")
def test_another_users_process_is_watched_with_what_may_be_read() -> None:
    """As uid 65534, watch root's process: statm is world-readable, smaps_rollup is not.

    The report carries the RSS series; USS/PSS (smaps_rollup) are simply absent.
    """
    # The interpreter's own files may be unreadable to uid 65534 (/root is 0700 here), so
    # everything the child imports lazily is imported before dropping privileges.
    import concurrent.futures.thread  # noqa: F401

    import memtui.engine.profiler
    import memtui.remote.process_source  # noqa: F401

    shared_dir = Path(tempfile.mkdtemp(prefix="memtui-uid-test-"))  # pytest's tmp is 0700
    shared_dir.chmod(0o777)
    out_file = shared_dir / "r.json"
    target = subprocess.Popen(["sleep", "30"])
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        code = 99
        try:
            os.setgid(65534)
            os.setuid(65534)
            code = main(
                [
                    "--pid",
                    str(target.pid),
                    "--duration",
                    "1.5",
                    "--sample-interval",
                    "0.2",
                    "--output",
                    str(out_file),
                    "--quiet",
                    "--no-attach",
                ]
            )
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    target.kill()
    target.wait()
    assert os.waitstatus_to_exitcode(status) == 0
    report = json.loads(out_file.read_text())
    shutil.rmtree(shared_dir)
    assert report["summary"]["end_memory_mb"] > 0
    assert "uss_mb" not in report["summary"]


def test_demo_headless_report_names_the_leak(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "demo.json"
    code, _, err = _run(
        ["demo", "--headless", "--duration", "10", "--output", str(out_file)], capsys
    )
    assert code == 0, err
    report = json.loads(out_file.read_text())
    top = report["top_allocators"][0]
    assert top["file"].endswith("memtui/demo.py") and top["function"] == "record_order"


def test_python_dash_m_memtui_smoke(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "memtui", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "--snapshot-interval" in proc.stdout
    assert "exit status" in proc.stdout
