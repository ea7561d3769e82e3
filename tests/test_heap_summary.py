"""Heap summaries on real programs: every object counted, leaks named by path, look-alikes not."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memtui.engine.culprits.retainers import RetainerGrowth, trend
from memtui.engine.facts.frames import HeapSummary, decode_heap_summary
from memtui.engine.heap.dumps import load_dump
from memtui.probe.heap.headroom import cgroup_free, fork_headroom, mem_available

LEAKERS = Path(__file__).parent / "leakers"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork-based")


def _run(script: Path, *args: str, timeout: float = 120) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True, text=True, timeout=timeout, check=True,
    )  # fmt: skip
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def test_census_counts_untracked_dicts_like_a_heap_dump(tmp_path: Path) -> None:
    (row,) = _run(LEAKERS / "census_vs_dump.py", str(tmp_path / "d.mtdump"))
    summary = row["summary"]
    assert summary is not None, row["error"]
    census = {name: count for name, count, _ in summary["census"]}
    dump = load_dump(row["dump"])
    names = np.array(dump.type_names)[dump.types]
    dumped_dicts = int((names == "dict").sum())
    # gc sees a few hundred dicts; the summary counts the 100,000 untracked records too.
    assert row["gc_tracked_dicts"] < 20_000
    assert census["dict"] >= 100_000
    assert abs(census["dict"] - dumped_dicts) <= 0.05 * dumped_dicts
    assert abs(census["tuple"] - int((names == "tuple").sum())) <= 0.05 * census["tuple"]
    assert abs(summary["totals"]["objects"] - dump.n) <= 0.05 * dump.n
    assert not any(name.startswith("memtui.probe") for name in census)


@pytest.fixture(scope="module")
def retainer_suspects() -> list[Any]:
    growth = RetainerGrowth()
    for i, summary in enumerate(_run(LEAKERS / "retainers.py", "6")):
        assert "error" not in summary, summary
        growth.observe(10.0 * i, decode_heap_summary(summary))
    return growth.suspects(0.0, 30)


@pytest.mark.parametrize(
    ("path", "kind", "holds"),
    [
        ("__main__.RECORDS", "unbounded_collection", "dict"),
        ("__main__.Registry.listeners", "event_listeners", "method"),
        ("__main__.APP.client.pending", "unbounded_collection", "tuple"),
        ("__main__.COUNT.<closure>.seen", "unbounded_collection", "int"),
        ("thread worker: worker().buffer", "unbounded_collection", "bytes"),
        ("thread MainThread: main().tasks", "asyncio_tasks", "_asyncio.Future"),
        ("__main__.LOG.handlers", "logging_handlers", "logging.NullHandler"),
    ],
)
def test_leaks_named_by_path(
    retainer_suspects: list[Any], path: str, kind: str, holds: str
) -> None:
    found = {s.path: s for s in retainer_suspects}
    assert path in found, sorted(found)
    s = found[path]
    assert s.kind == kind
    assert s.holds == holds
    assert s.items_per_hour > 0 and s.retained_bytes > 0
    assert s.chain.startswith(("module ", "thread "))
    assert s.samples


def test_look_alikes_that_stop_growing_are_not_named(retainer_suspects: list[Any]) -> None:
    paths = " ".join(s.path for s in retainer_suspects)
    assert "bounded" not in paths  # lru_cache(maxsize=300), full since the start
    assert "RECENT" not in paths  # deque(maxlen=500)
    assert "WARM" not in paths  # a warm-up that levelled off after one round
    assert "memtui." not in paths.replace("memtui.demo", "")


def test_trend_rejects_one_step_and_levelling_off() -> None:
    ts = [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert trend(ts, [0, 100, 200, 300, 400, 500], 50) is not None
    assert trend(ts, [0, 0, 0, 1000, 1000, 1000], 50) is None  # a cache filled at once
    assert trend(ts, [0, 400, 480, 500, 500, 500], 50) is None  # levelled off
    assert trend(ts, [1e6, 1e6 + 60, 1e6 + 120, 1e6 + 180, 1e6 + 240, 1e6 + 300], 50) is None


def test_headroom_refuses_when_the_worst_case_does_not_fit() -> None:
    room = fork_headroom(800 << 20, 200 << 20, available=600 << 20, cg_free=None)
    assert not room.ok and "available" in room.reason
    room = fork_headroom(800 << 20, 200 << 20, available=64 << 30, cg_free=500 << 20)
    assert not room.ok and "cgroup" in room.reason
    assert fork_headroom(1 << 20, 1 << 20, available=1 << 30, cg_free=None).ok
    avail = mem_available()
    assert avail is None or avail > 0
    free = cgroup_free()
    assert free is None or free >= 0


def test_a_program_that_breaks_fork_keeps_running(tmp_path: Path) -> None:
    script = tmp_path / "nofork.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, os
            from memtui.probe.heap.summary import HeapSummaries, start_heap_summary

            def forbidden():
                raise PermissionError("fork is not allowed here")

            os.fork = forbidden
            job = start_heap_summary(0.0)
            summaries = HeapSummaries(first_after_s=0.0, budget_share=None)
            assert summaries.tick() is None
            print(json.dumps({"error": job.error, "state": summaries.state()}))
            """
        )
    )
    (row,) = _run(script)
    assert row["error"].startswith("fork failed: PermissionError")
    assert row["state"]["failed"] == 1 and row["state"]["taken"] == 0
    assert "fork failed" in row["state"]["source"]


def test_memtui_never_reports_itself_in_summaries_or_dumps(tmp_path: Path) -> None:
    script = tmp_path / "with_agent.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, time
            from memtui.probe.agent import start_agent
            from memtui.probe.heap.dump import write_heap_dump
            from memtui.probe.heap.summary import start_heap_summary

            agent = start_agent(sock_dir={str(tmp_path / "sock")!r}, census_interval_s=0.2)
            DATA = [{{"i": i, "s": str(i)}} for i in range(50_000)]
            time.sleep(1.5)  # the agent has sampled, censused and kept its history
            job = start_heap_summary(0.0)
            job.wait()
            dump = write_heap_dump({str(tmp_path / "a.mtdump")!r}, writer="fork")
            print(json.dumps({{"summary": job.result, "dump": dump.path}}))
            agent.stop()
            """
        )
    )
    (row,) = _run(script)
    summary = row["summary"]
    census = [name for name, _, _ in summary["census"]]
    assert not [n for n in census if n.startswith("memtui.")]
    assert summary["totals"]["own_objects"] > 0  # they exist, and are counted apart
    assert not [c["path"] for c in summary["containers"] if c["path"].startswith("memtui")]
    from memtui.engine.heap.dumps import analyze_heap_dump

    result = analyze_heap_dump(row["dump"])
    assert not [t["type"] for t in result["top_objects"] if t["type"].startswith("memtui.")]
    chains = " ".join(r["chain"] for r in result["largest_retainers"])
    assert "memtui.probe" not in chains and "memtui-agent" not in chains
    assert result["summary"]["memtui_objects"] > 0


def _summary(containers: list[dict[str, Any]]) -> HeapSummary | None:
    doc = {"census": [["dict", 10, 1000]], "totals": {"objects": 10}, "containers": containers}
    return decode_heap_summary(doc)


def test_a_week_of_summaries_keeps_memory_bounded() -> None:
    from memtui.engine.culprits.retainers import MAX_TRACKED, SERIES_LEN

    growth = RetainerGrowth()
    for i in range(2016):  # a week at one summary every 5 minutes
        churn = [
            {"path": f"app.CACHE[{i * 50 + k}]", "address": i * 50 + k, "items": 40, "bytes": 9}
            for k in range(50)
        ]  # fresh containers every time, never seen again
        leak = {"path": "app.LOG", "address": 1, "items": 100 + i, "bytes": 1000 + 100 * i}
        growth.observe(300.0 * i, _summary([leak, *churn]))
    assert len(growth._tracked) <= MAX_TRACKED
    assert all(len(t.points) <= SERIES_LEN for t in growth._tracked.values())
    (suspect,) = [s for s in growth.suspects() if s.path == "app.LOG"]
    assert suspect.items == 100 + 2015 and suspect.first_seen_s == 0.0


def test_signature_suspects_explained_by_a_path_are_not_repeated() -> None:
    from memtui.engine.culprits.analysis import CulpritAnalysis
    from memtui.engine.culprits.signatures import Suspect

    culprits = CulpritAnalysis()
    for i in range(6):
        culprits.observe_heap_summary(
            10.0 * i,
            _summary(
                [{"path": "app.BUS.handlers", "address": 7, "items": 100 * (i + 1),
                  "bytes": 10_000 * (i + 1), "holds": "method", "hint": "event_listeners"}]
            ),
        )  # fmt: skip
    type_suspect = Suspect("growing_type", "method", "`method` objects grew", 0, 1, 1.0, 0.9)
    same_container = Suspect("event_listeners", "app.BUS.handlers", "list grew", 0, 1, 1.0, 0.9)
    culprits.signatures.suspects = lambda: [type_suspect, same_container]  # type: ignore[method-assign]
    named = culprits.suspects()
    assert [s.path for s in named] == ["app.BUS.handlers"]
    assert named[0].kind == "event_listeners" and named[0].holds == "method"
