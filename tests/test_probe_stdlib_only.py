"""Provides the proof that memtui.probe imports with nothing but the standard library."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROBE_DIR = Path(__file__).resolve().parent.parent / "memtui" / "probe"

CHECK = r"""
import importlib, json, pkgutil, sys
before = set(sys.modules)
import memtui.probe
names = sorted(
    m.name.removeprefix("memtui.probe.")
    for m in pkgutil.walk_packages(memtui.probe.__path__, "memtui.probe.")
)
for name in names:
    importlib.import_module("memtui.probe." + name)
# Exercise the collectors a little, so lazily imported modules count too.
from memtui.probe import allocator, census, gcstats, history, memory
allocator.read_allocator()
census.take_census(largest=3)
import gc
monitor = gcstats.GcMonitor(); monitor.install()
for _ in range(3):  # a busy machine's clock can read one collection as 0 s long
    gc.collect()
    if monitor.read().time_s[2] > 0:
        break
assert monitor.read().time_s[2] > 0 and monitor.read().collections[2] >= 1
monitor.uninstall()
history.History(("x",)).append(0.0, (1.0,))
if sys.platform.startswith("linux"):
    with memory.ProcMemoryReader() as r:
        r.read_full()
stdlib = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
outside = sorted(
    m for m in set(sys.modules) - before
    if m.split(".")[0] not in stdlib and m != "memtui" and not m.startswith("memtui.probe")
)
print(json.dumps({"modules": names, "outside": outside, "file": memtui.probe.__file__}))
"""


def _interpreters() -> list[str]:
    found = [sys.executable]
    for minor in ("3.10", "3.12", "3.13"):
        matches = sorted(glob.glob(f"/root/.pyenv/versions/{minor}.*/bin/python"))
        if matches:
            found.append(matches[-1])
    return found


@pytest.fixture(scope="module")
def isolated_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding only memtui/__init__.py (empty) and a copy of memtui/probe."""
    root = tmp_path_factory.mktemp("probe_only")
    (root / "memtui").mkdir()
    (root / "memtui" / "__init__.py").write_text("")
    shutil.copytree(
        PROBE_DIR, root / "memtui" / "probe", ignore=shutil.ignore_patterns("__pycache__")
    )
    return root


@pytest.mark.parametrize("python", _interpreters())
def test_probe_imports_with_stdlib_only(python: str, isolated_probe: Path) -> None:
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} not present")
    # -I: ignore PYTHON* variables and user site; -S: no site, so no site-packages at all.
    code = f"import sys; sys.path.insert(0, {str(isolated_probe)!r})\n" + CHECK
    result = subprocess.run(
        [python, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=isolated_probe,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["outside"] == []
    assert Path(report["file"]).resolve().is_relative_to(isolated_probe.resolve())
    expected = sorted(
        ".".join(p.relative_to(PROBE_DIR).with_suffix("").parts).removesuffix(".__init__")
        for p in PROBE_DIR.rglob("*.py")
        if p != PROBE_DIR / "__init__.py"
    )
    assert report["modules"] == expected
