"""Provides the heap-dump writer: a walk of every object into a versioned ``.mtdump`` file.

Two writers. **fork** (the default on Linux): the target forks; the copy-on-write child walks its
frozen copy of the heap, writes the file and ``os._exit()``s, while the parent only pays for the
fork (page tables) and a thread of it reaps the child. **inplace** (the fallback: no fork, not
enough memory for a child, or ``MEMTUI_DUMP_MODE=inplace``): the calling thread holds the other
threads off (switch interval raised, gc disabled) only while it takes ``gc.get_objects()`` and the
referents of each object, whose lists keep everything alive; indexing, sizes and writing then
run alongside the target. The file records which writer ran and the pause it caused.

The child runs no code that could take a lock another thread held at fork: everything it needs
is imported beforehand, it calls no logging or buffered I/O (``os.write`` on raw fds), runs no
user code (``__sizeof__`` written in Python is bypassed) and never traverses the frames that were
executing in other threads (their locals are snapshotted into root dicts before the fork).

File format, version 1 (all integers little-endian)::

    header   8s magic b"\\x89MTDUMP\\n" | u16 version | u16 flags (0) | u32 reserved (0)
    section  4s tag | u8 codec (0 raw, 1 zlib) | 3x pad | u64 raw length | u64 stored length
             | u32 crc32 of the stored bytes | stored bytes
    ...      sections in this order: META TYPE NTYP SIZE ADDR DEGR EDGE ROOT LABL NAMD [SITE NSIT]
    END!     last section, raw: u64 offset of its own header | u32 number of sections before it

    META  JSON object: format, version, pid, time, python, writer (fork|inplace), pause_s,
          walk_s, rss_bytes, objects, edges, tracemalloc, fallback_reason ...
    TYPE  JSON list of [module, qualname] of each type
    NTYP  int32[objects]  type of each node (index into TYPE)
    SIZE  int64[objects]  sys.getsizeof of each node
    ADDR  int64[objects]  id() of each node in the target
    DEGR  int32[objects]  out-degree of each node; EDGE int32[edges] targets, node after node (CSR)
    ROOT  JSON list of [node, kind, label]; kind is module | frame | class
    LABL  JSON list of [node, label] (module names, class and function qualnames)
    NAMD  JSON list of [dict node, key, target node]: module globals and frame locals by name
    SITE  JSON list of [filename, lineno]; NSIT int32[objects] allocation site (-1: unknown)

Nodes are every gc-tracked object plus everything they refer to (str, int, bytes... that gc
does not track), so retained sizes are complete. Writers write ``<path>.part-*`` and rename it
when complete; readers reject foreign, truncated, corrupt and newer files. Standard library only.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import os
import select
import signal
import struct
import sys
import threading
import time
import tracemalloc
import warnings
import zlib
from array import array
from dataclasses import dataclass, field
from typing import Any

from memtui.probe.census import _census_lock
from memtui.probe.heap.headroom import fork_headroom, memtui_fork, name_child
from memtui.probe.heap.walk import (
    Section,
    capture,
    capture_roots,
    describe_graph,
    link,
    walk,
)
from memtui.probe.memory import ProcMemoryReader

MAGIC: bytes = b"\x89MTDUMP\n"
VERSION: int = 1
SUFFIX: str = ".mtdump"
HEADER = struct.Struct("<8sHHI")
SECTION = struct.Struct("<4sB3xQQI")
END = struct.Struct("<QI")
CODEC_RAW, CODEC_ZLIB = 0, 1
ZLIB_LEVEL: int = 1
"""Level 1: about 6x smaller than raw for 0.2 s per 50 MB; higher levels gain little."""
WRITERS: tuple[str, ...] = ("auto", "fork", "inplace")
BYTES_PER_OBJECT_ON_DISK: int = 12
"""A generous estimate of file bytes per object (measured: 6-9), for the disk-space check."""
WALK_BYTES_PER_OBJECT: int = 200
"""Memory the walk needs per object (index dict, columns), for the memory check."""
_counter = itertools.count(1)


class HeapDumpFailed(Exception):
    """A dump could not be made (the message is one line)."""


@dataclass
class DumpResult:
    """What a finished dump reports."""

    path: str
    writer: str
    pause_s: float
    objects: int = 0
    edges: int = 0
    bytes: int = 0
    duration_s: float = 0.0
    fallback_reason: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "writer": self.writer,
            "pause_s": round(self.pause_s, 6),
            "objects": self.objects,
            "edges": self.edges,
            "bytes": self.bytes,
            "duration_s": round(self.duration_s, 4),
            "fallback_reason": self.fallback_reason,
        }


class DumpJob:
    """A dump under way: a forked child being reaped by a thread, or a finished in-place walk."""

    def __init__(self, path: str, writer: str, reason: str) -> None:
        self.path = path
        self.writer = writer
        self.fallback_reason = reason
        self.pause_s = 0.0
        self.child_pid: int | None = None
        self._done = threading.Event()
        self._result: DumpResult | None = None
        self._error = ""

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the dump finished (well or not)."""
        return self._done.wait(timeout)

    def result(self) -> DumpResult:
        """The finished dump; HeapDumpFailed when it failed (call after wait() returned True)."""
        if not self._done.is_set():
            raise HeapDumpFailed(f"the heap dump to {self.path} is still being written")
        if self._result is None:
            raise HeapDumpFailed(self._error or "the heap dump failed")
        return self._result

    def _finish(self, result: DumpResult | None, error: str = "") -> None:
        self._result, self._error = result, error
        self._done.set()


def dump_file_name(pid: int, when: float) -> str:
    """heapdump-<pid>-<YYYYmmdd-HHMMSS>.mtdump (local time)."""
    return f"heapdump-{pid}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(when))}{SUFFIX}"


def unique_path(directory: str, pid: int | None = None, when: float | None = None) -> str:
    """A new dump file name under ``directory`` (suffixed -1, -2... within the same second)."""
    pid = os.getpid() if pid is None else pid
    base = os.path.join(directory, dump_file_name(pid, time.time() if when is None else when))
    path, n = base, 1
    while os.path.exists(path):
        path = f"{base[: -len(SUFFIX)]}-{n}{SUFFIX}"
        n += 1
    return path


def write_heap_dump(
    path: str, writer: str | None = None, timeout_s: float | None = None
) -> DumpResult:
    """Dump the heap of this process to ``path`` and wait until the file is complete."""
    job = start_heap_dump(path, writer, timeout_s)
    job.wait()
    return job.result()


def start_heap_dump(
    path: str, writer: str | None = None, timeout_s: float | None = None
) -> DumpJob:
    """Start a dump to ``path`` (a directory: a new file name in it) and return at once for the
    fork writer, after the walk for the in-place one. HeapDumpFailed when it cannot start.

    ``writer``: auto (default; or MEMTUI_DUMP_MODE), fork or inplace. ``timeout_s``: the
    forked child is killed after this long (default: 60 s + 40 s per million objects).
    """
    path = os.path.abspath(path)
    if os.path.isdir(path):
        path = unique_path(path)
    elif os.path.lexists(path):
        raise HeapDumpFailed(f"{path!r} already exists; heap dumps never overwrite a file")
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise HeapDumpFailed(f"cannot create {directory!r}: {exc.strerror or exc}") from None
    blocks = sys.getallocatedblocks()
    check_disk(directory, blocks * BYTES_PER_OBJECT_ON_DISK + (1 << 20))
    rss = _rss()
    chosen, reason = choose_writer(writer, rss, blocks)
    meta: dict[str, Any] = {
        "format": "memtui-heapdump",
        "version": VERSION,
        "pid": os.getpid(),
        "time": time.time(),
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
        "implementation": sys.implementation.name,
        "platform": sys.platform,
        "argv": [str(a)[:200] for a in sys.argv[:20]],
        "rss_bytes": rss,
        "tracemalloc": tracemalloc.is_tracing(),
        "fallback_reason": reason,
    }
    tmp = f"{path}.part-{os.getpid()}-{next(_counter)}"
    if timeout_s is None:
        timeout_s = 60.0 + 40.0 * blocks / 1e6
    if chosen == "fork":
        job = DumpJob(path, "fork", reason)
        try:
            _start_fork(job, tmp, meta, timeout_s)
            return job
        except OSError as exc:
            reason = f"fork failed: {exc.strerror or exc}"
            meta["fallback_reason"] = reason
    # The in-place walk allocates inside the target: refuse it too when that does not fit, or a
    # tight cgroup OOM-kills the very process being dumped.
    room = fork_headroom(0, blocks * WALK_BYTES_PER_OBJECT, what="an in-place walk")
    if not room.ok:
        raise HeapDumpFailed(
            f"heap dump refused, it would risk the target's memory: {room.reason}"
            + (f" (no fork: {reason})" if reason and reason != "in-place walk requested" else "")
        )
    job = DumpJob(path, "inplace", reason)
    with _census_lock:  # no census list of memtui's alive in the walk
        _run_inplace(job, tmp, meta)
    return job


def choose_writer(requested: str | None, rss: int, blocks: int) -> tuple[str, str]:
    """(writer, why the in-place fallback was chosen or '')."""
    mode = (requested or os.environ.get("MEMTUI_DUMP_MODE", "") or "auto").strip().lower()
    if mode not in WRITERS:
        raise HeapDumpFailed(f"unknown heap dump writer {mode!r}; use one of {', '.join(WRITERS)}")
    if mode == "inplace":
        return "inplace", "in-place walk requested"
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        return "inplace", f"no fork-based dump on {sys.platform}"
    room = fork_headroom(rss, blocks * WALK_BYTES_PER_OBJECT)
    if not room.ok:
        return "inplace", room.reason
    return "fork", ""


def _start_fork(job: DumpJob, tmp: str, meta: dict[str, Any], timeout_s: float) -> None:
    with_sites = tracemalloc.is_tracing()
    r, w = os.pipe()
    t0 = time.perf_counter()
    try:
        # No census list of memtui's alive in the copy; at-fork hooks know the child is ours.
        with _census_lock, memtui_fork():
            roots = capture_roots((globals(),))
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                # 3.12+ warns that fork() in a threaded process may deadlock the child: the
                # child here takes no lock another thread may hold (see the module docstring).
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # pragma: no cover - the child; its result comes through the pipe
                _child(r, w, job.path, tmp, meta, roots, t0, with_sites)
    except Exception as exc:  # fork failed, or the program replaced os.fork
        os.close(r)
        os.close(w)
        raise OSError(str(exc)) from None
    job.pause_s = time.perf_counter() - t0
    job.child_pid = pid
    os.close(w)
    del roots
    reaper = threading.Thread(
        target=_reap,
        args=(job, pid, r, tmp, time.monotonic() + timeout_s, t0),
        name="memtui-heapdump-reaper",
        daemon=True,
    )
    reaper.start()


def _child(
    r: int,
    w: int,
    path: str,
    tmp: str,
    meta: dict[str, Any],
    roots: Any,
    t0: float,
    with_sites: bool,
) -> None:  # pragma: no cover - runs in the forked child
    code = 1
    try:
        os.close(r)
        name_child("memtui-heapdump")
        gc.disable()  # no collection in the copy: it would change the heap being dumped
        meta["pause_s"] = round(time.perf_counter() - t0, 6)
        meta["writer"] = "fork"
        with contextlib.suppress(OSError):
            os.nice(5)  # the target keeps the CPU when both want it
        sections, info = walk(roots, with_sites)
        meta.update(info)
        size = _write_file(path, tmp, meta, sections)
        message: dict[str, Any] = {"ok": True, "bytes": size, **info}
        code = 0
    except HeapDumpFailed as exc:
        message = {"ok": False, "error": str(exc)}
    except BaseException as exc:
        message = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    try:
        os.write(w, json.dumps(message).encode())
    finally:
        os._exit(code)


def _reap(job: DumpJob, pid: int, r: int, tmp: str, deadline: float, t0: float) -> None:
    message, error = child_answer(pid, r, deadline, "heap dump")
    if error:
        _unlink(tmp)
        job._finish(None, error)
        return
    job._finish(
        DumpResult(
            path=job.path,
            writer="fork",
            pause_s=job.pause_s,
            objects=int(message.get("objects", 0)),
            edges=int(message.get("edges", 0)),
            bytes=int(message.get("bytes", 0)),
            duration_s=time.perf_counter() - t0,
            fallback_reason=job.fallback_reason,
        )
    )


def _run_inplace(job: DumpJob, tmp: str, meta: dict[str, Any]) -> None:
    with_sites = tracemalloc.is_tracing()
    t0 = time.perf_counter()
    roots = capture_roots((globals(),))
    was_enabled = gc.isenabled()
    t_hold = time.perf_counter()
    gc.disable()
    try:
        # No hold of the GIL beyond capture's C-level calls: a longer one (a huge switch
        # interval) starved this thread for up to its length once another thread took over.
        nodes, refs = capture(roots, skip_leaves=False)
        job.pause_s = time.perf_counter() - t_hold
        time.sleep(0)  # let the threads that waited run now
        # gc stays off until the walk ends: a full collection over the millions of objects
        # the walk allocates would be a pause of its own.
        graph = link(nodes, refs, roots, t_hold)
        del nodes, refs
        sections, info = describe_graph(graph, roots, with_sites)
        del graph, roots
    finally:
        if was_enabled:
            gc.enable()
    meta.update(info, writer="inplace", pause_s=round(job.pause_s, 6))
    try:
        size = _write_file(job.path, tmp, meta, sections)
    except OSError as exc:
        _unlink(tmp)
        raise HeapDumpFailed(f"cannot write {job.path!r}: {exc.strerror or exc}") from None
    job._finish(
        DumpResult(
            path=job.path,
            writer="inplace",
            pause_s=job.pause_s,
            objects=int(info["objects"]),
            edges=int(info["edges"]),
            bytes=size,
            duration_s=time.perf_counter() - t0,
            fallback_reason=job.fallback_reason,
            meta=meta,
        )
    )


def encode_section(tag: bytes, data: bytes | array[int]) -> bytes:
    """One section: header, then the zlib-compressed bytes (raw when that is no smaller)."""
    if isinstance(data, array):
        if sys.byteorder != "little":
            data = array(data.typecode, data)
            data.byteswap()
        raw = data.tobytes()
    else:
        raw = data
    stored = zlib.compress(raw, ZLIB_LEVEL)
    codec = CODEC_ZLIB
    if len(stored) >= len(raw):
        stored, codec = raw, CODEC_RAW
    return SECTION.pack(tag, codec, len(raw), len(stored), zlib.crc32(stored)) + stored


def _write_file(path: str, tmp: str, meta: dict[str, Any], sections: list[Section]) -> int:
    """Encode header, META, the sections and END!, write them to ``tmp``, fsync, rename."""
    meta_bytes = json.dumps(meta, separators=(",", ":")).encode()
    parts = [HEADER.pack(MAGIC, VERSION, 0, 0), encode_section(b"META", meta_bytes)]
    while sections:
        tag, data = sections.pop(0)
        parts.append(encode_section(tag, data))
        del data
    offset = sum(map(len, parts))
    end = END.pack(offset, len(parts) - 1)
    parts.append(SECTION.pack(b"END!", CODEC_RAW, len(end), len(end), zlib.crc32(end)) + end)
    total = sum(map(len, parts))
    check_disk(os.path.dirname(path) or ".", total)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for part in parts:
            view = memoryview(part)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)
    return total


def child_answer(pid: int, r: int, deadline: float, what: str) -> tuple[dict[str, Any], str]:
    """Read a forked walker's one JSON answer from pipe ``r`` (closed here) and reap it:
    (message, error). Past ``deadline`` the child is killed; ``what`` names it in errors.
    Shared by heap dumps and heap summaries."""
    chunks: list[bytes] = []
    error = ""
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                error = f"the {what} took too long; its process was stopped"
                break
            ready, _, _ = select.select([r], [], [], min(remaining, 1.0))
            if ready:
                data = os.read(r, 1 << 16)
                if not data:
                    break
                chunks.append(data)
    except OSError as exc:
        error = f"lost the {what} process: {exc}"
    finally:
        os.close(r)
    status = 0
    with contextlib.suppress(ChildProcessError):  # the target may reap children itself
        _, status = os.waitpid(pid, 0)
    message: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        message = json.loads(b"".join(chunks).decode() or "{}")
    if not error and not message.get("ok"):
        error = str(message.get("error") or "")
        if not error:
            how = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"status {status}"
            error = f"the {what} process died ({how})"
    return message, error


def check_disk(directory: str, needed: int) -> None:
    """HeapDumpFailed when ``directory`` has clearly less than ``needed`` bytes free."""
    try:
        st = os.statvfs(directory)
    except OSError as exc:
        raise HeapDumpFailed(f"cannot write in {directory!r}: {exc.strerror or exc}") from None
    free = st.f_bavail * st.f_frsize
    if free < needed:
        raise HeapDumpFailed(
            f"not enough free disk space in {directory!r}: about {needed / 1e6:.0f} MB "
            f"needed, {free / 1e6:.0f} MB free"
        )


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _rss() -> int:
    try:
        with ProcMemoryReader() as reader:
            return reader.read().rss_bytes
    except OSError:
        return 0
