"""Full disk: a recording, a heap dump and a report on a real 2 MB tmpfs that fills up.

The target must keep running; each failure is one clear line; the recording stays readable up
to where it stopped, and when space returns the rows that waited in memory are written and
recording goes on.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_harness import MEMTUI, memtui, mount_tmpfs, one_clear_line, umount

pytestmark = pytest.mark.timeout(90)

TARGET = """\
import os, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
x = []
while True:
    x.append("a" * 100)
    time.sleep(0.01)
    if len(x) > 5000:
        x.clear()
"""


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    why = mount_tmpfs(where, "2m")
    if why:
        pytest.skip(why)
    yield where
    umount(where)


def _samples(db: Path) -> list[int]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [r[0] for r in con.execute("SELECT t_ms FROM samples ORDER BY t_ms")]
    finally:
        con.close()


def _fill(where: Path) -> Path:
    """Write a filler file until the filesystem says ENOSPC."""
    filler = where / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 512)
    return filler


def _wait(predicate: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.Error, OSError, ValueError):
            if predicate():  # type: ignore[operator]
                return True
        time.sleep(0.1)
    return False


def test_recording_dump_and_report_on_a_full_disk(disk: Path, tmp_path: Path) -> None:
    db = disk / "run.db"
    script = tmp_path / "target.py"
    script.write_text(TARGET)
    pid_file = tmp_path / "pid"
    err = tmp_path / "err.log"
    log_file = open(err, "w")  # noqa: SIM115 - memtui writes it for the whole run
    run = subprocess.Popen(
        [*MEMTUI, "run", "--headless", "--record", str(db), "--monitor",
         "--sample-interval", "0.2", "--output", str(tmp_path / "r.json"), "--",
         sys.executable, str(script), str(pid_file)],
        stdout=subprocess.DEVNULL, stderr=log_file,
    )  # fmt: skip
    try:
        assert _wait(lambda: len(_samples(db)) >= 3, 15), err.read_text()
        pid = int(pid_file.read_text())
        filler = _fill(disk)
        full_at_ms = time.time() * 1000
        time.sleep(2.0)  # flushes fail meanwhile
        os.kill(pid, 0)  # the target runs on

        # the recording reads up to where it stopped
        rebuilt = memtui("report", str(db), "--output", str(tmp_path / "partial.json"))
        assert rebuilt.returncode == 0, rebuilt.stderr
        before = _samples(db)
        assert before and before[-1] <= full_at_ms + 1500

        # a heap dump and a report onto the full disk: one line each, non-zero exit
        dump = memtui("heapdump", str(pid), "--out-dir", str(disk / "dumps"))
        assert dump.returncode != 0
        assert "disk space" in one_clear_line(dump.stderr) or "No space" in dump.stderr
        report = memtui("report", str(db), "--output", str(disk / "r.json"))
        assert report.returncode != 0
        assert "No space left on device" in one_clear_line(report.stderr)
        os.kill(pid, 0)

        filler.unlink()  # space returns
        resumed_at_ms = time.time() * 1000
        assert _wait(lambda: _samples(db)[-1] > resumed_at_ms + 500, 15), err.read_text()
        assert _wait(lambda: "being written again" in err.read_text(), 10), err.read_text()
        run.send_signal(signal.SIGTERM)  # --monitor: the report is written on SIGTERM
        code = run.wait(30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            run.kill()
        log_file.close()
    log = err.read_text()
    assert code in (0, 128 + signal.SIGTERM), log  # the program's own end is passed through
    assert "Traceback" not in log, log
    assert f"pid {pid}: recording {db} cannot be written" in log, log
    assert "is being written again, nothing lost" in log, log
    # the rows that waited in memory were written: no hole where the disk was full
    rows = _samples(db)
    full = [t for t in rows if full_at_ms <= t <= resumed_at_ms]
    assert len(full) >= 0.5 * (resumed_at_ms - full_at_ms) / 200, (len(full), rows[-5:])
    assert shutil.disk_usage(disk).free > 0
