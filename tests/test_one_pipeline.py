"""Provides tests that the in-process profiler and a monitor's agent session are one pipeline.

The profiler runs the probe's collector (the agent's) and analyses its frames through the
intake a monitor uses for an agent's frames. Fed the same frames, an AgentSession must reach
the same metrics, verdict and culprits as the profiler did: same facts, same analysis.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from memtui.engine.facts.frames import AgentFrame
from memtui.engine.profiler.memory_profiler import MemoryProfiler
from memtui.probe.agent import start_agent
from memtui.probe.collector import Collector
from memtui.remote.client import AgentClient
from memtui.remote.session import AgentSession

LEAK: list[Any] = []


async def _leak_while_profiled(profiler: MemoryProfiler, frames: list[AgentFrame]) -> None:
    """Leak until the profiler has seen enough (at least 4 s, 3 censuses, 3 heap summaries;
    a loaded machine makes the forked summaries slow, so no fixed duration)."""
    await profiler.start()
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < 90.0:
        for _ in range(50):  # about 2 MB/s
            LEAK.append({"order": i, "payload": "x" * 200})
            i += 1
        await asyncio.sleep(0.01)
        censuses = sum(f.census is not None for f in frames)
        summaries = sum(f.heap_summary is not None for f in frames)
        if time.monotonic() - start >= 4.0 and censuses >= 3 and summaries >= 3:
            break
    await profiler.stop()


@pytest.fixture
def agent_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A session on a real agent of this process (its hello only; frames come from the test)."""
    monkeypatch.setenv("MEMTUI_HEAP_SUMMARY", "0")
    sock_dir = tmp_path / "sock"
    sock_dir.mkdir(mode=0o700)
    agent = start_agent(sock_dir=str(sock_dir), trace_mode="off")
    client = AgentClient(agent.sock_path)
    try:
        yield AgentSession(client)
    finally:
        client.close()
        agent.stop()


def test_the_same_frames_make_the_same_analysis(
    agent_session: AgentSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    LEAK.clear()
    monkeypatch.setenv("MEMTUI_HEAP_SUMMARY", "1")  # the profiler's: heap summaries name LEAK
    monkeypatch.setenv("MEMTUI_HEAP_SUMMARY_INTERVAL", "1")
    profiler = MemoryProfiler(snapshot_interval=0.5, sample_interval=0.1, enable_tracemalloc=False)
    frames: list[AgentFrame] = []
    observe = profiler._intake.observe_frame

    def tap(frame: AgentFrame) -> Any:
        frames.append(frame)
        return observe(frame)

    profiler._intake.observe_frame = tap  # type: ignore[method-assign]
    try:
        asyncio.run(_leak_while_profiled(profiler, frames))
    finally:
        LEAK.clear()
    assert isinstance(profiler._collector, Collector)  # the probe's collection loop
    assert sum(len(f.samples) for f in frames) >= 32
    assert sum(f.census is not None for f in frames) >= 3
    assert sum(f.heap_summary is not None for f in frames) >= 3

    session = agent_session
    session.culprits.start_t = profiler.culprits.start_t
    for frame in frames:
        session.observe_frame(frame)

    assert session.metrics.samples == profiler.metrics.samples
    assert session.metrics.peak_mb == profiler.metrics.peak_mb
    assert session.detector.final_verdict() == profiler.detector.final_verdict()
    assert profiler.detector.final_verdict().rate_mb_per_hour > 0  # it grows (not trivial)
    assert session.culprits.to_report() == profiler.culprits.to_report()
    # Not trivial: the heap summaries that both analysed name the leaking list by its path.
    paths = [c["path"] for c in profiler.culprits.to_report()["heap"]["largest_containers"]]
    assert any(p.endswith(".LEAK") for p in paths), paths[:5]


def test_the_agent_runs_the_same_collector(tmp_path: Path) -> None:
    sock_dir = tmp_path / "sock"
    sock_dir.mkdir(mode=0o700)
    agent = start_agent(sock_dir=str(sock_dir), trace_mode="off", sample_interval_s=0.05)
    try:
        assert isinstance(agent.collector, Collector)
        deadline = time.monotonic() + 5.0
        while agent.collector.seq < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        frame = agent.cmd_frame({"since": 0})
        assert len(frame["samples"]) >= 3
        assert len(frame["samples"][0]) == 7  # seq, t, rss, vms, traced, blocks, malloc free (None)
        assert frame["census"]["total_objects"] > 0
    finally:
        agent.stop()
