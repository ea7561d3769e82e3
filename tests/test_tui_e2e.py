"""End-to-end in a real terminal: tmux runs `memtui run -- python leaky.py`; keys are sent."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")

LEAKY = """\
import sys, time
CACHE = []

def handle(i):
    CACHE.append(("request-%08d" % i) * 8)

print("leaky started", flush=True)
i = 0
while True:
    for _ in range(2000):
        handle(i)
        i += 1
    time.sleep(0.1)
"""


class Tmux:
    """One detached tmux session running a command, read with capture-pane."""

    def __init__(self, command: str, cwd: Path, width: int, height: int) -> None:
        self.name = f"memtui-e2e-{uuid.uuid4().hex[:8]}"
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                str(width),
                "-y",
                str(height),
                "-c",
                str(cwd),
                command,
            ],
            check=True,
        )

    def screen(self) -> str:
        out = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name],
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def resize(self, width: int, height: int) -> None:
        subprocess.run(
            ["tmux", "resize-window", "-t", self.name, "-x", str(width), "-y", str(height)],
            check=True,
        )

    def wait_for(self, predicate: Callable[[str], bool], timeout_s: float, what: str) -> str:
        deadline = time.monotonic() + timeout_s
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; screen was:\n{screen}")

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False, capture_output=True)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "leaky.py").write_text(LEAKY)
    return tmp_path


@pytest.fixture
def monitor(workdir: Path) -> Iterator[Tmux]:
    env = (
        "MEMTUI_WATCH_PERIOD=2 MEMTUI_WATCH_WINDOW=0.25 MEMTUI_CENSUS_INTERVAL=2 "
        "TERM=xterm-256color"
    )
    memtui = f"{shlex.quote(sys.executable)} -m memtui"
    program = f"{shlex.quote(sys.executable)} leaky.py"
    # pytest may export COLUMNS/LINES, which would override the real terminal size.
    out_dir = shlex.quote(str(workdir))
    command = (
        f"env -u COLUMNS -u LINES {env} {memtui} run --out-dir {out_dir} -- {program}; "
        "echo EXIT=$? > exit.txt; sleep 30"
    )
    session = Tmux(command, workdir, 160, 45)
    yield session
    session.kill()
    subprocess.run(["pkill", "-f", f"{workdir}/leaky.py|leaky.py"], check=False)


def test_run_monitor_keys_and_quit(monitor: Tmux, workdir: Path) -> None:
    # The panes show the live target and, within seconds, the leaking line.
    screen = monitor.wait_for(
        lambda s: "LIVE" in s and "leaky.py:5" in s, 40, "the leaking line in the allocators pane"
    )
    assert "Memory" in screen and "Object counts" in screen and "GC" in screen

    # At 80x24 the layout switches to tabs; the verdict and key hints stay visible.
    monitor.resize(80, 24)
    small = monitor.wait_for(lambda s: "Memory" in s and "Quit" in s, 10, "the 80x24 layout")
    assert "pid" in small
    monitor.resize(160, 45)
    # The wide layout is back before the next keys (on a loaded machine the resize can land
    # after them: the dump explorer then opened mid-resize, its columns cut to their headers).
    monitor.wait_for(
        lambda s: "Object counts" in s and max(map(len, s.splitlines()), default=0) > 120,
        15,
        "the 160x45 layout again",
    )

    # e: export the report (path notified), then q: leave, y: stop the program too.
    monitor.keys("e")
    monitor.wait_for(lambda s: "Report written" in s, 15, "the export notification")
    # d: a heap dump of the target, written by a forked copy of it, readable by the analyzer.
    monitor.keys("d")
    monitor.wait_for(lambda s: "Heap dump" in s and ".mtdump" in s, 30, "the dump notification")
    deadline = time.monotonic() + 30
    while not list(workdir.glob("*.mtdump")) and time.monotonic() < deadline:
        time.sleep(0.3)
    dumps = list(workdir.glob("*.mtdump"))
    assert dumps, monitor.screen()
    from memtui.engine.heap.dumps import analyze_heap_dump

    analysis = analyze_heap_dump(str(dumps[0]))
    assert analysis["top_objects"]

    # The explorer opens on the dump's analysis (a bounded child process did it): retained
    # size by type, and the largest retainer named by its path from a root.
    explorer = monitor.wait_for(
        lambda s: "Largest retainers" in s and "global CACHE → list" in s,
        60,
        "the dump's analysis naming CACHE",
    )
    assert "Retained size by type" in explorer and "MiB" in explorer
    # tab: the retainers; enter on the largest (CACHE): its chain, and the chains from roots
    # to its type with sample objects.
    monitor.keys("Tab")
    time.sleep(0.3)
    monitor.keys("Enter")
    chains = monitor.wait_for(
        lambda s: "Reference chains from roots to list" in s and "Sample objects" in s,
        60,
        "the chains screen",
    )
    assert "Selected: module __main__ → global CACHE → list" in chains, chains
    monitor.keys("Escape")
    monitor.wait_for(lambda s: "Reference chains" not in s, 10, "the chains screen to close")
    time.sleep(0.5)  # an escape followed at once by a key reads as alt+key
    monitor.keys("3")
    monitor.wait_for(
        lambda s: "This session's dumps" in s and "ready" in s, 10, "the list of dumps"
    )
    monitor.keys("Escape")
    monitor.wait_for(lambda s: "Object counts" in s, 10, "the monitor again")
    time.sleep(0.5)

    # The verdict pane names the leak and its suspects (the leaking line, or the container
    # once the culprit engine names it), reason included.
    verdict = monitor.wait_for(
        lambda s: "LEAK" in s and "suspects" in s and ("CACHE" in s or "leaky.py:5" in s),
        90,
        "the verdict with its suspects",
    )
    assert "Leak verdict" in verdict
    monitor.keys("q")
    monitor.wait_for(lambda s: "Stop" in s, 10, "the stop-the-program question")
    monitor.keys("y")
    deadline = time.monotonic() + 30
    while not (workdir / "exit.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert (workdir / "exit.txt").exists(), monitor.screen()
    after = monitor.screen()
    assert "report saved to" in after and "program's output is in" in after

    reports = sorted(workdir.glob("memtui-report-*.json"))
    assert len(reports) >= 2  # the exported one and the one saved on quit
    report = json.loads(reports[-1].read_text())
    assert report["top_allocators"][0]["line"] == 5
    assert report["top_allocators"][0]["file"].endswith("leaky.py")
    log = next(workdir.glob("memtui-run-*.log")).read_text()
    assert "leaky started" in log  # the program's output went to the log, not the screen
