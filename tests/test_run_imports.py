"""`memtui run --headless` imports only what it needs, and only once it needs it.

Why: the monitor's imports are the fixed cost of every run (issue 14). Headless never needs
Textual or plotly; the engine (numpy, the analysis) is needed only once an agent answered,
and then only after the program was started. Real processes: the monitor runs in a child
interpreter whose import hook notes when each watched module is first imported and when
the program was spawned; correctness only, timing lives in benchmarks/bench_fixed_cost.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

WATCHED = ("textual", "plotly", "numpy", "memtui.remote.session", "memtui.tui")

_MONITOR = textwrap.dedent("""\
    import atexit, json, subprocess, sys, time

    OUT, WATCHED, ARGS = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    events = {}

    class Spy:  # notes each watched module's first import; finds nothing itself
        def find_spec(self, name, path=None, target=None):
            if name in WATCHED and name not in events:
                events[name] = time.monotonic()
            return None

    sys.meta_path.insert(0, Spy())
    _init = subprocess.Popen.__init__

    def init(self, *args, **kwargs):
        events.setdefault("spawn", time.monotonic())
        _init(self, *args, **kwargs)

    subprocess.Popen.__init__ = init

    def dump():
        with open(OUT, "w") as f:
            json.dump({"modules": sorted(sys.modules), "events": events}, f)

    atexit.register(dump)
    from memtui.cli import main

    sys.exit(main(ARGS))
    """)


def _monitor(tmp_path: Path, program: list[str]) -> tuple[dict[str, Any], str]:
    """Run `memtui run --headless -- PROGRAM`; (what it imported and when, its stderr)."""
    out = tmp_path / "imports.json"
    args = ["run", "--headless", "--", *program]
    proc = subprocess.run(
        [sys.executable, "-c", _MONITOR, str(out), json.dumps(WATCHED), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "MEMTUI_RECORD"},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text()), proc.stderr


def _imported(seen: dict[str, Any], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in seen["modules"])


def test_a_program_without_an_agent_costs_no_engine(tmp_path: Path) -> None:
    # -S skips sitecustomize: no agent can start, so there is nothing to analyse.
    seen, err = _monitor(tmp_path, [sys.executable, "-S", "-c", "pass"])
    assert "before its agent answered" in err
    assert "spawn" in seen["events"]
    for name in WATCHED:
        assert not _imported(seen, name), f"{name} imported for nothing: {err}"


def test_an_empty_program_imports_the_engine_only_for_a_report(tmp_path: Path) -> None:
    seen, err = _monitor(tmp_path, [sys.executable, "-c", "pass"])
    reported = "before its agent answered" not in err  # its agent may answer in time, or not
    for name in ("textual", "plotly", "memtui.tui"):
        assert not _imported(seen, name), err
    assert _imported(seen, "numpy") == reported, err
    assert _imported(seen, "memtui.remote.session") == reported, err


def test_the_program_starts_before_the_engine_is_imported(tmp_path: Path) -> None:
    seen, err = _monitor(tmp_path, [sys.executable, "-c", "import time; time.sleep(1.5)"])
    events = seen["events"]
    assert "memtui: pid" in err  # watched, with a report
    for name in ("textual", "plotly", "memtui.tui"):
        assert not _imported(seen, name), err
    assert events["spawn"] < events["numpy"]
    assert events["spawn"] < events["memtui.remote.session"]


# What the agent must not load at a program's start: dataclasses (with inspect, ~10 ms of
# every run), SQLite without a recording, the heap walk and dump code before a summary or a
# dump runs. The program prints the modules its interpreter holds as its first line runs.
_AGENT_MUST_NOT_LOAD = (
    "dataclasses",
    "inspect",
    "sqlite3",
    "memtui.probe.heap.walk",
    "memtui.probe.heap.paths",
    "memtui.probe.heap.dump",
)
_PRINT_MODULES = "import json, sys; print(json.dumps(sorted(sys.modules)))"


def _program_modules(tmp_path: Path, *flags: str) -> list[str]:
    command = [sys.executable, "-c", _PRINT_MODULES]
    proc = subprocess.run(
        [sys.executable, "-m", "memtui", "run", "--headless", *flags, "--", *command],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    modules: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "memtui.probe.agent" in modules, proc.stderr  # the agent did start
    return modules


def test_the_agent_starts_without_dataclasses_sqlite_or_the_heap_walk(tmp_path: Path) -> None:
    modules = _program_modules(tmp_path)
    assert [m for m in _AGENT_MUST_NOT_LOAD if m in modules] == []
    # A recording needs SQLite, and gets it.
    recorded = _program_modules(tmp_path, "--record", str(tmp_path / "run.db"))
    assert "sqlite3" in recorded
