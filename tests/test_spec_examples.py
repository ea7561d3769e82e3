"""Every code block of the user's spec (../shared/spec/memory-profiling.md) runs as written.

Python blocks run with only the import path changed (``tests.stress.memory_profiler`` ->
``memtui``) and durations compressed through the injectable clock (see tests/spec_harness.py);
shell blocks (the CLI, the GitHub Actions steps, the Dockerfile's CMD) run with ``memtui`` for
``python -m tests.stress.memory_profiler`` and ``--duration`` divided by 1800; the JSON block is
the report's structure, checked against a real report. Each block is one test, named by its
section, so a new block in the spec is a new test (and fails until it works).
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import spec_harness as h

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT.parent / "shared" / "spec" / "memory-profiling.md"
MEMTUI = str(Path(sys.executable).with_name("memtui"))


@dataclass(frozen=True)
class Block:
    id: str
    lang: str
    code: str


def spec_blocks() -> list[Block]:
    """Every fenced block, in order, with an id from its section heading."""
    if not SPEC.exists():
        return []
    blocks: list[Block] = []
    heading = "top"
    seen: dict[str, int] = {}
    lines = SPEC.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = re.sub(r"[^a-z0-9]+", "-", line.lstrip("#").strip().lower()).strip("-")
        elif line.startswith("```"):
            lang = line[3:].strip() or "text"
            body = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            n = seen.get(heading, 0) + 1
            seen[heading] = n
            blocks.append(Block(f"{heading}-{n}" if n > 1 else heading, lang, "\n".join(body)))
        i += 1
    return blocks


BLOCKS = spec_blocks()
pytestmark = pytest.mark.skipif(
    not SPEC.exists(), reason=f"the spec is not beside the repo: {SPEC}"
)
BY_ID = {b.id: b for b in BLOCKS}

# What each Python example must show (besides running without an error): output it prints.
EXPECT: dict[str, list[str]] = {
    "basic-memory-profiling": ["Memory leak detected:", "MB/hour", "spec_harness.py"],
    "heap-dump-on-threshold": ["Heap dump saved: /tmp/heap_dumps/heapdump-", "Top memory"],
    "memory-snapshot-analysis": [" MB: ", "Change: "],
    "growth-pattern-analysis": ["Growth rate: ", "WARNING: Memory leak detected!", "Confidence"],
    "object-tracking": ["dict: ", "list: ", "OrderBook: "],
    "1-baseline-establishment": ["Baseline memory: "],
    "high-memory-usage": [" MB: "],
    "high-memory-usage-2": ["dict: "],
    "high-memory-usage-3": ["Suspicious pattern: "],
    "memory-leak-confirmation": ["Memory leak confirmed with 95% confidence"],
    "memory-leak-confirmation-3": ["Leak source: ", "spec_harness.py"],
}


@pytest.fixture
def shared() -> Any:
    """The spec's narrative profiler: started (Basic Setup) and running over 12 simulated hours
    of a leaking application; the blocks that use ``profiler`` without creating one get it.
    One per test: a profiler kept across tests would trace every test's allocations."""
    scenario = h.Scenario(leak_mb_per_hour=50.0)
    profiler = scenario.profiler_class()(snapshot_interval=60)

    async def run() -> None:
        await profiler.start()
        await scenario.sleep(12 * 3600)

    asyncio.run(run())
    yield scenario, profiler
    _stop_all(scenario.profilers)
    h.APP_STATE.clear()  # one example's leak does not weigh on the next


@pytest.fixture
def leaking(shared: tuple[h.Scenario, Any]) -> Any:
    return shared[0]


def _stop_all(profilers: list[Any]) -> None:
    async def stop() -> None:
        for p in profilers:
            if p.is_running:
                await p.stop()

    asyncio.run(stop())


def _run_python(code: str, ns: dict[str, Any]) -> None:
    """Run a block as written: top-level ``await`` runs in an event loop, as in a notebook."""
    source = h.python_source(code)
    compiled = compile(source, "<spec>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, ns)
    if asyncio.iscoroutine(result):
        asyncio.run(result)


def _prepared(shared: tuple[h.Scenario, Any], tmp: Path, sent: list[str]) -> dict[str, Any]:
    scenario, profiler = shared
    ns = h.namespace(scenario, tmp, sent)
    ns["profiler"] = profiler
    return ns


PYTHON = [b for b in BLOCKS if b.lang == "python"]


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_example(
    block: Block,
    shared: tuple[h.Scenario, Any],
    leaking: h.Scenario,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[str] = []
    ns = _prepared(shared, tmp_path, sent)
    os.chdir(tmp_path)
    reports: list[dict[str, Any]] = []
    generate = h.RealProfiler.generate_report

    def keep(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        report: dict[str, Any] = generate(self, *args, **kwargs)
        reports.append(report)
        return report

    monkeypatch.setattr(h.RealProfiler, "generate_report", keep)
    try:
        _run_python(block.code, ns)
    finally:  # blocks that import memtui's own class start real profilers: stop them
        leaking.profilers += [
            v for v in ns.values() if isinstance(v, h.RealProfiler) and v not in leaking.profilers
        ]
    # Definitions the block makes but does not call are called too, where they can end.
    if "test_memory_leak" in ns:
        with pytest.raises(AssertionError, match="Memory leak detected"):
            asyncio.run(ns["test_memory_leak"]())
        flat = h.Scenario(leak_mb_per_hour=0.0)
        ns_flat = h.namespace(flat, tmp_path, sent)
        exec(compile(h.python_source(block.code), "<spec>", "exec"), ns_flat)
        asyncio.run(ns_flat["test_memory_leak"]())  # a flat application passes the CI check
        _stop_all(flat.profilers)
    if "profile_change" in ns:
        asyncio.run(ns["profile_change"]("after a change"))
    if "long_term_monitoring" in block.code:
        assert sent and "Memory leak detected" in sent[0]
        saved = json.loads((tmp_path / "7day_memory_profile.json").read_text())
        assert saved["leak_detection"]["leak_detected"]
        assert saved["summary"]["duration_hours"] == pytest.approx(168, rel=0.01)
    if "process_orders" in ns:
        assert list(ns["process_orders"]()) == list(range(100))
    out = capsys.readouterr().out
    for want in EXPECT.get(block.id, []):
        assert want in out, f"{block.id}: {want!r} not in the output:\n{out}{_verdicts(reports)}"


def _verdicts(reports: list[dict[str, Any]]) -> str:
    """What every report of this test concluded, to explain a missing line."""
    lines = [
        f"{v.get('state')}: {v.get('reason')} (samples: {r['summary'].get('samples', '?')})"
        for r in reports
        for v in [r["leak_detection"]]
    ]
    return "\nverdicts of the reports made:\n" + "\n".join(lines)


def test_every_python_block_has_run() -> None:
    """The ids used above exist: a spec edit that renames a section shows here."""
    assert set(EXPECT) <= {b.id for b in PYTHON}
    assert len(PYTHON) >= 25


def _report_shape(spec: Any, ours: Any, path: str) -> list[str]:
    problems = []
    if isinstance(spec, dict):
        if not isinstance(ours, dict):
            return [f"{path}: not an object"]
        for key, value in spec.items():
            if key not in ours:
                problems.append(f"{path}.{key}: missing")
            elif value is not None:
                problems += _report_shape(value, ours[key], f"{path}.{key}")
    elif isinstance(spec, list) and spec:
        if not isinstance(ours, list) or not ours:
            return [f"{path}: not a non-empty list"]
        problems += _report_shape(spec[0], ours[0], f"{path}[0]")
    elif isinstance(spec, bool):
        if not isinstance(ours, bool):
            problems.append(f"{path}: not a bool")
    elif isinstance(spec, int | float) and not isinstance(ours, int | float):
        problems.append(f"{path}: not a number")
    elif isinstance(spec, str) and not isinstance(ours, str):
        problems.append(f"{path}: not a string")
    return problems


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "json"], ids=lambda b: b.id)
def test_report_structure(block: Block) -> None:
    """A real report (3 s of a real leaking workload, real clock) has the spec's structure."""

    async def run() -> dict[str, Any]:
        profiler = h.RealProfiler(snapshot_interval=0.5)
        await profiler.start()
        await h.run_trading_system(3.0)
        await profiler.stop()
        return profiler.generate_report()

    report = asyncio.run(run())
    spec = json.loads(block.code)
    for snap in spec["snapshots"]:
        snap["top_types"] = None  # its keys are examples (str is not gc-tracked: not counted)
    assert _report_shape(spec, report, "report") == []
    # (No verdict asserted: RSS may not grow while memory freed by earlier tests is reused.)
    assert report["top_allocators"][0]["function"] == "leak_step"
    assert all(isinstance(v, int) for v in report["snapshots"][0]["top_types"].values())


def _sleeper(tmp: Path) -> subprocess.Popen[bytes]:
    prog = tmp / "service.py"
    prog.write_text("import time\nKEEP = []\nwhile True:\n    KEEP.append(b\"x\" * 10**5)\n"
                    "    time.sleep(0.05)\n")  # fmt: skip
    return subprocess.Popen([sys.executable, str(prog)])


SHELL = [b for b in BLOCKS if b.lang == "bash"]


@pytest.mark.parametrize("block", SHELL, ids=[b.id for b in SHELL])
def test_cli_example(block: Block, tmp_path: Path) -> None:
    """Each command of the block, with memtui's name, the pid of a real process for 12345, and
    --duration compressed."""
    target = _sleeper(tmp_path)
    try:
        commands = [
            c.strip()
            for c in h.compress_cli(block.code, MEMTUI).splitlines()
            if c.strip() and not c.strip().startswith("#")
        ]
        assert len(commands) >= 4
        for command in commands:
            command = command.replace("12345", str(target.pid))
            done = subprocess.run(
                command, shell=True, cwd=tmp_path, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, f"{command}: {done.returncode}\n{done.stderr}"
            assert "Traceback" not in done.stderr
        html = (tmp_path / "memory_report.html").read_text()
        assert "<html" in html.lower() and "plotly" in html.lower()
    finally:
        target.kill()
        target.wait()


def _yaml_run_steps(text: str) -> dict[str, str]:
    """The ``run: |`` scripts of a workflow, by step name (no YAML library needed)."""
    steps: dict[str, str] = {}
    lines = text.splitlines()
    name = ""
    for i, line in enumerate(lines):
        m = re.match(r"\s*- name: (.+)", line)
        if m:
            name = m.group(1).strip()
        if line.strip() == "run: |":
            indent = len(line) - len(line.lstrip()) + 2
            body = []
            for nxt in lines[i + 1 :]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) < indent:
                    break
                body.append(nxt[indent:])
            steps[name] = "\n".join(body)
    return steps


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "yaml"], ids=lambda b: b.id)
def test_github_actions_steps(block: Block, tmp_path: Path) -> None:
    """The workflow's run steps in order: a leaking service fails the check, a flat one passes."""
    steps = _yaml_run_steps(block.code)
    assert list(steps) == ["Run memory profiling", "Check for leaks"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    profile = h.compress_cli(steps["Run memory profiling"], MEMTUI, max_s=3.0)
    # The workflow profiles the job's own process (--pid current): run it as is.
    done = subprocess.run(profile, shell=True, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    check = subprocess.run(steps["Check for leaks"], shell=True, cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert check.returncode == 0, check.stderr  # memtui's own process does not leak
    report = json.loads((tmp_path / "memory_report.json").read_text())
    report["leak_detection"]["leak_detected"] = True
    (tmp_path / "memory_report.json").write_text(json.dumps(report))
    check = subprocess.run(steps["Check for leaks"], shell=True, cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert check.returncode != 0 and "Memory leak detected" in check.stderr


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang == "dockerfile"], ids=lambda b: b.id)
def test_dockerfile_cmd(block: Block, tmp_path: Path) -> None:
    """The image's CMD with its ENV (no Docker here): monitors until SIGTERM, then reports."""
    env = dict(os.environ)
    for key, value in re.findall(r"^ENV (\w+)=(\S+)", block.code, flags=re.M):
        env[key] = value
    cmd = re.search(r"^CMD (\[.*\])", block.code, flags=re.M)
    assert cmd is not None
    argv = json.loads(cmd.group(1))
    assert argv[:3] == ["python", "-m", "tests.stress.memory_profiler"]
    proc = subprocess.Popen([MEMTUI, *argv[3:], "--output", str(tmp_path / "r.json")], env=env,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(3.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
    assert proc.returncode in (0, 130), err
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["duration_hours"] > 0


def test_there_is_nothing_else_in_the_spec() -> None:
    """Every block's language is one this file runs."""
    assert {b.lang for b in BLOCKS} <= {"python", "bash", "json", "yaml", "dockerfile"}
    assert shutil.which(MEMTUI) or Path(MEMTUI).exists()
