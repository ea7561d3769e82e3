"""Imports point one way: cli → tui → remote → engine → probe; only tui imports Textual."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


@pytest.mark.parametrize(
    ("statement", "forbidden"),
    [
        pytest.param(
            "import memtui.engine.profiler, memtui.engine.heap.dumps",
            ("textual", "memtui.tui", "memtui.remote", "memtui.cli"),
            id="engine",
        ),
        pytest.param(
            "import memtui.remote.sources, memtui.remote.attach",
            ("textual", "memtui.tui", "memtui.cli"),
            id="remote",
        ),
        pytest.param("import memtui.cli", ("textual", "numpy"), id="cli-lazy"),
        pytest.param(
            "import memtui.probe.agent, memtui.probe.heap.dump",
            ("memtui.engine", "memtui.remote", "numpy", "psutil"),
            id="probe",
        ),
    ],
)
def test_layers_do_not_import_upwards(statement: str, forbidden: tuple[str, ...]) -> None:
    modules = _imported_after(statement)
    bad = sorted(m for m in modules for f in forbidden if m == f or m.startswith(f + "."))
    assert not bad, f"{statement} imported {bad}"
