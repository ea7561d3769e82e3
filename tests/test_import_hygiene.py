"""Imports point one way: cli → tui → remote → engine → probe; only tui imports Textual."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

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


# The import contract, read from the source (every import, lazy ones inside functions too):
# a part may import only parts of a lower rank (and itself). Ranks follow the data path:
# probe (in the target) → engine facts → the verdict and heap analysis → culprits (which
# read the verdict) → reports and monitor frames → the frame intake (both pipelines' one
# way into the analysis) → the profiler facade → the remote side → the monitor UI → the
# command line.
RANKS: dict[str, int] = {
    "errors": 0,
    "probe": 1,
    "markers": 2,
    "engine.facts": 2,
    "engine.detect": 3,
    "engine.heap": 3,
    "engine.culprits": 4,
    "engine.analysis": 5,
    "engine.report": 5,
    "engine.monitor": 5,
    "engine.intake": 6,
    "engine.profiler": 7,
    "pytest_plugin": 8,
    "remote": 8,
    "demo": 8,
    "tui": 9,
    "cli": 10,
    "__main__": 11,
}
PACKAGE = Path(__file__).resolve().parents[1] / "memtui"


def _part(module: str) -> str | None:
    """The part a dotted module name belongs to ('memtui.engine.detect.floor' → 'engine.detect');
    None for the faces memtui/__init__.py (lazy) and memtui/engine/__init__.py (empty)."""
    parts = module.removesuffix(".__init__").split(".")[1:]
    if not parts or parts == ["engine"]:
        return None
    if parts[0] == "engine" and len(parts) > 1:
        return f"engine.{parts[1]}"
    return parts[0]


def _imports(path: Path, module: str) -> set[str]:
    """Every memtui module that ``path`` imports, resolving ``from pkg import module``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "memtui"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != "memtui":
                continue
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / (full.replace(".", "/") + ".py")).exists() or (
                    PACKAGE.parent / full.replace(".", "/")
                ).is_dir()
                found.add(full if is_module else node.module)
    return found


def test_every_part_has_a_rank() -> None:
    parts = {
        _part(".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts))
        for p in PACKAGE.rglob("*.py")
    }
    assert parts - {None} <= set(RANKS), sorted(parts - {None} - set(RANKS))


def test_imports_point_down_the_data_path() -> None:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        source = _part(module)
        if source is None:
            continue
        for target in sorted(_imports(path, module)):
            if target == "memtui" and module.split(".")[1] in ("probe", "markers"):
                continue  # __version__: the probe zip carries memtui/__init__.py
            dest = _part(target)
            if dest is None or dest == source:
                continue
            if RANKS[dest] >= RANKS[source]:
                bad.append(f"{module} imports {target} ({source} → {dest})")
    assert not bad, "\n".join(bad)


def test_probe_imports_only_the_standard_library_and_itself() -> None:
    stdlib = set(sys.stdlib_module_names)
    bad = []
    for path in sorted((PACKAGE / "probe").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                ok = (
                    top in stdlib
                    or name in ("memtui", "memtui.markers")
                    or name.startswith("memtui.probe")
                )
                if not ok:
                    bad.append(f"{path.relative_to(PACKAGE)}: {name}")
    assert not bad, bad


def test_only_the_tui_imports_textual() -> None:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if (PACKAGE / "tui") in path.parents:
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"^\s*(from|import) textual\b", text, re.M):
            bad.append(str(path.relative_to(PACKAGE)))
    assert not bad, bad
