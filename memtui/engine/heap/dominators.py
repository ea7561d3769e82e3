"""Provides the graph side of heap-dump analysis: spanning tree, dominator tree, retained sizes.

The dominator tree is computed from a virtual root joined to every root with the iterative
algorithm of Cooper, Harvey and Kennedy, vectorised with numpy: start from a spanning tree (any
spanning tree over-approximates dominators), then repeatedly set each node with several
predecessors to the nearest common ancestor of its predecessors, all nodes at once, until nothing
changes. Nodes with one predecessor are dominated by it and never revisited. The two-finger
common-ancestor walk runs on whole arrays while many pairs remain and in plain Python for the
long thin tails (linked lists), so deep chains stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
SMALL = 64
"""Below this many items, a loop in Python beats numpy's per-call overhead."""


@dataclass
class Tree:
    """A spanning tree in discovery order; ``vroot`` (== n) is the virtual root."""

    order: IntArray
    """Nodes in discovery order (parents before children)."""
    parent: IntArray
    """Spanning-tree parent of each node (vroot for roots)."""
    phase: npt.NDArray[np.int8]
    """0: reached from the named roots, 1: from an unreferenced object, 2: from an unrooted one."""
    vroot: int


def _gather(offsets: IntArray, edges: IntArray, frontier: IntArray) -> tuple[IntArray, IntArray]:
    """(source, target) of every out-edge of ``frontier``, in frontier then edge order."""
    starts = offsets[frontier]
    counts = offsets[frontier + 1] - starts
    total = int(counts.sum())
    if total == 0:
        empty = np.empty(0, np.int64)
        return empty, empty
    src = np.repeat(frontier, counts)
    base = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return src, edges[base + np.arange(total, dtype=np.int64)]


def _bfs(
    offsets: IntArray,
    edges: IntArray,
    seeds: IntArray,
    parent: IntArray,
    visited: npt.NDArray[np.bool_],
    out: list[IntArray],
) -> None:
    """Breadth-first from ``seeds`` (already marked); the first discoverer becomes the parent."""
    frontier = seeds
    while frontier.size:
        src, dst = _gather(offsets, edges, frontier)
        keep = ~visited[dst]
        src, dst = src[keep], dst[keep]
        if dst.size == 0:
            break
        _, first = np.unique(dst, return_index=True)
        first.sort()
        new, par = dst[first], src[first]
        visited[new] = True
        parent[new] = par
        out.append(new)
        frontier = new


def spanning_tree(
    n: int, offsets: IntArray, edges: IntArray, roots: IntArray, max_rounds: int = 200
) -> Tree:
    """Breadth-first spanning tree from ``roots`` (in order), then from unreferenced objects,
    then from whatever is still unreached (cycles nothing points into)."""
    vroot = n
    parent = np.full(n, -1, np.int64)
    phase = np.zeros(n, np.int8)
    visited = np.zeros(n, np.bool_)
    parts: list[IntArray] = []
    seeds = roots[~visited[roots]] if roots.size else roots
    seeds = seeds[np.sort(np.unique(seeds, return_index=True)[1])]
    for p, pick in enumerate(("roots", "unreferenced", "rest")):
        if pick == "unreferenced":
            indeg = np.bincount(edges, minlength=n)
            seeds = np.flatnonzero((indeg == 0) & ~visited)
        if pick == "rest":
            seeds = np.empty(0, np.int64)
        rounds = 0
        while True:
            if pick == "rest":
                left = np.flatnonzero(~visited)
                if left.size == 0:
                    break
                rounds += 1
                seeds = left[:1] if rounds < max_rounds else left
            before = sum(a.size for a in parts)
            visited[seeds] = True
            parent[seeds] = vroot
            parts.append(seeds.astype(np.int64))
            _bfs(offsets, edges, seeds, parent, visited, parts)
            phase[np.concatenate(parts)[before:]] = p
            if pick != "rest":
                break
    order = np.concatenate(parts) if parts else np.empty(0, np.int64)
    return Tree(order, parent, phase, vroot)


def dominators(n: int, offsets: IntArray, edges: IntArray, tree: Tree) -> IntArray:
    """Immediate dominator of every node (vroot for the roots); index n is the virtual root."""
    vroot = tree.vroot
    num = np.empty(n + 1, np.int64)
    num[vroot] = 0
    num[tree.order] = np.arange(1, tree.order.size + 1)
    idom = np.empty(n + 1, np.int64)
    idom[:n] = tree.parent
    idom[vroot] = vroot
    src = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
    dst = edges
    keep = (src != dst) & (tree.parent[dst] != vroot)
    key = np.unique(dst[keep] * (n + 1) + src[keep])  # distinct (target, source), by target
    dst, src = key // (n + 1), key % (n + 1)
    counts = np.bincount(dst, minlength=n)
    multi = counts[dst] > 1
    dst, src = dst[multi], src[multi]
    if dst.size == 0:
        return idom
    targets, starts = np.unique(dst, return_index=True)
    seglen = np.diff(np.append(starts, dst.size))
    while True:
        new = _reduce(src, starts, seglen, idom, num)
        if np.array_equal(new, idom[targets]):
            return idom
        idom[targets] = new


def _reduce(
    values: IntArray, starts: IntArray, seglen: IntArray, idom: IntArray, num: IntArray
) -> IntArray:
    """Nearest common dominator-tree ancestor of each segment of ``values``."""
    vals = values.copy()
    starts = starts.copy()
    seglen = seglen.copy()
    while int(seglen.max()) > 1:
        seg = np.repeat(np.arange(seglen.size), seglen)
        pos = np.arange(vals.size) - np.repeat(starts, seglen)
        even = pos % 2 == 0
        partnered = np.flatnonzero(even & (pos + 1 < seglen[seg]))
        vals[partnered] = _intersect(vals[partnered], vals[partnered + 1], idom, num)
        vals = vals[even]
        seglen = (seglen + 1) // 2
        starts = np.cumsum(seglen) - seglen
    return np.asarray(vals, np.int64)


def _intersect(a: IntArray, b: IntArray, idom: IntArray, num: IntArray) -> IntArray:
    """Pairwise two-finger walk: move the finger with the later number up until both meet."""
    a = a.copy()
    b = b.copy()
    live = np.flatnonzero(a != b)
    while live.size > SMALL:
        x, y = a[live], b[live]
        up_x = num[x] > num[y]
        x[up_x] = idom[x[up_x]]
        y[~up_x] = idom[y[~up_x]]
        a[live], b[live] = x, y
        live = live[x != y]
    if live.size:
        numl = num
        for i in live.tolist():
            p, q = int(a[i]), int(b[i])
            while p != q:
                while numl[p] > numl[q]:
                    p = int(idom[p])
                while numl[q] > numl[p]:
                    q = int(idom[q])
            a[i] = p
    return a


def retained_sizes(sizes: IntArray, idom: IntArray, order: IntArray) -> tuple[IntArray, IntArray]:
    """(retained size, dominator-subtree node count) of every node; index n is the virtual root."""
    n = sizes.size
    ret = [*sizes.tolist(), 0]
    cnt = [1] * (n + 1)
    dom = idom.tolist()
    for v in reversed(order.tolist()):
        p = dom[v]
        ret[p] += ret[v]
        cnt[p] += cnt[v]
    return np.array(ret, np.int64), np.array(cnt, np.int64)


def outermost(
    types: IntArray, idom: IntArray, order: IntArray, count: IntArray
) -> npt.NDArray[np.bool_]:
    """True for nodes with no proper dominator of their own type (so retained sizes summed by
    type count nested same-type objects once), via preorder intervals of the dominator tree."""
    n = types.size
    kids = order[np.lexsort((np.arange(order.size), idom[order]))]
    parents = idom[kids]
    sub = count[kids]
    excl = np.cumsum(sub) - sub
    group_start = np.r_[0, np.flatnonzero(np.diff(parents)) + 1]
    first = np.repeat(group_start, np.diff(np.r_[group_start, kids.size]))
    sib = np.zeros(n + 1, np.int64)
    sib[kids] = excl - excl[first]
    pre = [0] * (n + 1)
    dom = idom.tolist()
    sibl = sib.tolist()
    for v in order.tolist():
        pre[v] = pre[dom[v]] + 1 + sibl[v]
    prea = np.array(pre[:n], np.int64)
    end = prea + count[:n]
    by = np.lexsort((prea, types))
    t_sorted = types[by].astype(np.int64)
    combined = t_sorted * (n + 2) + end[by]
    running = np.maximum.accumulate(combined)
    prev = np.r_[-1, running[:-1]]
    prev_end = prev - t_sorted * (n + 2)
    nested = prea[by] < prev_end
    out = np.ones(n, np.bool_)
    out[by[nested]] = False
    return out
