"""Provides a small in-process walk from module globals and class attributes to containers.

Why: a test that leaks a few objects per call needs the *name* of what grew ("``app.CACHE``
(list) +3 items"), and the forked heap summary used on long runs is too heavy to take around
every test. This walk only visits what is reachable in a few steps from ``sys.modules``
(globals, class attributes, instance attributes, dict values, ``lru_cache`` wrappers), is
bounded in objects visited, and records each container's length under a readable path. Two
walks around some repeated calls tell which container grew. Standard library only.
"""

from __future__ import annotations

import collections
import gc
import sys
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

MAX_VISITED = 200_000
MAX_DEPTH = 4
MAX_CHILDREN = 64
"""Children followed per container: growth is seen on the container itself, so a big dict's
values need not all be walked."""
SKIP_MODULE_PREFIXES: tuple[str, ...] = ("memtui", "_pytest", "pluggy", "tracemalloc", "xdist")
_CONTAINERS = (list, dict, set, collections.deque, bytearray)
_LEAF = (str, bytes, int, float, complex, bool, type(None), range, slice)


@dataclass(frozen=True, slots=True)
class Container:
    """One container found by the walk: where it is, what it is, how many items it holds."""

    path: str
    kind: str
    length: int
    obj: Any


@dataclass(frozen=True, slots=True)
class Growth:
    """A container that grew between two walks."""

    path: str
    kind: str
    before: int
    after: int
    item_types: tuple[tuple[str, int], ...]
    """Types of the items added (most common first), as far as they can be told."""

    @property
    def grown(self) -> int:
        return self.after - self.before

    def describe(self, calls: int) -> str:
        types_ = ", ".join(f"{n} {t}" for t, n in self.item_types[:3])
        new = f" (new items: {types_})" if types_ else ""
        return (
            f"{self.path} ({self.kind}) grew {self.before:,} -> {self.after:,} items over "
            f"{calls} calls{new}"
        )


def _lru_size(obj: Any) -> int | None:
    info = getattr(obj, "cache_info", None)
    if info is None or not callable(info):
        return None
    try:
        return int(info().currsize)
    except Exception:
        return None


class _Walk:
    def __init__(self, max_visited: int) -> None:
        self.seen: set[int] = set()
        self.found: dict[str, Container] = {}
        self.budget = max_visited

    def visit(self, obj: Any, path: str, depth: int) -> None:
        if self.budget <= 0 or isinstance(obj, _LEAF) or id(obj) in self.seen:
            return
        if isinstance(obj, types.ModuleType | types.FrameType | types.CodeType):
            return
        self.seen.add(id(obj))
        self.budget -= 1
        if isinstance(obj, _CONTAINERS):
            if path not in self.found:
                self.found[path] = Container(path, type(obj).__name__, len(obj), obj)
            if depth < MAX_DEPTH:
                for sub, child in _children(obj, path):
                    self.visit(child, sub, depth + 1)
            return
        lru = _lru_size(obj) if callable(obj) else None
        if lru is not None:
            self.found.setdefault(path, Container(path, "lru_cache", lru, obj))
            return
        if isinstance(obj, types.FunctionType | types.BuiltinFunctionType | types.MethodType):
            return
        if depth >= MAX_DEPTH:
            return
        attrs = _attributes(obj)
        if attrs is not None:
            for name, child in attrs:
                self.visit(child, f"{path}.{name}", depth + 1)


def _children(obj: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        items: Iterable[tuple[Any, Any]] = list(obj.items())[:MAX_CHILDREN]
        for key, value in items:
            label = repr(key) if isinstance(key, str | int) else "[...]"
            yield f"{path}[{label[:40]}]", value
    elif isinstance(obj, list | collections.deque):
        for i, value in enumerate(list(obj)[:MAX_CHILDREN]):
            yield f"{path}[{i}]", value


def _attributes(obj: Any) -> list[tuple[str, Any]] | None:
    """Attributes worth following: a class's own (not dunders, not functions), an instance's."""
    if isinstance(obj, type):
        try:
            items = list(vars(obj).items())
        except TypeError:
            return None
        return [
            (k, v)
            for k, v in items
            if not (k.startswith("__") and k.endswith("__"))
            and not isinstance(v, types.FunctionType | staticmethod | classmethod | property)
        ]
    d = getattr(obj, "__dict__", None)
    if isinstance(d, dict):
        return list(d.items())[:MAX_CHILDREN]
    return None


def walk_containers(
    max_visited: int = MAX_VISITED, skip: tuple[str, ...] = SKIP_MODULE_PREFIXES
) -> dict[str, Container]:
    """Containers reachable from module globals (and class/instance attributes), by path."""
    walk = _Walk(max_visited)
    for name, module in list(sys.modules.items()):
        if module is None or name.startswith(skip) or name == "__mp_main__":
            continue
        try:
            namespace = list(vars(module).items())
        except TypeError:
            continue
        for key, value in namespace:
            if key.startswith("__") and key.endswith("__"):
                continue
            if isinstance(value, type) and getattr(value, "__module__", name) != name:
                continue  # imported classes are walked under their own module
            walk.visit(value, f"{name}.{key}", 0)
    return walk.found


def _new_item_types(obj: Any, before: int) -> tuple[tuple[str, int], ...]:
    counts: collections.Counter[str] = collections.Counter()
    try:
        if isinstance(obj, list | collections.deque):
            for item in list(obj)[before:][:1000]:
                counts[type(item).__name__] += 1
        elif isinstance(obj, dict):
            for item in list(obj.values())[before:][:1000]:
                counts[type(item).__name__] += 1
        elif isinstance(obj, set):
            for item in list(obj)[:1000]:
                counts[type(item).__name__] += 1
    except Exception:
        return ()
    return tuple(counts.most_common())


def grown(before: dict[str, Container], after: dict[str, Container], at_least: int) -> list[Growth]:
    """Containers whose length grew by at least ``at_least`` items, most growth first."""
    out = []
    for path, now in after.items():
        was = before.get(path)
        if was is None or now.length - was.length < at_least or now.obj is not was.obj:
            continue
        out.append(
            Growth(path, now.kind, was.length, now.length, _new_item_types(now.obj, was.length))
        )
    out.sort(key=lambda g: (-g.grown, g.path.count("."), len(g.path)))
    return out


def type_counts() -> collections.Counter[str]:
    """Live gc-tracked objects by type name (the census: which type grew)."""
    return collections.Counter(type(o).__name__ for o in gc.get_objects())
