"""Provides heap-dump reading: a ``.mtdump`` file (format: memtui.probe.heap.dump) as numpy
columns, with foreign, truncated, corrupt and newer files rejected in one HeapDumpError line.

Kept apart from the analysis (memtui.engine.heap.dumps) so that each stays short; node indices
keep the int32 width they are stored in.
"""

from __future__ import annotations

import json
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from memtui.engine.heap.dominators import IntArray
from memtui.errors import HeapDumpError
from memtui.probe.heap.dump import CODEC_RAW, CODEC_ZLIB, END, HEADER, MAGIC, SECTION, VERSION

REQUIRED = (b"META", b"TYPE", b"NTYP", b"SIZE", b"ADDR", b"DEGR", b"EDGE", b"ROOT")
_DTYPES = {b"NTYP": "<i4", b"SIZE": "<i8", b"ADDR": "<i8", b"DEGR": "<i4", b"EDGE": "<i4"}
_DTYPES[b"NSIT"] = "<i4"
INFLATE_THREADS_FROM = 1 << 20
"""Files at least this big (bytes) are inflated on two threads."""


@dataclass
class HeapDump:
    """A loaded dump: columns indexed by node number (0..n-1)."""

    path: str
    meta: dict[str, Any]
    type_names: list[str]
    short_names: list[str]
    types: IntArray
    sizes: IntArray
    addrs: IntArray
    offsets: IntArray
    edges: IntArray
    roots: list[tuple[int, str, str]]
    labels: dict[int, str] = field(default_factory=dict)
    named: dict[tuple[int, int], str] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.types.size)


def _bad(path: str, why: str) -> HeapDumpError:
    return HeapDumpError(f"{path}: {why}")


def load_dump(path: str) -> HeapDump:
    """Read and validate a dump; HeapDumpError (one line) for anything that is not a whole,
    uncorrupted dump of a version this memtui reads."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise _bad(path, f"cannot read: {exc.strerror or exc}") from None
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise _bad(path, "not a memtui heap dump (no MTDUMP header)")
    if len(data) < HEADER.size:
        raise _bad(path, "truncated heap dump (incomplete header)")
    _, version, _, _ = HEADER.unpack_from(data)
    if version > VERSION:
        raise _bad(
            path, f"heap dump format v{version} is newer than this memtui reads (v{VERSION})"
        )
    if version < 1:
        raise _bad(path, f"not a memtui heap dump (format v{version})")
    sections = _sections(path, data)
    missing = [t.decode() for t in REQUIRED if t not in sections]
    if missing:
        raise _bad(path, f"corrupt heap dump: missing section(s) {', '.join(missing)}")
    try:
        return _build(path, sections)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise _bad(path, f"corrupt heap dump: {exc}") from None


def _sections(path: str, data: bytes) -> dict[bytes, bytes]:
    """Every section's raw bytes by tag. Headers and checksums are checked in file order, then
    the zlib sections are inflated on two threads (zlib releases the GIL: the file's biggest
    cost after the graph work); errors are reported as the first one in file order."""
    found: list[tuple[bytes, int, int, memoryview]] = []
    late: HeapDumpError | None = None
    view = memoryview(data)
    pos = HEADER.size
    try:
        while True:
            if pos + SECTION.size > len(data):
                raise _bad(path, "truncated heap dump (no end marker; was it still being written?)")
            tag, codec, raw_len, stored_len, crc = SECTION.unpack_from(data, pos)
            body_at = pos + SECTION.size
            if body_at + stored_len > len(data):
                raise _bad(path, f"truncated heap dump (section {tag!r} cut short)")
            stored = view[body_at : body_at + stored_len]
            if zlib.crc32(stored) != crc:
                raise _bad(path, f"corrupt heap dump (checksum of section {tag!r})")
            if tag == b"END!":
                offset, n = END.unpack(stored) if stored_len == END.size else (-1, -1)
                if offset != pos or n != len(found) or body_at + stored_len != len(data):
                    raise _bad(path, "corrupt heap dump (bad end marker)")
                break
            found.append((tag, codec, raw_len, stored))
            pos = body_at + stored_len
            if codec not in (CODEC_RAW, CODEC_ZLIB):
                break  # reported below, in file order
    except HeapDumpError as exc:
        late = exc
    raws: list[bytes | HeapDumpError] = [b""] * len(found)

    def inflate(i: int) -> None:
        tag, codec, raw_len, stored = found[i]
        if codec == CODEC_ZLIB:
            try:
                raw = zlib.decompress(stored)
            except zlib.error:
                raws[i] = _bad(path, f"corrupt heap dump (section {tag!r})")
                return
        elif codec == CODEC_RAW:
            raw = bytes(stored)
        else:
            raws[i] = _bad(path, f"corrupt heap dump (codec {codec} in section {tag!r})")
            return
        if len(raw) != raw_len:
            raws[i] = _bad(path, f"corrupt heap dump (length of section {tag!r})")
            return
        raws[i] = raw

    todo = sorted(range(len(found)), key=lambda i: -len(found[i][3]))
    if len(data) >= INFLATE_THREADS_FROM:
        queue = iter(todo)
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    i = next(queue, None)
                if i is None:
                    return
                inflate(i)

        helper = threading.Thread(target=worker, name="memtui-inflate", daemon=True)
        helper.start()
        worker()
        helper.join()
    else:
        for i in todo:
            inflate(i)
    out: dict[bytes, bytes] = {}
    for (tag, _, _, _), raw in zip(found, raws, strict=True):
        if isinstance(raw, HeapDumpError):
            raise raw
        out[tag] = raw
    if late is not None:
        raise late
    return out


def _column(sections: dict[bytes, bytes], tag: bytes) -> IntArray:
    """A section as a numpy column of its stored width (int32 node indices stay int32: half
    the memory of widening them), native byte order, without a copy when already native."""
    raw = sections[tag]
    dtype = np.dtype(_DTYPES[tag])
    if len(raw) % dtype.itemsize:
        raise ValueError(f"section {tag.decode()} is not a whole number of items")
    column: IntArray = np.frombuffer(raw, dtype=dtype)
    if not dtype.isnative:
        column = column.astype(dtype.newbyteorder("="))
    return column


def _build(path: str, s: dict[bytes, bytes]) -> HeapDump:
    meta = json.loads(s[b"META"])
    parts = json.loads(s[b"TYPE"])
    full = [q if m == "builtins" else f"{m}.{q}" for m, q in parts]
    types = _column(s, b"NTYP")
    n = types.size
    sizes, addrs, degrees = (_column(s, t) for t in (b"SIZE", b"ADDR", b"DEGR"))
    edges = _column(s, b"EDGE")
    if not sizes.size == addrs.size == degrees.size == n:
        raise ValueError("columns of different lengths")
    if n and (types.min() < 0 or types.max() >= len(full) or degrees.min() < 0):
        raise ValueError("type or degree out of range")
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(degrees, out=offsets[1:])
    if int(offsets[-1]) != edges.size or (edges.size and (edges.min() < 0 or edges.max() >= n)):
        raise ValueError("edges do not match the nodes")
    roots = [(int(r), str(k), str(lab)) for r, k, lab in json.loads(s[b"ROOT"])]
    if any(not 0 <= r < n for r, _, _ in roots):
        raise ValueError("root out of range")
    labels = {int(i): str(lab) for i, lab in json.loads(s.get(b"LABL", b"[]"))}
    named: dict[tuple[int, int], str] = {}
    for d, key, target in json.loads(s.get(b"NAMD", b"[]")):
        named.setdefault((int(d), int(target)), str(key))
    return HeapDump(
        path, meta, full, [q for _, q in parts], types, sizes, addrs, offsets, edges, roots,
        labels, named,
    )  # fmt: skip
