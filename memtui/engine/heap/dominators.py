"""Provides the graph side of heap-dump analysis: spanning tree, dominator tree, retained sizes.

The dominator tree is computed from a virtual root joined to every root with the iterative
algorithm of Cooper, Harvey and Kennedy, vectorised with numpy: start from a spanning tree (any
spanning tree over-approximates dominators), then repeatedly set each node with several
predecessors to the nearest common ancestor of its predecessors, all nodes at once, until nothing
changes. Nodes with one predecessor are dominated by it and never revisited. The two-finger
common-ancestor walk runs on whole arrays while many pairs remain and in plain Python for the
long thin tails (linked lists), so deep chains stay cheap.

Node indices are int32 (half the memory of int64; a dump never holds 2**31 objects). Sums over
the dominator tree go round by round of the spanning tree's discovery (``Tree.levels``): a
node's dominators were all discovered in earlier rounds, so one round is one numpy step. Small
rounds (and small breadth-first levels) run in plain Python for the same reason as above.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.signedinteger[Any]]
"""Node indices (int32, or int64 when given so), sizes and counts (int64)."""
SMALL = 64
"""Below this many items, a loop in Python beats numpy's per-call overhead."""
SMALL_ROUND = 16
"""Discovery rounds with fewer nodes than this are summed in plain Python (deep chains)."""


def index_dtype(n: int) -> type[np.signedinteger[Any]]:
    """int32 for node indices (and the virtual root n) while they fit, else int64."""
    return np.int32 if n + 1 < 2**31 else np.int64


def _empty_levels() -> IntArray:
    return np.empty(0, np.int64)


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
    levels: IntArray = field(default_factory=_empty_levels)
    """Start offsets into ``order`` of each discovery round (seeds or one breadth-first level),
    then order.size: every proper ancestor of a node was discovered in an earlier round. Empty:
    unknown (sums then run node by node)."""


def _gather(offsets: IntArray, edges: IntArray, frontier: IntArray) -> tuple[IntArray, IntArray]:
    """(source, target) of every out-edge of ``frontier``, in frontier then edge order."""
    starts = offsets[frontier]
    counts = offsets[frontier + 1] - starts
    some = counts > 0
    if not some.all():
        frontier, starts, counts = frontier[some], starts[some], counts[some]
    total = int(counts.sum())
    if total == 0:
        empty = np.empty(0, frontier.dtype)
        return empty, empty
    src = np.repeat(frontier, counts)
    # edge positions: +1 steps within a node's row, a jump to the next row's start between
    # rows, summed up (cheaper than np.repeat of the row starts plus an arange)
    step = np.ones(total, np.int64)
    step[0] = starts[0]
    step[np.cumsum(counts[:-1])] = starts[1:] - starts[:-1] - counts[:-1] + 1
    np.cumsum(step, out=step)
    return src, edges[step]


def _bfs(
    offsets: IntArray,
    edges: IntArray,
    seeds: IntArray,
    parent: IntArray,
    visited: npt.NDArray[np.bool_],
    out: list[IntArray],
    claim: IntArray,
) -> None:
    """Breadth-first from ``seeds`` (already marked); the first discoverer becomes the parent.
    ``claim`` (all its dtype's maximum, restored on return) finds each target's first in-edge of a
    level by one minimum.at pass, cheaper than sorting the level's edges."""
    frontier = seeds
    free = np.iinfo(claim.dtype).max
    while frontier.size:
        if frontier.size < SMALL_ROUND:
            frontier = _bfs_level(offsets, edges, frontier, parent, visited)
            if frontier.size:
                out.append(frontier)
            continue
        src, dst = _gather(offsets, edges, frontier)
        keep = ~visited[dst]
        src, dst = src[keep], dst[keep]
        if dst.size == 0:
            break
        pos = np.arange(dst.size, dtype=claim.dtype)
        np.minimum.at(claim, dst, pos)
        first = np.flatnonzero(claim[dst] == pos)
        claim[dst] = free
        new, par = dst[first], src[first]
        visited[new] = True
        parent[new] = par
        out.append(new)
        frontier = new


def _bfs_level(
    offsets: IntArray,
    edges: IntArray,
    frontier: IntArray,
    parent: IntArray,
    visited: npt.NDArray[np.bool_],
) -> IntArray:
    """One breadth-first level from a small frontier, in plain Python (a linked list is one
    node per level, where numpy's per-call cost would dominate); same order as _bfs."""
    new: list[int] = []
    for u in frontier.tolist():
        row = edges[offsets[u] : offsets[u + 1]]
        for w in row[~visited[row]].tolist():
            if not visited[w]:
                visited[w] = True
                parent[w] = u
                new.append(w)
    return np.array(new, frontier.dtype)


def spanning_tree(
    n: int, offsets: IntArray, edges: IntArray, roots: IntArray, max_rounds: int = 200
) -> Tree:
    """Breadth-first spanning tree from ``roots`` (in order), then from unreferenced objects,
    then from whatever is still unreached (cycles nothing points into)."""
    idx = index_dtype(n)
    offsets = np.asarray(offsets, np.int64)
    edges = np.asarray(edges, idx)
    roots = np.asarray(roots, idx)
    vroot = n
    parent = np.full(n, -1, idx)
    phase = np.zeros(n, np.int8)
    visited = np.zeros(n, np.bool_)
    parts: list[IntArray] = []
    seeds = roots
    seeds = seeds[np.sort(np.unique(seeds, return_index=True)[1])]
    left = np.empty(0, idx)
    claim_type = np.int32 if edges.size < 2**31 - 1 else np.int64
    claim = np.full(n, np.iinfo(claim_type).max, claim_type)
    for p, pick in enumerate(("roots", "unreferenced", "rest")):
        if pick == "unreferenced":
            indeg = np.bincount(edges, minlength=n)
            seeds = np.flatnonzero((indeg == 0) & ~visited).astype(idx)
            del indeg
        if pick == "rest":
            seeds = np.empty(0, idx)
            left = np.flatnonzero(~visited).astype(idx)
        rounds = 0
        while True:
            if pick == "rest":
                left = left[~visited[left]]
                if left.size == 0:
                    break
                rounds += 1
                seeds = left[:1] if rounds < max_rounds else left
            before = len(parts)
            visited[seeds] = True
            parent[seeds] = vroot
            parts.append(seeds)
            _bfs(offsets, edges, seeds, parent, visited, parts, claim)
            for part in parts[before:]:
                phase[part] = p
            if pick != "rest":
                break
    sizes = np.array([0, *(part.size for part in parts)], np.int64)
    order = np.concatenate(parts) if parts else np.empty(0, idx)
    return Tree(order, parent, phase, vroot, np.cumsum(sizes))


def dominators(n: int, offsets: IntArray, edges: IntArray, tree: Tree) -> IntArray:
    """Immediate dominator of every node (vroot for the roots); index n is the virtual root."""
    idx = index_dtype(n)
    vroot = tree.vroot
    num = np.empty(n + 1, idx)
    num[vroot] = 0
    num[tree.order] = np.arange(1, tree.order.size + 1, dtype=idx)
    idom = np.empty(n + 1, idx)
    idom[:n] = tree.parent
    idom[vroot] = vroot
    dst = np.asarray(edges, idx)
    off = np.asarray(offsets, np.int64)
    src = np.repeat(np.arange(n, dtype=idx), off[1:] - off[:-1])
    keep = (src != dst) & (tree.parent[dst] != vroot)
    src, dst = src[keep], dst[keep]
    del keep
    # Only targets with several in-edges can have several distinct predecessors: dedupe those.
    several = np.bincount(dst, minlength=n)[dst] > 1
    key = dst[several].astype(np.int64) * (n + 1) + src[several]
    del src, dst, several
    key.sort()
    if key.size:
        key = key[np.r_[True, key[1:] != key[:-1]]]  # distinct (target, source), by target
    dst, src = (key // (n + 1)).astype(idx), (key % (n + 1)).astype(idx)
    del key
    multi = np.bincount(dst, minlength=n)[dst] > 1
    dst, src = dst[multi], src[multi]
    if dst.size == 0:
        return idom
    starts = np.flatnonzero(np.r_[True, dst[1:] != dst[:-1]])
    targets = dst[starts]
    seglen = np.diff(np.append(starts, dst.size))
    del dst
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
    out: IntArray = vals
    return out


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


def _rounds(tree: Tree) -> Iterator[tuple[int, int, bool]]:
    """(start, stop, vectorised) spans of ``tree.order``, top down: whole big rounds, and runs
    of small rounds (or everything, when the rounds are unknown) to go through node by node."""
    size = int(tree.order.size)
    if tree.levels.size < 2:
        if size:
            yield 0, size, False
        return
    bounds = tree.levels.tolist()
    run = -1
    for a, b in itertools.pairwise(bounds):
        if b - a >= SMALL_ROUND:
            if run >= 0:
                yield run, a, False
                run = -1
            yield a, b, True
        elif run < 0:
            run = a
    if run >= 0:
        yield run, bounds[-1], False


def retained_sizes(sizes: IntArray, idom: IntArray, tree: Tree) -> tuple[IntArray, IntArray]:
    """(retained size, dominator-subtree node count) of every node; index n is the virtual root.
    Bottom up, one discovery round at a time (a round's nodes never dominate each other)."""
    n = sizes.size
    ret = np.zeros(n + 1, np.int64)
    ret[:n] = sizes
    cnt = np.ones(n + 1, np.int64)
    order = tree.order
    for a, b, whole in reversed(list(_rounds(tree))):
        nodes = order[a:b]
        up = idom[nodes]
        if whole:
            np.add.at(ret, up, ret[nodes])
            np.add.at(cnt, up, cnt[nodes])
            continue
        for v, p in zip(reversed(nodes.tolist()), reversed(up.tolist()), strict=True):
            ret[p] += ret[v]
            cnt[p] += cnt[v]
    return ret, cnt


def inherit(mark: npt.NDArray[np.bool_], idom: IntArray, tree: Tree) -> None:
    """Mark (in place, index n the virtual root) every node a marked node dominates."""
    order = tree.order
    for a, b, whole in _rounds(tree):
        nodes = order[a:b]
        if whole:
            mark[nodes] |= mark[idom[nodes]]
            continue
        for v, p in zip(nodes.tolist(), idom[nodes].tolist(), strict=True):
            if mark[p]:
                mark[v] = True


def preorder(idom: IntArray, tree: Tree, count: IntArray) -> IntArray:
    """Position of every node in a preorder of the dominator tree (children in discovery
    order; the virtual root is 0), so that a subtree is the interval [pre, pre + count)."""
    n = tree.vroot
    order = tree.order
    num = np.empty(n + 1, order.dtype)
    num[n] = 0
    num[order] = np.arange(1, order.size + 1, dtype=order.dtype)
    # Group the nodes by dominator (in discovery order within a group). Keyed by the
    # dominator's discovery number the keys come almost sorted, which timsort finds cheap.
    kids = order[np.argsort(num[idom[order]], kind="stable")]
    del num
    parents = idom[kids]
    heads = np.r_[0, np.flatnonzero(parents[1:] != parents[:-1]) + 1]
    del parents
    # sizes of the earlier siblings' subtrees, then (in place, top down) the positions
    sib = count[kids]
    np.cumsum(sib, out=sib)
    group = np.zeros(kids.size, kids.dtype)  # each node's group, by a forward fill
    group[heads] = np.arange(heads.size, dtype=kids.dtype)
    np.maximum.accumulate(group, out=group)
    sib -= (sib[heads] - count[kids[heads]])[group]  # (np.repeat is slow on small groups)
    del group
    sib -= count[kids]
    pre = np.zeros(n + 1, np.int64)
    pre[kids] = sib
    del kids, sib, heads
    for a, b, whole in _rounds(tree):
        nodes = order[a:b]
        if whole:
            pre[nodes] += pre[idom[nodes]] + 1
            continue
        for v, p in zip(nodes.tolist(), idom[nodes].tolist(), strict=True):
            pre[v] += pre[p] + 1
    return pre


def outermost(
    types: IntArray, idom: IntArray, tree: Tree, count: IntArray
) -> npt.NDArray[np.bool_]:
    """True for nodes with no proper dominator of their own type (so retained sizes summed by
    type count nested same-type objects once), via preorder intervals of the dominator tree."""
    n = types.size
    pre = preorder(idom, tree, count)[:n]
    # The nodes by (type, preorder): in preorder (positions 1..n), then stably by type, which
    # numpy radix-sorts when the type numbers fit in 16 bits.
    by = np.empty(n, tree.order.dtype)
    by[pre - 1] = np.arange(n, dtype=by.dtype)
    small = n == 0 or int(types.max()) < 2**15
    by = by[np.argsort(types[by].astype(np.int16 if small else np.int32), kind="stable")]
    # A node is nested when an earlier node of its type (in preorder) ends after it starts:
    # a running maximum of type * (n + 2) + end finds the latest end within each type.
    base = types[by].astype(np.int64)
    base *= n + 2
    start = pre[by]
    del pre
    stop = start + count[by]
    stop += base
    np.maximum.accumulate(stop, out=stop)
    start += base
    del base
    nested = np.zeros(n, np.bool_)
    nested[1:] = start[1:] < stop[:-1]
    del start, stop
    out = np.ones(n, np.bool_)
    out[by[nested]] = False
    return out
