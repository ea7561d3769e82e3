"""Provides heap-dump analysis: retained sizes by type, largest retainers, chains.

``load_dump`` (memtui.engine.heap.reader, re-exported here) reads a ``.mtdump`` file into numpy
columns. ``analyze_heap_dump`` builds the dominator tree (memtui.engine.heap.dominators) and
answers "what holds the memory, and through which chain of references": JSON-serialisable.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from memtui.engine.heap.dominators import (
    IntArray,
    Tree,
    dominators,
    inherit,
    outermost,
    retained_sizes,
    spanning_tree,
)
from memtui.engine.heap.reader import HeapDump as HeapDump
from memtui.engine.heap.reader import load_dump as load_dump
from memtui.errors import HeapDumpError
from memtui.probe.heap.dump import VERSION
from memtui.probe.heap.walk import own_module

ARROW = " → "
SAMPLE_CHAINS = 20000
Step = tuple[str, str, int]
"""(kind, text, list index or -1): kind is root | named | node | elided."""
CHAIN_HEAD = 12
CHAIN_TAIL = 12
"""Objects kept at each end of a long chain in the --type listing (the middle is elided)."""


@dataclass
class Analysis:
    """A dump with its spanning tree, dominator tree and retained sizes."""

    dump: HeapDump
    tree: Tree
    idom: IntArray
    retained: IntArray
    count: IntArray
    timings: dict[str, float]
    root_label: dict[int, str] = field(default_factory=dict)
    own: npt.NDArray[np.bool_] | None = None
    """Nodes memtui's own objects keep alive (its modules, instances of its classes): never
    reported as the program's memory."""
    _heads: dict[int, tuple[tuple[int, ...], int]] = field(default_factory=dict, repr=False)

    def chain_steps(self, v: int, elide: bool = False) -> list[Step]:
        """The shortest reference chain from a root to ``v`` as steps; with ``elide``, a chain
        of more than CHAIN_HEAD + CHAIN_TAIL objects keeps its ends and says how many it left
        out, so the chains of a 100,000-node linked list take linear, not quadratic, time."""
        head, depth = self._head(v)
        if not elide or depth <= CHAIN_HEAD + CHAIN_TAIL:
            path = list(head) if depth <= len(head) else self._full_path(v)
            return self._steps(path, 0)
        tail = [v]
        while len(tail) < CHAIN_TAIL:
            tail.append(int(self.tree.parent[tail[-1]]))
        tail.reverse()
        steps = self._steps(list(head), 0)
        steps.append(("elided", f"… {depth - len(head) - len(tail)} more …", -1))
        steps.extend(self._steps(tail, 1))
        return steps

    def _full_path(self, v: int) -> list[int]:
        path = [v]
        parent, vroot = self.tree.parent, self.tree.vroot
        while parent[path[-1]] != vroot and len(path) < 10000:
            path.append(int(parent[path[-1]]))
        path.reverse()
        return path

    def _head(self, v: int) -> tuple[tuple[int, ...], int]:
        """The first CHAIN_HEAD objects of ``v``'s root chain and its length, memoised along
        the way up, so chains that share a prefix walk it once."""
        memo = self._heads
        parent, vroot = self.tree.parent, self.tree.vroot
        climbed: list[int] = []
        u = v
        while u not in memo and parent[u] != vroot:
            climbed.append(u)
            u = int(parent[u])
        head, depth = memo.get(u) or ((u,), 1)
        memo[u] = (head, depth)
        for w in reversed(climbed):
            depth += 1
            if len(head) < CHAIN_HEAD:
                head = (*head, w)
            memo[w] = (head, depth)
        return memo[v]

    def _steps(self, path: list[int], first: int) -> list[Step]:
        """Steps for ``path``; it starts at a root unless ``first`` (the tail of an elided
        chain, which starts with an object)."""
        d = self.dump
        steps: list[Step] = []
        if first:
            steps.append(("node", self._token(path[0]), -1))
        else:
            r = path[0]
            label = self.root_label.get(r)
            if label is None:
                why = "unreferenced" if self.tree.phase[r] == 1 else "unrooted"
                label = f"({why}) {self._token(r)}"
            steps.append(("root", label, -1))
        for u, w in itertools.pairwise(path):
            name = d.named.get((u, w))
            if name is not None:
                steps.append(("named", name, -1))
            steps.append(("node", self._token(w), -1))
            if d.short_names[d.types[u]] in ("list", "tuple") and steps[-2][0] == "node":
                row = d.edges[d.offsets[u] : d.offsets[u + 1]]
                kind, text, _ = steps[-2]
                steps[-2] = (kind, text, int(np.flatnonzero(row == w)[0]))
        return steps

    def _token(self, v: int) -> str:
        d = self.dump
        short = d.short_names[d.types[v]]
        label = d.labels.get(v)
        return f"{short} {label}" if label and short in ("function", "module", "type") else short

    def chain(self, v: int, shape: bool = False, elide: bool = False) -> str:
        return render(self.chain_steps(v, elide), shape)


def render(steps: list[Step], shape: bool = False) -> str:
    """'module app → global CACHE → dict → list[3] → Order' (shape: indices as [*], and an
    elided middle without its length, so the nodes of one long chain share a shape)."""
    out = []
    for kind, text, index in steps:
        if kind == "elided" and shape:
            text = "…"
        out.append(text if index < 0 else f"{text}[{'*' if shape else index}]")
    return ARROW.join(out)


def analyze(dump: HeapDump) -> Analysis:
    """Spanning tree, dominators and retained sizes of a loaded dump."""
    t0 = time.perf_counter()
    rank = {"module": 0, "frame": 1, "class": 2}
    ordered = sorted(dump.roots, key=lambda r: rank.get(r[1], 3))
    root_label: dict[int, str] = {}
    for node, _, label in ordered:
        root_label.setdefault(node, label)
    roots = np.array([r for r, _, _ in ordered], np.int64)
    tree = spanning_tree(dump.n, dump.offsets, dump.edges, roots)
    t1 = time.perf_counter()
    idom = dominators(dump.n, dump.offsets, dump.edges, tree)
    t2 = time.perf_counter()
    retained, count = retained_sizes(dump.sizes, idom, tree)
    t3 = time.perf_counter()
    timings = {"graph_s": t1 - t0, "dominators_s": t2 - t1, "retained_s": t3 - t2}
    own = own_nodes(dump, idom, tree)
    return Analysis(dump, tree, idom, retained, count, timings, root_label, own)


def own_nodes(dump: HeapDump, idom: IntArray, tree: Tree) -> npt.NDArray[np.bool_]:
    """memtui's modules and instances of its classes, and everything only they keep alive
    (their dominator subtrees, marked top down the dominator tree)."""
    own_type = np.array(
        [own_module(name.rsplit(".", 1)[0]) and "." in name for name in dump.type_names], np.bool_
    )
    mark = np.zeros(dump.n + 1, np.bool_)
    if own_type.size:
        mark[: dump.n] = own_type[dump.types]
    for node, kind, label in dump.roots:
        if kind == "module" and own_module(label.removeprefix("module ")):
            mark[node] = True
    if mark.any():
        inherit(mark, idom, tree)
    return mark[: dump.n]


def top_objects(a: Analysis, limit: int = 30) -> list[dict[str, Any]]:
    """Types by retained size (nested objects of one type counted once), with count and
    shallow size."""
    d = a.dump
    k = len(d.type_names)
    mine = ~a.own if a.own is not None else np.ones(d.n, np.bool_)
    counts = np.bincount(d.types[mine], minlength=k)
    shallow = np.bincount(d.types[mine], weights=d.sizes[mine], minlength=k)
    outer = outermost(d.types, a.idom, a.tree, a.count) & mine
    ret = np.bincount(d.types[outer], weights=a.retained[: d.n][outer], minlength=k)
    best = np.lexsort((-shallow, -ret))[:limit]
    return [
        {
            "type": d.type_names[t],
            "count": int(counts[t]),
            "shallow_size": int(shallow[t]),
            "retained_size": int(ret[t]),
        }
        for t in best.tolist()
        if counts[t]
    ]


def largest_retainers(a: Analysis, limit: int = 20, share: float = 0.9) -> list[dict[str, Any]]:
    """The objects retaining the most memory, each descended through 'wrappers' (a module, its
    dict...) to the child holding at least ``share`` of it, so the real holder is named."""
    n = a.dump.n
    ret = a.retained
    kids = a.tree.order
    # each node's child of largest retained size (the first in discovery order on ties)
    up = a.idom[kids]
    rk = ret[kids]
    most = np.full(n + 1, -1, np.int64)
    np.maximum.at(most, up, rk)
    hit = np.flatnonzero(rk == most[up])
    del rk, most
    hit = hit.astype(kids.dtype)
    never = np.iinfo(kids.dtype).max
    pick = np.full(n + 1, never, kids.dtype)
    np.minimum.at(pick, up[hit], hit)
    del up, hit
    best_child = np.full(n + 1, -1, kids.dtype)
    has = pick < never
    best_child[has] = kids[pick[has]]
    del pick, has
    seen: dict[int, None] = {}
    own = a.own if a.own is not None else np.zeros(n, np.bool_)
    holder: dict[int, int] = {}  # where the descent from a node ends (linked lists: once)
    for start in _largest(ret[:n], limit * 10).tolist():
        path = []
        v = start
        while v not in holder:
            c = int(best_child[v])
            if c < 0 or int(ret[c]) < share * int(ret[v]):
                holder[v] = v
                break
            path.append(v)
            v = c
        end = holder[v]
        for u in path:
            holder[u] = end
        if not own[end]:
            seen.setdefault(end, None)
    picked = sorted(seen, key=lambda v: (-int(ret[v]), v))[:limit]
    return [describe(a, v) for v in picked]


def _largest(values: IntArray, k: int) -> IntArray:
    """Indices of the ``k`` largest values, largest first, ties by index: the head of a stable
    descending argsort, without sorting everything."""
    n = values.size
    if k <= 0 or n == 0:
        return np.empty(0, np.int64)
    if k < n:
        cut = np.partition(values, n - k)[n - k]
        cand = np.flatnonzero(values >= cut)
    else:
        cand = np.arange(n)
    return cand[np.argsort(-values[cand], kind="stable")][:k]


def describe(a: Analysis, v: int) -> dict[str, Any]:
    d = a.dump
    return {
        "address": hex(int(d.addrs[v])),
        "type": d.type_names[d.types[v]],
        "label": d.labels.get(v, ""),
        "shallow_size": int(d.sizes[v]),
        "retained_size": int(a.retained[v]),
        "retained_objects": int(a.count[v]),
        "chain": a.chain(v),
    }


def find_type(d: HeapDump, name: str) -> list[int]:
    """Type indices whose full ('mod.Qual') or bare qualified name is ``name``."""
    return [
        i
        for i, (f, q) in enumerate(zip(d.type_names, d.short_names, strict=False))
        if name in (f, q)
    ]


def chains_for_type(a: Analysis, name: str, limit: int = 10) -> dict[str, Any]:
    """Shortest chains from a root to the instances of a type, grouped by shape."""
    d = a.dump
    tix = find_type(d, name)
    nodes = np.flatnonzero(np.isin(d.types, tix))
    sampled = nodes.size > SAMPLE_CHAINS
    if sampled:
        nodes = nodes[np.argsort(-a.retained[nodes], kind="stable")[:SAMPLE_CHAINS]]
    groups: dict[str, list[int]] = {}
    for v in nodes.tolist():
        steps = a.chain_steps(v, elide=True)
        groups.setdefault(render(steps, shape=True), []).append(v)
    rows: list[dict[str, Any]] = []
    for shape, members in groups.items():
        top = max(members, key=lambda v: (int(a.retained[v]), -v))
        rows.append(
            {
                "chain": shape,
                "count": len(members),
                "retained_size": int(a.retained[members].sum()),
                "example": a.chain(top, elide=True),
                "example_address": hex(int(d.addrs[top])),
            }
        )
    rows.sort(key=lambda r: (-r["count"], -r["retained_size"], r["chain"]))
    return {
        "type": name,
        "types_matched": [d.type_names[t] for t in tix],
        "instances": int(np.isin(d.types, tix).sum()),
        "sampled": sampled,
        "chains": rows[:limit],
    }


def find_object(d: HeapDump, address: str | int) -> int:
    value = int(address, 0) if isinstance(address, str) else int(address)
    hit = np.flatnonzero(d.addrs == value)
    if hit.size == 0:
        raise HeapDumpError(f"{d.path}: no object at address {hex(value)}")
    return int(hit[0])


def summary(a: Analysis) -> dict[str, Any]:
    d = a.dump
    phase = a.tree.phase
    return {
        "objects": d.n,
        "edges": int(d.edges.size),
        "types": len(d.type_names),
        "roots": len(d.roots),
        "total_size": int(d.sizes.sum()),
        "rooted_size": int(d.sizes[phase == 0].sum()),
        "unreferenced_size": int(d.sizes[phase == 1].sum()),
        "unrooted_size": int(d.sizes[phase == 2].sum()),
        "memtui_objects": int(a.own.sum()) if a.own is not None else 0,
        "memtui_size": int(d.sizes[a.own].sum()) if a.own is not None else 0,
    }


def analyze_heap_dump(
    path: str,
    type_name: str | None = None,
    address: str | int | None = None,
    top: int = 30,
) -> dict[str, Any]:
    """Everything the CLI and API show for one dump, JSON-serialisable."""
    t0 = time.perf_counter()
    dump = load_dump(str(path))
    t1 = time.perf_counter()
    a = analyze(dump)
    result: dict[str, Any] = {
        "file": str(path),
        "format_version": VERSION,
        "meta": dump.meta,
        "summary": summary(a),
        "top_objects": top_objects(a, top),
        "largest_retainers": largest_retainers(a, min(top, 20)),
    }
    if type_name:
        result["chains"] = chains_for_type(a, type_name)
    if address is not None:
        result["object"] = describe(a, find_object(dump, address))
    a.timings["load_s"] = t1 - t0
    a.timings["total_s"] = time.perf_counter() - t0
    result["timings"] = {k: round(v, 4) for k, v in a.timings.items()}
    return result


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def format_analysis(r: dict[str, Any]) -> str:
    """The analysis as text tables for the terminal."""
    m, s = r["meta"], r["summary"]
    lines = [
        f"{r['file']}: pid {m.get('pid')} python {m.get('python')}, {m.get('writer')} writer "
        f"(pause {float(m.get('pause_s', 0)) * 1e3:.1f} ms), RSS {_mb(int(m.get('rss_bytes', 0)))}",
        f"{s['objects']:,} objects, {s['edges']:,} references, {_mb(s['total_size'])} "
        f"({_mb(s['unreferenced_size'] + s['unrooted_size'])} not reachable from a root)",
        "",
        f"{'retained':>12} {'shallow':>12} {'count':>10}  type",
    ]
    for row in r["top_objects"]:
        lines.append(
            f"{_mb(row['retained_size']):>12} {_mb(row['shallow_size']):>12} "
            f"{row['count']:>10,}  {row['type']}"
        )
    lines += ["", "largest retainers:"]
    for row in r["largest_retainers"]:
        lines.append(f"{_mb(row['retained_size']):>12}  {row['chain']}  ({row['address']})")
    chains = r.get("chains")
    if chains:
        lines += ["", f"chains to {chains['type']} ({chains['instances']:,} instances):"]
        for row in chains["chains"]:
            lines.append(f"{row['count']:>10,}  {row['chain']}")
            lines.append(f"{'':>10}  e.g. {row['example']}")
    obj = r.get("object")
    if obj:
        lines += ["", f"{obj['address']} {obj['type']}: retains {_mb(obj['retained_size'])}"]
        lines.append(f"  {obj['chain']}")
    return "\n".join(lines)
