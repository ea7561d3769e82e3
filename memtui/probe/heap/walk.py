"""Provides the heap walk of the dump writer: roots captured, every object, its size and edges.

Standard library only; see memtui.probe.heap.dump for the file format and the writers.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import operator
import os
import sys
import threading
import time
import tracemalloc
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from types import FrameType, FunctionType, ModuleType
from typing import Any

from memtui.probe.census import objects_but

TUPLES: frozenset[type] = frozenset({tuple})
BIG_DICT: int = 16
"""Dicts at least this long also get edges to their str keys (CPython does not traverse the
keys of str-keyed dicts); smaller ones are mostly instance dicts whose keys are shared."""
_CO_OPTIMIZED = 0x1
_MANAGED_GC_HEADER = 16

_qualname = type.__dict__["__qualname__"].__get__
_modname = type.__dict__["__module__"].__get__
_mro = type.__dict__["__mro__"].__get__
_typedict = type.__dict__["__dict__"].__get__
_func_qualname = FunctionType.__dict__["__qualname__"].__get__
_module_dict = vars(ModuleType)["__dict__"].__get__
_C_CALLABLES = (type(dict.__sizeof__), type(object.__init__), type(len))
Section = tuple[bytes, "bytes | array[int]"]


def type_name(t: type) -> str:
    """'module.Qualname' for a type, bare for builtins; never runs metaclass code."""
    try:
        q = _qualname(t)
        m = _modname(t)
    except Exception:
        return "?"
    return q if m == "builtins" else f"{m}.{q}"


def type_parts(t: type) -> list[str]:
    """[module, qualname] of a type; never runs metaclass code."""
    try:
        return [str(_modname(t)), str(_qualname(t))]
    except Exception:
        return ["?", "?"]


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class Roots:
    """Captured in the target before the walk (and before a fork): what names the roots."""

    frames: list[tuple[dict[str, Any], str]]
    leaves: set[int]
    """ids of frames executing at capture time: never traversed (their data lives on thread
    stacks, which a forked child no longer has)."""
    keep: list[FrameType]
    """The executing frames themselves, so that their ids stay theirs until the walk."""


def own_module(name: object) -> bool:
    """memtui's own code (the demo is a user program, so it is not)."""
    if not isinstance(name, str):
        return False
    return name == "memtui" or (name.startswith("memtui.") and not name.startswith("memtui.demo"))


def capture_roots(skip: tuple[dict[str, Any], ...] = ()) -> Roots:
    """Snapshot every thread's function-frame locals into root dicts. memtui's own threads
    and frames (and frames whose globals are in ``skip``) are left out: what they hold is
    memtui's, never a root of the program's memory."""
    names = {t.ident: t.name for t in threading.enumerate()}
    frames: list[tuple[dict[str, Any], str]] = []
    leaves: set[int] = set()
    keep: list[FrameType] = []
    skip = (globals(), *skip)
    for tid, top in sys._current_frames().items():
        f: FrameType | None = top
        thread = names.get(tid, str(tid))
        ours = thread.startswith("memtui")
        while f is not None:
            leaves.add(id(f))
            keep.append(f)
            code = f.f_code
            if (
                code.co_flags & _CO_OPTIMIZED
                and not ours
                and not any(f.f_globals is g for g in skip)
                and not own_module(f.f_globals.get("__name__"))
            ):
                try:
                    local = dict(f.f_locals)
                except Exception:
                    local = {}
                where = f"{os.path.basename(code.co_filename)}:{f.f_lineno}"
                frames.append((local, f"thread {thread} frame {code.co_name}() {where}"))
            f = f.f_back
    return Roots(frames, leaves, keep)


def _safe_sizes(nodes: list[Any], types: list[type], unique: Iterable[type]) -> array[int]:
    """sys.getsizeof of every node, without running a __sizeof__ written in Python."""
    unsafe = set()
    for t in unique:
        for base in _mro(t):
            impl = _typedict(base).get("__sizeof__")
            if impl is not None:
                if not isinstance(impl, _C_CALLABLES):
                    unsafe.add(t)
                break
    getsizeof = sys.getsizeof
    if not unsafe:
        try:
            return array("q", map(getsizeof, nodes))
        except Exception:
            pass
    out = array("q", bytes(8 * len(nodes)))
    basic = object.__sizeof__
    for i, o in enumerate(nodes):
        try:
            if types[i] in unsafe:
                out[i] = basic(o) + (_MANAGED_GC_HEADER if gc.is_tracked(o) else 0)
            else:
                out[i] = getsizeof(o)
        except Exception:
            out[i] = 0
    return out


@dataclass
class Graph:
    """The reference graph as walked: nodes (strong references), their index, CSR edges."""

    nodes: list[Any]
    index: dict[int, int]
    degrees: array[int]
    edges: array[int]
    graph_s: float


def capture(roots: Roots, skip_leaves: bool) -> tuple[list[Any], list[list[Any]]]:
    """Every gc-tracked object but tuples, and their referents, each list in one C-level call.

    These lists hold what they name alive, so the rest of the walk can run while the target
    runs. No tuple is held from the object list: one a thread is building (``tuple(genexpr)``,
    ``PyTuple_SetItem``) must have no other holder, or CPython raises SystemError in that
    thread; tuples the heap refers to are reached from their referrers (as untracked objects
    are). ``skip_leaves``: never traverse the frames that were executing (required in a forked
    child, where their thread stacks are gone).
    """
    nodes: list[Any] = objects_but(TUPLES)
    level = nodes
    if skip_leaves:
        level = nodes[:]
        for i in itertools.compress(
            itertools.count(), map(roots.leaves.__contains__, map(id, nodes))
        ):
            level[i] = None
    refs = list(map(gc.get_referents, level))
    _add_dict_keys(level, refs)
    return nodes, refs


def link(nodes: list[Any], refs: list[list[Any]], roots: Roots, t0: float) -> Graph:
    """Index the captured objects and walk the referents not seen yet (str, int, untracked
    containers) round by round, each round by C-level ``map``; edges in CSR order."""
    index: dict[int, int] = dict(zip(map(id, nodes), itertools.count()))
    leaves = roots.leaves
    leaves.update(map(id, (roots, roots.frames, roots.keep, leaves)))
    for k in leaves:  # executing frames and our own bookkeeping: nodes without edges
        j = index.get(k)
        if j is not None:
            refs[j] = []
    degrees = array("i")
    edges = array("i")
    none = itertools.repeat(None)
    while refs:
        flat = list(itertools.chain.from_iterable(refs))
        ids = list(map(id, flat))
        unseen = list(map(operator.is_, map(index.get, ids), none))
        # Every step below is a C-level pass: no Python loop per object.
        fresh = dict(
            zip(itertools.compress(ids, unseen), itertools.compress(flat, unseen), strict=True)
        )
        index.update(zip(fresh, itertools.count(len(nodes))))
        level = list(fresh.values())
        nodes.extend(level)
        degrees.extend(map(len, refs))
        edges.extend(map(index.__getitem__, ids))
        del flat, ids, unseen, fresh
        refs = list(map(gc.get_referents, level))
        _add_dict_keys(level, refs)
    return Graph(nodes, index, degrees, edges, time.perf_counter() - t0)


def describe_graph(
    graph: Graph, roots: Roots, with_sites: bool
) -> tuple[list[Section], dict[str, Any]]:
    """Types, sizes, addresses, names (and allocation sites) of the walked nodes, as raw
    sections. Safe to run while other threads run: the graph holds every node alive."""
    t0 = time.perf_counter()
    nodes = graph.nodes
    types = list(map(type, nodes))
    type_index: dict[type, int] = {t: n for n, t in enumerate(dict.fromkeys(types))}
    tcol = array("i", map(type_index.__getitem__, types))
    sizes = _safe_sizes(nodes, types, type_index)
    addrs = array("q", map(id, nodes))
    labels, named, root_rows = _names(nodes, types, type_index, graph.index, roots)
    sections: list[Section] = [
        (b"TYPE", _json([type_parts(t) for t in type_index])),
        (b"NTYP", tcol),
        (b"SIZE", sizes),
        (b"ADDR", addrs),
        (b"DEGR", graph.degrees),
        (b"EDGE", graph.edges),
        (b"ROOT", _json(root_rows)),
        (b"LABL", _json(labels)),
        (b"NAMD", _json(named)),
    ]
    if with_sites:
        sites, scol = _sites(nodes)
        sections += [(b"SITE", _json(sites)), (b"NSIT", scol)]
    info = {
        "objects": len(tcol),
        "edges": len(graph.edges),
        "graph_s": round(graph.graph_s, 4),
        "describe_s": round(time.perf_counter() - t0, 4),
    }
    return sections, info


def walk(roots: Roots, with_sites: bool) -> tuple[list[Section], dict[str, Any]]:
    """The whole walk in one go (for a forked child, where nothing else runs)."""
    t0 = time.perf_counter()
    nodes, refs = capture(roots, skip_leaves=True)
    return describe_graph(link(nodes, refs, roots, t0), roots, with_sites)


def _add_dict_keys(level: list[Any], refs: list[list[Any]]) -> None:
    """Big dicts also refer to their str keys (CPython's traversal skips them)."""
    dict_types = {t for t in set(map(type, level)) if issubclass(t, dict)}
    if not dict_types:
        return
    is_dict = dict_types.__contains__
    for i in itertools.compress(itertools.count(), map(is_dict, map(type, level))):
        d = level[i]
        if dict.__len__(d) >= BIG_DICT:
            # One C-level copy: the program's threads may change the dict meanwhile.
            refs[i].extend([k for k in list(dict.keys(d)) if type(k) is str])


def _names(
    nodes: list[Any],
    types: list[type],
    type_index: dict[type, int],
    index: dict[int, int],
    roots: Roots,
) -> tuple[list[Any], list[Any], list[Any]]:
    """Labels of modules, classes and functions; named edges; the root rows."""
    labels: list[Any] = []
    named: list[Any] = []
    modules: list[Any] = []
    frames: list[Any] = []
    classes: list[Any] = []
    metas = {t for t in type_index if issubclass(t, type)}
    for n in itertools.compress(itertools.count(), map(metas.__contains__, types)):
        name = type_name(nodes[n])
        labels.append([n, name])
        classes.append([n, "class", f"class {name}"])
    is_function = {FunctionType}.__contains__
    for n in itertools.compress(itertools.count(), map(is_function, types)):
        with contextlib.suppress(Exception):
            labels.append([n, _func_qualname(nodes[n])])
    for name, module in sorted((k, v) for k, v in sys.modules.items() if type(k) is str):
        m = index.get(id(module))
        if m is None or not isinstance(module, ModuleType):
            continue
        labels.append([m, name])
        modules.append([m, "module", f"module {name}"])
        try:
            globs = _module_dict(module)
        except Exception:
            continue
        d = index.get(id(globs))
        if d is not None:
            modules.append([d, "module", f"module {name}"])
            named += _named_edges(d, globs, index, "global")
    for local, label in roots.frames:
        d = index.get(id(local))
        if d is not None:
            frames.append([d, "frame", label])
            named += _named_edges(d, local, index, "local")
    return labels, named, modules + frames + classes


def _named_edges(d: int, mapping: dict[str, Any], index: dict[int, int], kind: str) -> list[Any]:
    out = []
    for key, value in list(dict.items(mapping)):
        j = index.get(id(value))
        if j is not None and type(key) is str:
            out.append([d, f"{kind} {key}", j])
    return out


def _sites(nodes: list[Any]) -> tuple[list[Any], array[int]]:
    table: dict[tuple[str, int], int] = {}
    col = array("i", [-1]) * len(nodes)
    get_tb = tracemalloc.get_object_traceback
    for n, tb in enumerate(map(get_tb, nodes)):
        if tb is not None and len(tb):
            frame = tb[0]
            key = (frame.filename, frame.lineno)
            k = table.get(key)
            if k is None:
                k = table[key] = len(table)
            col[n] = k
    return [list(k) for k in table], col
