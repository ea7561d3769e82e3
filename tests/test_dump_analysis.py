"""Provides tests of dump analysis: dominators, diff, CLI, agent and the threshold trigger."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from memtui.cli import main
from memtui.engine.heap.diff import diff_heap_dumps
from memtui.engine.heap.dominators import dominators, spanning_tree
from memtui.engine.profiler import MemoryProfiler
from memtui.probe.clock import FakeClock
from memtui.probe.heap.dump import write_heap_dump
from memtui.probe.memory import MemoryReading

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


def _csr(n: int, adj: dict[int, list[int]]) -> tuple[np.ndarray, np.ndarray]:
    deg = [len(adj.get(v, [])) for v in range(n)]
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(deg, out=offsets[1:])
    edges = np.array([w for v in range(n) for w in adj.get(v, [])], np.int64)
    return offsets, edges


def _reach(n: int, adj: dict[int, list[int]], roots: list[int], removed: int) -> set[int]:
    seen = {r for r in roots if r != removed}
    stack = list(seen)
    while stack:
        for w in adj.get(stack.pop(), []):
            if w != removed and w not in seen:
                seen.add(w)
                stack.append(w)
    return seen


def _brute_idom(n: int, adj: dict[int, list[int]], roots: list[int]) -> list[int]:
    """Immediate dominators by definition (vroot = n joined to the roots)."""
    doms = {v: {u for u in range(n) if v not in _reach(n, adj, roots, u)} | {n} for v in range(n)}
    doms[n] = {n}
    out = []
    for v in range(n):
        strict = doms[v] - {v}
        out.append(next(u for u in strict if all(w in doms[u] for w in strict)))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_dominators_match_the_definition_on_random_graphs(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(2, 40)
    adj = {v: [rng.randrange(n) for _ in range(rng.randint(0, 3))] for v in range(n)}
    roots = rng.sample(range(n), rng.randint(1, 3))
    reachable = _reach(n, adj, roots, -1)
    # the analysis makes everything reachable; compare on graphs where it already is
    adj[roots[0]] = adj.get(roots[0], []) + sorted(set(range(n)) - reachable)
    offsets, edges = _csr(n, adj)
    tree = spanning_tree(n, offsets, edges, np.array(roots, np.int64))
    idom = dominators(n, offsets, edges, tree)
    assert idom[:n].tolist() == _brute_idom(n, adj, roots)


def test_a_long_chain_with_a_back_edge_stays_cheap() -> None:
    n = 200_000
    adj = {v: [v + 1] for v in range(n - 1)}
    adj[n - 1] = [1]  # back edge: node 1 has two predecessors far apart
    offsets, edges = _csr(n, adj)
    tree = spanning_tree(n, offsets, edges, np.array([0], np.int64))
    idom = dominators(n, offsets, edges, tree)
    assert idom[1] == 0 and idom[n - 1] == n - 2 and idom[0] == n


GROWER = textwrap.dedent("""\
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from memtui.probe.heap.dump import write_heap_dump

    class Order:
        def __init__(self, i):
            self.note = "order-%08d" % i

    CACHE = {}
    CACHE["orders"] = [Order(i) for i in range(1000)]
    print(write_heap_dump(sys.argv[2], "fork").path)
    CACHE["orders"] += [Order(i) for i in range(1000, 5000)]
    print(write_heap_dump(sys.argv[3], "fork").path)
    """)


@pytest.fixture(scope="module")
def two_dumps(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    tmp = tmp_path_factory.mktemp("grow")
    script = tmp / "grow.py"
    script.write_text(GROWER)
    a, b = str(tmp / "a.mtdump"), str(tmp / "b.mtdump")
    subprocess.run([sys.executable, str(script), str(ROOT), a, b], check=True, timeout=60)
    return a, b


def test_diff_names_the_type_and_the_retainer_that_grew(two_dumps: tuple[str, str]) -> None:
    diff = diff_heap_dumps(*two_dumps)
    json.dumps(diff)
    grew = {row["type"]: row for row in diff["types"]}
    assert grew["__main__.Order"]["count_delta"] == 4000
    top = diff["retainers"][0]
    assert top["chain"] == "module __main__ → global CACHE → dict → list"
    assert top["retained_before"] > 0 and top["retained_delta"] > 4000 * 48


def test_cli_analyze_json_text_type_and_diff(
    two_dumps: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = two_dumps
    assert main(["heapdump", "analyze", b, "--json", "--type", "Order"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"meta", "summary", "top_objects", "largest_retainers", "chains"} <= set(out)
    assert out["chains"]["instances"] == 5000
    assert out["chains"]["chains"][0]["chain"] == (
        "module __main__ → global CACHE → dict → list[*] → Order"
    )
    assert out["top_objects"][0]["retained_size"] >= out["top_objects"][-1]["retained_size"]
    assert main(["heapdump", "analyze", b, "--type", "Order"]) == 0
    text = capsys.readouterr().out
    assert "global CACHE → dict → list" in text and "chains to Order" in text
    assert main(["heapdump", "analyze", b, "--diff", a]) == 0
    assert "__main__.Order" in capsys.readouterr().out
    bad = Path(a).with_name("junk.mtdump")
    bad.write_bytes(b"junk")
    assert main(["heapdump", "analyze", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a memtui heap dump" in err


def test_cli_heapdump_pid_through_the_agent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from memtui.remote.launcher import launch

    script = tmp_path / "service.py"
    script.write_text("import time\nDATA = [str(i) * 3 for i in range(50000)]\ntime.sleep(60)\n")
    program = launch([sys.executable, str(script)], options={"MEMTUI_TRACE": "off"})
    try:
        assert program.client is not None, program.agent_error
        code = main(["heapdump", str(program.pid), "--out-dir", str(tmp_path / "dumps")])
        out = capsys.readouterr().out
        assert code == 0, out
        files = list((tmp_path / "dumps").glob(f"heapdump-{program.pid}-*.mtdump"))
        assert len(files) == 1 and str(files[0]) in out and "fork writer" in out
        reply = program.client.request("heap_dump", out_dir=str(tmp_path / "d2"), writer="inplace")
        assert reply["writer"] == "inplace" and not reply["pending"]
        assert os.path.exists(reply["path"])
        from memtui.engine.heap.dumps import analyze_heap_dump

        result = analyze_heap_dump(str(files[0]))
        assert result["meta"]["pid"] == program.pid
        assert any("global DATA → list" in r["chain"] for r in result["largest_retainers"])
    finally:
        program.process.kill()
        program.process.wait()
        program.cleanup()


async def test_threshold_crossings_dump_once_each_with_a_cooldown(tmp_path: Path) -> None:
    clock = FakeClock()
    level = {"mb": 100.0}

    def reader() -> MemoryReading:
        rss = int(level["mb"] * MIB)
        return MemoryReading(rss_bytes=rss, vms_bytes=rss)

    profiler = MemoryProfiler(
        alert_threshold_mb=200.0,
        enable_heap_dump=True,
        heap_dump_dir=tmp_path,
        enable_tracemalloc=False,
        enable_census=False,
        sample_interval=1.0,
        snapshot_interval=3600.0,
        clock=clock,
        memory_reader=reader,
    )
    await profiler.start()
    trigger = profiler._dumps.trigger
    assert trigger is not None

    def run(seconds: int, mb: float) -> None:
        level["mb"] = mb
        for _ in range(seconds):
            clock.advance(1.0)
            profiler.poll()
        assert trigger.wait(120)

    run(5, 150.0)
    assert profiler.latest_heap_dump is None
    run(5, 250.0)  # crossing 1: one dump, however long it stays above
    assert len(list(tmp_path.glob("*.mtdump"))) == 1
    first = profiler.latest_heap_dump
    run(5, 150.0)
    run(5, 260.0)  # crossing 2, within the cool-down: no dump
    assert len(list(tmp_path.glob("*.mtdump"))) == 1
    run(700, 150.0)
    run(3, 270.0)  # crossing 3, after the cool-down: a second dump
    dumps = sorted(tmp_path.glob("*.mtdump"))
    assert len(dumps) == 2 and trigger.crossings == 3
    assert profiler.latest_heap_dump != first and profiler.latest_heap_dump in map(str, dumps)
    await profiler.stop()
    explicit = profiler.dump_heap(tmp_path / "explicit.mtdump")
    assert profiler.latest_heap_dump == explicit
    result = await profiler.analyze_heap_dump(explicit, "MemoryProfiler")
    assert result["chains"]["instances"] >= 1
    assert not list(tmp_path.glob("*.part-*"))


def test_write_heap_dump_round_trip_in_this_process(tmp_path: Path) -> None:
    result = write_heap_dump(str(tmp_path / "me.mtdump"))
    assert result.writer in ("fork", "inplace") and os.path.getsize(result.path) == result.bytes


def test_type_chains_of_a_long_linked_list_share_one_elided_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every node of a 3,000-node list has its own chain length: listed whole, the chains
    took quadratic time (56 s) and made 3,000 one-member groups."""
    dump = tmp_path / "chain.mtdump"
    program = textwrap.dedent(
        f"""
        from memtui.probe.heap.dump import write_heap_dump

        class Node:
            def __init__(self, nxt):
                self.next = nxt

        HEAD = None
        for _ in range(3000):
            HEAD = Node(HEAD)
        write_heap_dump({str(dump)!r})
        """
    )
    subprocess.run([sys.executable, "-c", program], check=True, timeout=120, cwd=ROOT)
    assert main(["heapdump", "analyze", str(dump), "--type", "Node", "--json"]) == 0
    chains = json.loads(capsys.readouterr().out)["chains"]
    top = chains["chains"][0]
    assert chains["instances"] == 3000
    assert top["count"] >= 3000 - 24 - 1  # all but the first CHAIN_HEAD + CHAIN_TAIL nodes
    assert " → … → " in top["chain"] and top["chain"].startswith("module __main__ → ")
    assert "more …" in top["example"] and top["example"].endswith("Node")
