"""Races: two `memtui attach` of one pid at once, attach while the target exits, and `detach`
while a heap dump is being written. Each ends with one agent (or none), one clear line where
something failed, a live target where it should live, and no half-written file."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from reliability_harness import MEMTUI, kill, memtui, one_clear_line, spawn_target

from memtui.cli import main
from memtui.remote.attach import detach

pytestmark = [
    pytest.mark.skipif(shutil.which("gdb") is None, reason="attach needs gdb"),
    pytest.mark.timeout(120),
]

BUSY = "import time\nprint('ready', flush=True)\nwhile True:\n    time.sleep(0.02)\n"
EXITS_SOON = "import time\nprint('ready', flush=True)\ntime.sleep(1.0)\n"
HEAP = """\
import time
DATA = [{"k": i, "v": str(i)} for i in range(60_000)]
print("ready", flush=True)
while True:
    time.sleep(0.02)
"""


def _walker(pid: int) -> bool:
    """The target's forked heap-dump walker is running."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            try:
                if Path(f"/proc/{child}/comm").read_text().startswith("memtui-heapdump"):
                    return True
            except OSError:
                continue
    return False


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])


def _settles(pid: int, threads: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while _threads(pid) != threads:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_two_attaches_at_once_then_detach_while_a_dump_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = spawn_target(HEAP, tmp_path)
    out = tmp_path / "dumps"
    try:
        runs = []
        for i in range(2):
            command = [*MEMTUI, "attach", str(target.pid), "--headless", "--duration", "1"]
            command += ["--output", str(tmp_path / f"r{i}.json")]
            runs.append(subprocess.Popen(command, stderr=subprocess.PIPE, text=True))
        for run in runs:
            _, err = run.communicate(timeout=60)
            assert run.returncode == 0, err  # the second waits for the first, then reuses it

        dump = subprocess.Popen(
            [*MEMTUI, "heapdump", str(target.pid), "--out-dir", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not _walker(target.pid) and dump.poll() is None:  # the forked walker runs
            assert time.monotonic() < deadline, "the dump never started"
            time.sleep(0.02)
        assert detach(target.pid)  # in-process: at once, while the walker runs
        _, err = dump.communicate(timeout=60)
        print(f"heapdump during detach: exit {dump.returncode}")
        if dump.returncode != 0:
            assert "was detached before the heap dump was reported" in one_clear_line(err)
        assert target.poll() is None
        # the walker ends (finished, or stopped with the agent) and leaves either the whole
        # dump or nothing: never a part file
        deadline = time.monotonic() + 40
        while _walker(target.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _settles(target.pid, 1), "an agent (a second one?) is still running"
        assert not list(out.glob("*.part-*"))
        dumps = list(out.glob("*.mtdump"))
        assert len(dumps) <= 1
        if dumps:
            assert main(["heapdump", "analyze", str(dumps[0])]) == 0, capsys.readouterr().err
        assert memtui("detach", str(target.pid)).returncode == 1  # no agent left
    finally:
        kill(target)


def test_attach_while_the_target_exits(tmp_path: Path) -> None:
    target = spawn_target(EXITS_SOON, tmp_path)
    started = time.monotonic()
    done = memtui("attach", str(target.pid), "--headless", "--duration", "3")
    assert time.monotonic() - started < 30
    if done.returncode != 0:
        line = one_clear_line(done.stderr)
        assert "exited" in line or f"no process with pid {target.pid}" in line, line
    else:  # attached before the exit: the watch says it ended
        assert "Traceback" not in done.stderr
    target.wait(10)
