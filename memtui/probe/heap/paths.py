"""Provides summarize_graph: a census of every object and the largest containers by their path.

Runs in the forked child of a heap summary (memtui.probe.heap.summary) over the graph the dump
walk builds (every gc-tracked object and everything it refers to, untracked dicts, tuples, str,
int... included). One breadth-first walk from the roots — user modules first, then thread-frame
locals, then the standard library — gives every object an owner: the container through which it
was first reached. Subtree sums over that tree are the bytes a container keeps alive (equal to
the dominator-retained size when nothing else refers to its items, the leak case). The largest
containers are named by their path from a root (``app.POOL._idle``), read from the live objects
of the copy. memtui's own objects (its modules, threads, instances of its classes) are never
entered: what only they reach is counted apart and left out of the census. Standard library only.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import sys
import types
from array import array
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

from memtui.probe.heap.walk import Graph, Roots, _safe_sizes, own_module, type_name

CONTAINERS: frozenset[type] = frozenset(
    {list, dict, set, frozenset, deque, defaultdict, OrderedDict, Counter, bytearray}
)
"""Exact types whose len() is C code: the candidates for 'the container that grows'."""
MIN_ITEMS: int = 32
"""Containers shorter than this are never named (instance dicts, small tuples...)."""
TOP_BY_BYTES: int = 48
TOP_BY_ITEMS: int = 24
TOP_TYPES: int = 300
SAMPLES: int = 3
REPR_CHARS: int = 100
MAX_DEPTH: int = 40
_STDLIB_PREFIXES: tuple[str, ...] = tuple(
    p for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix} if p
)
_ATOMS = (type(None), bool, int, float, complex)
_member = types.MemberDescriptorType
_get_dict = object.__getattribute__


def _is_stdlib_module(name: str, module: Any) -> bool:
    if name in sys.builtin_module_names or name in getattr(sys, "stdlib_module_names", ()):
        return True
    top = name.partition(".")[0]
    if top in getattr(sys, "stdlib_module_names", ()):
        return True
    path = getattr(module, "__file__", None)
    return isinstance(path, str) and "-packages" in path


def safe_repr(obj: Any, limit: int = REPR_CHARS) -> str:
    """A repr that never runs user code: builtin values shown, other objects by type and id."""
    text = _repr(obj, 2)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _repr(obj: Any, depth: int) -> str:
    t = type(obj)
    if t in _ATOMS:
        return repr(obj)
    if t is str:
        return repr(obj[:REPR_CHARS])
    if t in (bytes, bytearray):
        return repr(bytes(obj[:40]))
    if depth <= 0:
        return f"<{type_name(t)}>"
    if t in (list, tuple, set, frozenset, deque):
        items = list(itertools.islice(iter(obj), 6))
        inner = ", ".join(_repr(x, depth - 1) for x in items)
        more = ", …" if len(obj) > len(items) else ""
        brackets: dict[type, tuple[str, str]] = {list: ("[", "]"), tuple: ("(", ")")}
        opening, closing = brackets.get(t, ("[", "]") if t is deque else ("{", "}"))
        return f"{opening}{inner}{more}{closing}"
    if t in (dict, OrderedDict, defaultdict, Counter):
        pairs = list(itertools.islice(dict.items(obj), 6))
        inner = ", ".join(f"{_repr(k, 0)}: {_repr(v, depth - 1)}" for k, v in pairs)
        more = ", …" if dict.__len__(obj) > len(pairs) else ""
        return "{" + inner + more + "}"
    if t is types.MethodType:
        with contextlib.suppress(Exception):
            func = obj.__func__
            owner = type_name(type(obj.__self__))
            return f"<bound method {owner}.{getattr(func, '__name__', '?')}>"
    if t is types.FunctionType:
        return f"<function {getattr(obj, '__qualname__', '?')}>"
    attrs = ""
    with contextlib.suppress(Exception):
        d = _get_dict(obj, "__dict__")
        if type(d) is dict:
            names = [k for k in itertools.islice(d, 6) if type(k) is str]
            attrs = " " + ", ".join(f"{k}={_repr(d[k], 0)}" for k in names)
    return f"<{type_name(t)}{attrs}>"


class HeapSummarizer:
    """Census, ownership tree and named containers of one walked graph (in the child)."""

    def __init__(self, graph: Graph, roots: Roots, blocked_ids: Iterable[int] = ()) -> None:
        self.g = graph
        self.roots = roots
        self.nodes = graph.nodes
        n = len(self.nodes)
        self.n = n
        self.offsets = array("q", itertools.accumulate(graph.degrees, initial=0))
        self.types: list[type] = list(map(type, self.nodes))
        unique = dict.fromkeys(self.types)
        self.sizes = _safe_sizes(self.nodes, self.types, unique)
        own_types = {t for t in unique if own_module(getattr_type_module(t))}
        self.blocked = bytearray(map(own_types.__contains__, self.types))
        for oid in blocked_ids:
            j = graph.index.get(oid)
            if j is not None:
                self.blocked[j] = 1
        self.parent = array("i", [-1]) * n
        self.order = array("i")
        self.root_label: dict[int, str] = {}
        self.root_kind: dict[int, str] = {}

    # -- roots and the walk ------------------------------------------------------------
    def _root_nodes(self) -> list[tuple[int, str, str]]:
        """(node, kind, label): user modules, thread frames, then the standard library."""
        index = self.g.index
        user: list[tuple[int, str, str]] = []
        std: list[tuple[int, str, str]] = []
        for name, module in sorted(
            ((k, v) for k, v in list(sys.modules.items()) if type(k) is str), key=lambda kv: kv[0]
        ):
            if not isinstance(module, types.ModuleType):
                continue
            m = index.get(id(module))
            try:
                d = _get_dict(module, "__dict__")
            except Exception:
                continue
            j = index.get(id(d))
            if j is None:
                continue
            if own_module(name):
                self.blocked[j] = 1
                if m is not None:
                    self.blocked[m] = 1
                continue
            if m is not None:  # the module object leads to its dict: never the owner of it
                self.parent[m] = m
            label = name
            if name == "__main__":  # python -m pkg.mod: the module's own name reads better
                spec_name = getattr(getattr(module, "__spec__", None), "name", None)
                if isinstance(spec_name, str) and spec_name and spec_name not in sys.modules:
                    label = spec_name
            row = (j, "module", label)
            (std if name != "__main__" and _is_stdlib_module(name, module) else user).append(row)
        frames = []
        for local, label in self.roots.frames:
            j = index.get(id(local))
            if j is not None:
                frames.append((j, "frame", label))
        return user + frames + std

    def walk(self) -> None:
        parent, blocked, order = self.parent, self.blocked, self.order
        offsets, edges = self.offsets, self.g.edges
        for j, kind, label in self._root_nodes():
            if parent[j] == -1 and not blocked[j]:
                parent[j] = j
                order.append(j)
                self.root_label[j] = label
                self.root_kind[j] = kind
        head = 0
        while head < len(order):
            v = order[head]
            head += 1
            for w in edges[offsets[v] : offsets[v + 1]]:
                if parent[w] == -1 and not blocked[w]:
                    parent[w] = v
                    order.append(w)

    def own_nodes(self) -> bytearray:
        """memtui's objects and what only they reach (never entered by walk())."""
        parent, offsets, edges = self.parent, self.offsets, self.g.edges
        own = bytearray(self.blocked)
        stack = [j for j in range(self.n) if own[j]]
        while stack:
            v = stack.pop()
            for w in edges[offsets[v] : offsets[v + 1]]:
                if not own[w] and parent[w] == -1:
                    own[w] = 1
                    stack.append(w)
        return own

    # -- figures -------------------------------------------------------------------------
    def subtree(self) -> tuple[array[int], array[int]]:
        """(bytes, objects) each node keeps alive in the ownership tree."""
        size = array("q", self.sizes)
        count = array("q", [1]) * self.n
        parent = self.parent
        for v in reversed(self.order):
            p = parent[v]
            if p != v:
                size[p] += size[v]
                count[p] += count[v]
        return size, count

    def census(self, own: bytearray) -> tuple[list[list[Any]], dict[str, int]]:
        """(type, count, bytes) of every object but memtui's, largest first; C-level passes
        (a sort by type, then one sum per type) rather than a Python loop per object."""
        mine = list(itertools.compress(range(self.n), map(operator.not_, own)))
        type_id = {t: i for i, t in enumerate(dict.fromkeys(self.types))}
        tcol = array("i", map(type_id.__getitem__, self.types))
        mine.sort(key=tcol.__getitem__)
        by_type = itertools.groupby(
            zip(map(tcol.__getitem__, mine), map(self.sizes.__getitem__, mine), strict=True),
            key=operator.itemgetter(0),
        )
        types = list(type_id)
        merged: dict[str, list[int]] = {}
        size_of = operator.itemgetter(1)
        for tid, group in by_type:
            row = merged.setdefault(type_name(types[tid]), [0, 0])
            sizes = list(map(size_of, group))
            row[0] += len(sizes)
            row[1] += sum(sizes)
        rows: list[list[Any]] = sorted(
            ([k, c, b] for k, (c, b) in merged.items()), key=lambda r: -int(r[2])
        )
        reached = self.n - self.parent.count(-1)
        own_count = self.n - len(mine)
        totals = {
            "objects": len(mine),
            "bytes": sum(int(r[2]) for r in rows),
            "reached": reached,
            "unrooted": len(mine) - reached,
            "own_objects": own_count,
            "types": len(rows),
        }
        return rows, totals

    def candidates(self, size: array[int]) -> list[int]:
        roots = set(self.root_label)
        picked: list[tuple[int, int, int]] = []
        for j, t in enumerate(self.types):
            if t in CONTAINERS and self.parent[j] >= 0 and j not in roots:
                try:
                    length = len(self.nodes[j])
                except Exception:
                    continue
                if length >= MIN_ITEMS and not self._is_namespace(j):
                    picked.append((j, length, size[j]))
        by_bytes = sorted(picked, key=lambda r: -r[2])[:TOP_BY_BYTES]
        by_items = sorted(picked, key=lambda r: -r[1])[:TOP_BY_ITEMS]
        return list(dict.fromkeys(r[0] for r in by_bytes + by_items))

    def _is_namespace(self, j: int) -> bool:
        """A class's, function's or instance's own __dict__: its attributes, not a collection."""
        p = self.parent[j]
        if p == j or self.types[j] is not dict:
            return False
        owner, d = self.nodes[p], self.nodes[j]
        if isinstance(owner, (type, types.ModuleType)):
            return True
        try:
            return _get_dict(owner, "__dict__") is d
        except Exception:
            return False

    # -- naming ----------------------------------------------------------------------------
    def chain_nodes(self, v: int) -> list[int]:
        path = [v]
        parent = self.parent
        while parent[path[-1]] != path[-1] and len(path) < 10_000:
            path.append(parent[path[-1]])
        path.reverse()
        return path

    def name(self, v: int) -> tuple[str, str]:
        """(dotted path, arrow chain) of node ``v`` from its root."""
        path = self.chain_nodes(v)
        if len(path) > MAX_DEPTH:
            path = path[:2] + path[-(MAX_DEPTH - 2) :]
        r = path[0]
        kind, label = self.root_kind.get(r, "?"), self.root_label.get(r, "?")
        if kind == "module":
            dotted, chain = label, [f"module {label}"]
        else:  # 'thread T frame f() file:line': the line moves, so it is not part of the path
            where = label.rsplit(" ", 1)[0]
            thread, _, func = where.partition(" frame ")
            dotted, chain = f"{thread}: {func}", [label]
        skip_next_dict = False
        for i, (u, w) in enumerate(itertools.pairwise(path)):
            U, W = self.nodes[u], self.nodes[w]
            step, token = self._step(U, W, i == 0, kind, skip_next_dict)
            skip_next_dict = step == "\0dict"
            if step == "\0dict":
                continue
            if step:
                dotted += step
            chain.append(token)
        return dotted, " → ".join(chain)

    def _step(self, u: Any, w: Any, from_root: bool, kind: str, in_dict: bool) -> tuple[str, str]:
        """How ``u`` holds ``w``: (text appended to the dotted path, chain token)."""
        tu, tw = type(u), type(w)
        wname = type_name(tw)
        if from_root and tu is dict:
            key = _key_of(u, w)
            word = "global" if kind == "module" else "local"
            if key is None:
                return f".<{wname}>", wname
            return f".{key}", f"{word} {key}"
        if isinstance(u, type) and tw is dict:
            return "\0dict", ""
        if tu is dict or (tu in CONTAINERS and isinstance(u, dict)):
            key = _key_of(u, w)
            if key is None:
                return "[?]", wname
            return (
                (f".{key}", f".{key} {wname}")
                if in_dict and _ident(key)
                else (f"[{_short(key)}]", f"[{_short(key)}] {wname}")
            )
        if tu in (list, tuple, deque):
            for i, x in enumerate(u):
                if x is w:
                    return f"[{i}]", f"[{i}] {wname}"
            return "[?]", wname
        if tu in (set, frozenset):
            return "{…}", "{…} " + wname
        if tu is types.FunctionType:
            if w is getattr(u, "__closure__", None):
                return ".<closure>", "closure"
            if w is getattr(u, "__defaults__", None):
                return ".__defaults__", "__defaults__"
            if w is getattr(u, "__kwdefaults__", None):
                return ".__kwdefaults__", "__kwdefaults__"
            if tw is dict and w is getattr(u, "__dict__", None):
                return "\0dict", ""
            return f".<{wname}>", wname
        if tu is types.CellType:
            return "", wname
        if tu is types.MethodType:
            return (
                (".__self__", f"__self__ {wname}") if w is u.__self__ else (".__func__", "__func__")
            )
        if "lru_cache" in type_name(tu) and tw is dict:
            return ".<lru_cache>", "lru_cache dict"
        # An instance: its __dict__ (skipped: the next step names the attribute), an attribute
        # held in inline values (3.12+), or a slot.
        with contextlib.suppress(Exception):
            d = _get_dict(u, "__dict__")
            if d is w:
                return "\0dict", ""
            if type(d) is dict:
                key = _key_of(d, w)
                if key is not None:
                    return f".{key}", f".{key} {wname}"
        with contextlib.suppress(Exception):
            for klass in type.__dict__["__mro__"].__get__(tu):
                for attr, desc in type.__dict__["__dict__"].__get__(klass).items():
                    if type(desc) is _member and desc.__get__(u) is w:
                        return f".{attr}", f".{attr} {wname}"
        return f".<{wname}>", wname

    def describe(self, v: int, size: array[int], count: array[int]) -> dict[str, Any]:
        obj = self.nodes[v]
        dotted, chain = self.name(v)
        dotted = _closure_names(self, v, dotted)
        items: list[Any]
        if type(obj) in (dict, OrderedDict, defaultdict, Counter):
            items = list(itertools.islice(reversed(list(dict.values(obj))), 50))
        elif type(obj) is bytearray:
            items = []
        else:
            items = list(itertools.islice(reversed(list(obj)), 50))
        held = Counter(type_name(type(x)) for x in items)
        holds = held.most_common(1)[0][0] if held else None
        hint = _kind_hint(items)
        return {
            "path": dotted,
            "chain": chain,
            "type": type_name(type(obj)),
            "items": len(obj),
            "bytes": int(size[v]),
            "objects": int(count[v]),
            "shallow_bytes": int(self.sizes[v]),
            "holds": holds,
            "hint": hint,
            "address": id(obj),
            "samples": [safe_repr(x) for x in items[:SAMPLES]],
        }


def _closure_names(s: HeapSummarizer, v: int, dotted: str) -> str:
    """'.<closure>[i]' becomes '.<closure>.name' using the function's co_freevars."""
    if ".<closure>[" not in dotted:
        return dotted
    path = s.chain_nodes(v)
    for u, w, x in zip(path, path[1:], path[2:], strict=False):
        fn = s.nodes[u]
        if type(fn) is types.FunctionType and s.nodes[w] is getattr(fn, "__closure__", None):
            with contextlib.suppress(Exception):
                i = list(s.nodes[w]).index(s.nodes[x])
                name = fn.__code__.co_freevars[i]
                dotted = dotted.replace(f".<closure>[{i}]", f".<closure>.{name}", 1)
    return dotted


def getattr_type_module(t: type) -> object:
    try:
        return type.__dict__["__module__"].__get__(t)
    except Exception:
        return None


def _key_of(d: Any, w: Any) -> Any:
    try:
        for k, v in dict.items(d):
            if v is w:
                return k
    except Exception:
        pass
    return None


def _ident(key: Any) -> bool:
    return type(key) is str and key.isidentifier()


def _short(key: Any) -> str:
    text = _repr(key, 0)
    return text if len(text) <= 40 else text[:39] + "…"


def _kind_hint(items: list[Any]) -> str | None:
    """What the sampled items say about the container (a known leak signature)."""
    if not items:
        return None
    n = len(items)
    callables = sum(
        1
        for x in items
        if type(x) in (types.MethodType, types.FunctionType, types.BuiltinMethodType)
    )
    if callables * 2 >= n:
        return "event_listeners"
    logging = sys.modules.get("logging")
    handler = getattr(logging, "Handler", None) if logging is not None else None
    if isinstance(handler, type) and sum(1 for x in items if isinstance(x, handler)) * 2 >= n:
        return "logging_handlers"
    threading = sys.modules.get("threading")
    thread = getattr(threading, "Thread", None) if threading is not None else None
    if isinstance(thread, type) and sum(1 for x in items if isinstance(x, thread)) * 2 >= n:
        return "threads"
    asyncio = sys.modules.get("asyncio")
    future = getattr(asyncio, "Future", None) if asyncio is not None else None
    if isinstance(future, type) and sum(1 for x in items if isinstance(x, future)) * 2 >= n:
        return "asyncio_tasks"
    return None


def summarize_graph(
    graph: Graph,
    roots: Roots,
    blocked_ids: Iterable[int] = (),
    check: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """The summary the child sends back: census, totals and the largest named containers.
    ``check`` runs between phases (the child stops there when its target is gone)."""
    s = HeapSummarizer(graph, roots, blocked_ids)
    s.walk()
    check()
    own = s.own_nodes()
    size, count = s.subtree()
    check()
    rows, totals = s.census(own)
    containers = []
    for v in s.candidates(size):
        with contextlib.suppress(Exception):
            containers.append(s.describe(v, size, count))
    lru = [c for c in containers if ".<lru_cache>" in c["path"]]
    for c in lru:
        c["hint"] = "lru_cache"
    return {"census": rows[:TOP_TYPES], "totals": totals, "containers": containers}
