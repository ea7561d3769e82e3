"""`memtui run` follows the tree: exec'ed Python children and forked ones get their own agent,
socket and recording; --no-children keeps the old single-process run."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from memtui.cli import main

PARENT = textwrap.dedent("""\
    import multiprocessing, os, subprocess, sys, time

    def work(seconds):
        keep = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            keep.append("y" * 1000)
            time.sleep(0.01)

    if __name__ == "__main__":
        for _ in range(3):  # short helpers: gone before their agent would start
            subprocess.run([sys.executable, "-c", "pass"], check=True)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(8)"])
        forked = multiprocessing.get_context("fork").Process(target=work, args=(8,))
        forked.start()
        print(f"pids {child.pid} {forked.pid}", flush=True)
        forked.join()
        child.wait()
    """)


def _run(tmp_path: Path, *extra: str) -> tuple[int, dict[str, object], str]:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    out = tmp_path / "tree.json"
    code = main(
        [
            "run",
            "--headless",
            "--sample-interval",
            "0.5",
            "--output",
            str(out),
            *extra,
            "--",
            sys.executable,
            str(script),
        ]
    )
    return code, json.loads(out.read_text()), str(script)


def test_exec_and_fork_children_get_agents_and_recordings(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    record = tmp_path / "run.db"
    code, report, script = _run(tmp_path, "--record", str(record))
    assert code == 0
    printed = capfd.readouterr().out
    child_pid, forked_pid = (int(x) for x in printed.split("pids ")[1].split()[:2])
    processes = report["processes"]
    assert isinstance(processes, list)
    by_pid = {p["pid"]: p for p in processes}
    root = processes[0]
    assert root["role"] == "root" and script in root["command"]
    assert child_pid in by_pid and by_pid[child_pid]["role"] == "child"
    assert by_pid[child_pid]["command"] == "-c"  # sys.argv of `python -c ...`
    assert forked_pid in by_pid and by_pid[forked_pid]["role"] == "worker"
    for pid in (child_pid, forked_pid):
        assert by_pid[pid]["ppid"] == root["pid"]
        assert by_pid[pid]["summary"]["samples"] > 0
        assert by_pid[pid]["exited"] is True
    assert len(processes) == 3  # the short helpers never started an agent
    assert record.exists()
    assert (tmp_path / f"run-{child_pid}.db").exists()  # one recording per process
    assert (tmp_path / f"run-{forked_pid}.db").exists()


def test_no_children_profiles_the_started_process_only(tmp_path: Path) -> None:
    code, report, _ = _run(tmp_path, "--no-children")
    assert code == 0
    assert "processes" not in report and "pool" not in report
