"""Memory pressure: a target in a memory cgroup whose limit sits just above its usage.

A heap dump or a heap summary forked there could get the target OOM-killed (the copy-on-write
child is charged to the same cgroup), and so could an in-place walk that allocates as much as the
heap is large. memtui must see the limit, refuse what does not fit, say why, and leave the target
running with no OOM kill in the cgroup.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_harness import (
    MemoryCgroup,
    kill,
    make_memory_cgroup,
    memtui,
    spawn_target,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("gdb") is None, reason="attach needs gdb"),
    pytest.mark.timeout(120),
]

# ~1.3M objects, ~110 MB: a fork needs its RSS plus the walk's own memory, an in-place walk about
# 200 bytes per object on top of the heap; neither fits in the 48 MB left under the limit.
HEAVY = """\
import time
DATA = [{"k": i, "v": str(i)} for i in range(400_000)]
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""
MARGIN = 48 << 20


@pytest.fixture
def cgroup() -> Iterator[MemoryCgroup]:
    group, why = make_memory_cgroup(f"memtui-test-{os.getpid()}-{time.monotonic_ns()}")
    if group is None:
        pytest.skip(why)
    yield group
    group.remove()


def test_tight_cgroup_refuses_dump_and_summary_and_target_survives(
    cgroup: MemoryCgroup, tmp_path: Path
) -> None:
    target = spawn_target(HEAVY, tmp_path, preexec=cgroup.join)
    try:
        cgroup.set_limit(cgroup.usage() + MARGIN)
        # the dump attaches the agent by gdb (charged to the cgroup too)
        dump = memtui("heapdump", str(target.pid), "--out-dir", str(tmp_path / "dumps"))
        out = dump.stdout + dump.stderr
        assert "Traceback" not in out, out
        assert target.poll() is None, "the target died"
        assert cgroup.oom_kills() == 0, "the cgroup OOM-killed something"
        if dump.returncode == 0:  # a dump that fits must have been written in place
            assert "inplace writer" in dump.stdout, out
        else:
            assert "heap dump refused" in dump.stderr and "memory limit" in dump.stderr, out
            assert len(dump.stderr.strip().splitlines()) == 1, out
            assert not list((tmp_path / "dumps").glob("*.mtdump*")), "a dump was written anyway"
        # by now the agent's first heap summary (4 s after its start) has come due and been
        # refused; a short headless watch reports why
        report = tmp_path / "r.json"
        watched = memtui(
            "attach", str(target.pid), "--headless", "--duration", "3", "--output", str(report)
        )
        assert watched.returncode == 0, watched.stderr
        note = json.loads(report.read_text())["source"]["note"]
        assert "no heap summary (fork refused: the cgroup has" in note, note
        assert target.poll() is None and cgroup.oom_kills() == 0
        print(dump.stderr.strip())
    finally:
        memtui("detach", str(target.pid))
        kill(target)
