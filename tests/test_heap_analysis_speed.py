"""Provides tests that the vectorised heap-dump analysis equals simple reference algorithms.

Real dumps written by memtui from real processes (no mocks): a deep linked list (one node per
discovery round: the node-by-node path), shared objects and diamonds (several predecessors:
the dominator iteration), rooted and unrooted cycles, nested same-type containers, memtui's
own objects. Each is checked against plain-Python spanning tree, Cooper-Harvey-Kennedy
dominators on a depth-first reverse postorder, retained sizes by recursion, same-type nesting
by a walk of the dominator tree, and the old sort-based top retainers.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from memtui.engine.heap.dumps import (
    Analysis,
    HeapDump,
    analyze,
    largest_retainers,
    load_dump,
    top_objects,
)

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = textwrap.dedent("""\
    import gc, sys
    sys.path.insert(0, sys.argv[1])
    gc.disable()  # keep the garbage cycles below: they are the dump's unrooted objects
    from memtui.probe.heap.dump import write_heap_dump

    class Node:
        __slots__ = ("next", "data")

    class Tree:
        def __init__(self, depth):
            self.kids = [Tree(depth - 1) for _ in range(2)] if depth else []
            self.blob = bytes(40 + depth)

    def chain(n):
        head = None
        for i in range(n):
            node = Node()
            node.next, node.data = head, "n%d" % i
            head = node
        return head

    CHAIN = chain(int(sys.argv[3]))
    SHARED = ["shared", bytes(500)]
    HOLDERS = [{"s": SHARED, "i": i, "t": (i, str(i))} for i in range(2000)]
    DIAMOND = {"left": [SHARED], "right": [SHARED], "top": bytes(300)}
    TREES = [Tree(6) for _ in range(3)]
    NESTED = [[[[bytes(i)] for i in range(5)]] for _ in range(50)]
    RING = [Node() for _ in range(300)]
    for a, b in zip(RING, RING[1:] + RING[:1]):
        a.next, a.data = b, [a]
    HEAD = RING[0]
    del RING, a, b

    def garbage():
        for i in range(200):
            x, y = [i], [bytes(i)]
            x.append(y)
            y.append(x)

    garbage()
    def hold(depth):
        here = [bytes(64)] * 3
        if depth:
            return hold(depth - 1)
        print(write_heap_dump(sys.argv[2], sys.argv[4]).path, flush=True)
        return here

    hold(5)
    """)


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> list[HeapDump]:
    tmp = tmp_path_factory.mktemp("reference")
    script = tmp / "program.py"
    script.write_text(PROGRAM)
    out = []
    for chain, writer in ((3000, "fork"), (20, "inplace"), (800, "fork")):
        path = tmp / f"{writer}-{chain}.mtdump"
        subprocess.run(
            [sys.executable, str(script), str(ROOT), str(path), str(chain), writer],
            check=True,
            timeout=120,
            capture_output=True,
        )
        out.append(load_dump(str(path)))
    return out


@pytest.fixture(scope="module")
def analyses(dumps: list[HeapDump]) -> list[Analysis]:
    return [analyze(d) for d in dumps]


def _adjacency(d: HeapDump) -> list[list[int]]:
    off, edges = d.offsets.tolist(), d.edges.tolist()
    return [edges[off[v] : off[v + 1]] for v in range(d.n)]


def _ordered_roots(d: HeapDump) -> list[int]:
    rank = {"module": 0, "frame": 1, "class": 2}
    return [r for r, _, _ in sorted(d.roots, key=lambda r: rank.get(r[1], 3))]


def _reference_tree(d: HeapDump, adj: list[list[int]]) -> tuple[list[int], list[int], list[int]]:
    """(order, parent, phase): breadth-first, first discoverer is the parent; seeds are the
    roots in order, then objects nothing refers to, then the lowest unreached node (199 times),
    then all the rest at once."""
    n = d.n
    parent, phase, order = [-1] * n, [0] * n, []
    seen = [False] * n
    indeg = [0] * n
    for row in adj:
        for w in row:
            indeg[w] += 1

    def grow(seeds: list[int], p: int) -> None:
        fresh = []
        for s in seeds:
            if not seen[s]:
                seen[s] = True
                fresh.append(s)
        level = fresh
        for s in level:
            parent[s], phase[s] = n, p
        order.extend(level)
        while level:
            nxt = []
            for u in level:
                for w in adj[u]:
                    if not seen[w]:
                        seen[w], parent[w], phase[w] = True, u, p
                        nxt.append(w)
            order.extend(nxt)
            level = nxt

    grow(_ordered_roots(d), 0)
    grow([v for v in range(n) if indeg[v] == 0 and not seen[v]], 1)
    rounds = 0
    while not all(seen):
        rounds += 1
        left = [v for v in range(n) if not seen[v]]
        grow(left[:1] if rounds < 200 else left, 2)
    return order, parent, phase


def _reference_idom(n: int, adj: list[list[int]], parent: list[int]) -> list[int]:
    """Cooper, Harvey and Kennedy's iterative dominators, one node at a time in reverse
    postorder of a depth-first search from the virtual root n (joined to the tree's seeds)."""
    succ = [*adj, [v for v in range(n) if parent[v] == n]]
    preds: list[list[int]] = [[] for _ in range(n + 1)]
    for u, row in enumerate(succ):
        for w in row:
            preds[w].append(u)
    post, seen, stack = [], [False] * (n + 1), [(n, 0)]
    seen[n] = True
    while stack:
        u, i = stack.pop()
        if i < len(succ[u]):
            stack.append((u, i + 1))
            w = succ[u][i]
            if not seen[w]:
                seen[w] = True
                stack.append((w, 0))
        else:
            post.append(u)
    rank = {v: i for i, v in enumerate(post)}
    idom = [-1] * (n + 1)
    idom[n] = n
    changed = True
    while changed:
        changed = False
        for v in reversed(post[:-1]):
            new = -1
            for p in preds[v]:
                if idom[p] < 0:
                    continue
                if new < 0:
                    new = p
                    continue
                a, b = p, new
                while a != b:
                    while rank[a] < rank[b]:
                        a = idom[a]
                    while rank[b] < rank[a]:
                        b = idom[b]
                new = a
            if idom[v] != new:
                idom[v], changed = new, True
    return idom[:n]


def _dominator_kids(n: int, idom: list[int]) -> list[list[int]]:
    kids: list[list[int]] = [[] for _ in range(n + 1)]
    for v in range(n):
        kids[idom[v]].append(v)
    return kids


def _reference_sums(d: HeapDump, kids: list[list[int]]) -> tuple[list[int], list[int]]:
    n, sizes = d.n, d.sizes.tolist()
    ret, cnt = [*sizes, 0], [1] * (n + 1)
    post, stack = [], [n]
    while stack:
        u = stack.pop()
        post.append(u)
        stack.extend(kids[u])
    for u in reversed(post):
        for w in kids[u]:
            ret[u] += ret[w]
            cnt[u] += cnt[w]
    return ret, cnt


def _reference_outermost(d: HeapDump, kids: list[list[int]]) -> list[bool]:
    """True where no proper dominator has the node's type: a walk keeping the path's types."""
    types = d.types.tolist()
    out = [True] * d.n
    on_path: Counter[int] = Counter()
    stack: list[tuple[int, bool]] = [(w, True) for w in kids[d.n]]
    while stack:
        v, entering = stack.pop()
        if not entering:
            on_path[types[v]] -= 1
            continue
        out[v] = on_path[types[v]] == 0
        on_path[types[v]] += 1
        stack.append((v, False))
        stack.extend((w, True) for w in kids[v])
    return out


def _reference_retainers(a: Analysis, limit: int, share: float = 0.9) -> list[int]:
    """The old sort-based choice of the largest retainers (node numbers)."""
    n, ret, kids = a.dump.n, a.retained, a.tree.order
    best_child = np.full(n + 1, -1, np.int64)
    by = kids[np.lexsort((-ret[kids], a.idom[kids]))]
    firsts = np.r_[True, a.idom[by][1:] != a.idom[by][:-1]]
    best_child[a.idom[by][firsts]] = by[firsts]
    assert a.own is not None
    seen: dict[int, None] = {}
    best, rl, own = best_child.tolist(), ret.tolist(), a.own.tolist()
    for v in np.argsort(-ret[:n], kind="stable")[: limit * 10].tolist():
        while best[v] >= 0 and rl[best[v]] >= share * rl[v]:
            v = best[v]
        if not own[v]:
            seen.setdefault(v, None)
    return sorted(seen, key=lambda v: (-rl[v], v))[:limit]


def test_the_dumps_exercise_every_path(analyses: list[Analysis]) -> None:
    for a in analyses:
        phases = set(a.tree.phase.tolist())
        assert {0, 1, 2} <= phases, phases  # rooted, unreferenced and unrooted objects
        sizes = np.diff(a.tree.levels)
        assert (sizes < 16).any() and (sizes >= 16).any()  # node by node and vectorised
        assert a.own is not None and a.own.any()
    assert max(int(np.diff(a.tree.levels).size) for a in analyses) > 3000


def test_spanning_tree_and_dominators_equal_the_reference(analyses: list[Analysis]) -> None:
    for a in analyses:
        d = a.dump
        adj = _adjacency(d)
        order, parent, phase = _reference_tree(d, adj)
        assert a.tree.order.tolist() == order
        assert a.tree.parent.tolist() == parent
        assert a.tree.phase.tolist() == phase
        assert a.idom[: d.n].tolist() == _reference_idom(d.n, adj, parent)


def test_retained_sizes_nesting_and_own_objects_equal_the_reference(
    analyses: list[Analysis],
) -> None:
    from memtui.engine.heap.dominators import outermost

    for a in analyses:
        d = a.dump
        kids = _dominator_kids(d.n, a.idom[: d.n].tolist())
        ret, cnt = _reference_sums(d, kids)
        assert a.retained.tolist() == ret
        assert a.count.tolist() == cnt
        assert int(a.retained[d.n]) == int(d.sizes.sum())
        assert outermost(d.types, a.idom, a.tree, a.count).tolist() == _reference_outermost(d, kids)
        # memtui's own: what a memtui module or instance dominates, by a walk from each mark
        assert a.own is not None
        mark = np.r_[a.own, False]
        stack = [v for v in range(d.n) if mark[v] and not mark[a.idom[v]]]
        seen = set(stack)
        while stack:
            for w in kids[stack.pop()]:
                assert a.own[w]
                seen.add(w)
                stack.append(w)
        assert seen == set(np.flatnonzero(a.own).tolist())


def test_top_tables_equal_the_reference(analyses: list[Analysis]) -> None:
    for a in analyses:
        d = a.dump
        for limit in (1, 5, 20, 200):
            picked = [int(r["address"], 16) for r in largest_retainers(a, limit)]
            assert picked == [int(d.addrs[v]) for v in _reference_retainers(a, limit)]
        rows = {r["type"]: r for r in top_objects(a, len(d.type_names))}
        kids = _dominator_kids(d.n, a.idom[: d.n].tolist())
        outer = _reference_outermost(d, kids)
        assert a.own is not None
        expected: Counter[str] = Counter()
        for v in range(d.n):
            if outer[v] and not a.own[v]:
                expected[d.type_names[d.types[v]]] += int(a.retained[v])
        assert {t: r["retained_size"] for t, r in rows.items()} == {t: expected[t] for t in rows}
