"""Provides tracemalloc control and trace aggregation that runs outside the traced process.

Aggregating 1M traces inside the traced process costs seconds, because the aggregation's own
allocations are traced too (3.1 s for ``statistics('lineno')`` at 1.4M blocks, measured here).
So a large snapshot is dumped to a private file and aggregated by a short-lived child
interpreter (``python -I -S tracing.py aggregate FILE``) that is not tracing: the target pays
only for ``take_snapshot`` and ``dump``. Small snapshots are aggregated in-process.

Run as a script, this module must need nothing but the standard library.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tracemalloc
from collections.abc import Iterable
from typing import NamedTuple

Frame = tuple[str, int]
"""(filename, lineno) of one frame."""
TraceKey = tuple[Frame, ...]
"""Frames of one allocation traceback, most recent call first (tracemalloc's raw order)."""

IN_PROCESS_MAX_TRACES: int = 50_000
"""Snapshots with more traces than this are aggregated in a child process."""
AGGREGATE_TIMEOUT_S: float = 120.0


class SiteTotals(NamedTuple):
    """Bytes and blocks still allocated, per allocation traceback, at one instant."""

    by_traceback: dict[TraceKey, tuple[int, int]]
    """traceback -> (size_bytes, count)."""
    traced_bytes: int
    traced_blocks: int
    peak_traced_bytes: int
    frames: int
    """Frames kept per traceback (tracemalloc.get_traceback_limit() when taken)."""


def is_tracing() -> bool:
    return tracemalloc.is_tracing()


def start_tracing(frames: int = 1) -> bool:
    """Start tracemalloc with ``frames`` frames; False when it was already tracing (left as is)."""
    from memtui.probe.raw_domain import start_tracemalloc  # here: the script runs without memtui

    return start_tracemalloc(max(1, int(frames)))


def stop_tracing() -> None:
    if tracemalloc.is_tracing():
        tracemalloc.stop()


_HIDDEN_FILES: frozenset[str] = frozenset(
    {tracemalloc.__file__, __file__, "<frozen importlib._bootstrap>", "<unknown>"}
)
"""Most recent frames whose allocations are tracemalloc's own bookkeeping, not the program's."""
_OWN_PACKAGE_DIR: str = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_OWN_VISIBLE: frozenset[str] = frozenset({os.path.join(_OWN_PACKAGE_DIR, "demo.py")})
"""memtui's own allocations are hidden from the profiled program's results, except the demo's."""


def _is_hidden(frames: TraceKey) -> bool:
    """True for allocations made by tracemalloc itself or by memtui's own code.

    Any frame inside memtui (the demo excepted) hides the trace: with a few frames, the
    agent's json and threading work shows up under stdlib lines that only a deeper frame
    can attribute to memtui.
    """
    if not frames:
        return False
    if frames[0][0] in _HIDDEN_FILES:
        return True
    return any(f.startswith(_OWN_PACKAGE_DIR) and f not in _OWN_VISIBLE for f, _ in frames)


_LIBRARY_PATTERN = re.compile(
    r"[/\\](site-packages|dist-packages)[/\\]"
    r"|[/\\]lib(64)?[/\\](python|pypy)\d+(\.\d+)?t?[/\\]"
)
"""Library code of any CPython/PyPy on POSIX, also another interpreter's than ours."""


def _library_dirs() -> tuple[str, ...]:
    # The standard library is where os.py lives (sysconfig is not imported: it drags in
    # modules the target may never load); installed packages match _LIBRARY_PATTERN.
    dirs = {os.path.normcase(os.path.dirname(os.path.abspath(os.__file__))) + os.sep}
    for prefix in {sys.base_prefix, sys.base_exec_prefix}:
        # A venv's stdlib lives in the base interpreter; Windows spells it Lib.
        dirs.add(os.path.normcase(os.path.join(prefix, "Lib")) + os.sep)
    return tuple(sorted(dirs))


_LIBRARY_DIRS: tuple[str, ...] = _library_dirs()
_OWN_DIR_NORM: str = os.path.normcase(_OWN_PACKAGE_DIR)
_OWN_DEMO_NORM: frozenset[str] = frozenset(os.path.normcase(f) for f in _OWN_VISIBLE)


def is_user_file(filename: str) -> bool:
    """True for a file of the profiled program: not the standard library, not an installed
    package (site-/dist-packages), not memtui (its demo excepted), and not a pseudo-file
    (``<frozen ...>``, or ``<string>``, which is also what dataclasses and namedtuples
    generate their methods in: the caller's line is the one to name)."""
    if filename.startswith("<"):
        return False
    norm = os.path.normcase(filename)
    if norm.startswith(_OWN_DIR_NORM):
        return norm in _OWN_DEMO_NORM
    if _LIBRARY_PATTERN.search(filename):
        return False
    return not norm.startswith(_LIBRARY_DIRS)


_USER_FILE_CACHE: dict[str, bool] = {}
_USER_FILE_CACHE_MAX: int = 10_000


def _cached_is_user(filename: str) -> bool:
    known = _USER_FILE_CACHE.get(filename)
    if known is None:
        known = is_user_file(filename)
        if len(_USER_FILE_CACHE) < _USER_FILE_CACHE_MAX:
            _USER_FILE_CACHE[filename] = known
    return known


def site_index(frames: TraceKey) -> int:
    """Index in ``frames`` (most recent first) of the allocation's site: the first frame in
    the program's own code, so that ``json.loads`` called by ``app.py:12`` ranks as app.py:12.

    When no frame is the program's (a library's own thread, a stack deeper than the traced
    frames, code run by ``python -c``), the site is the innermost frame that is neither
    ``<frozen ...>`` nor ``<unknown>``: the line that allocated, what tracemalloc would name.
    """
    fallback = -1
    for i, (filename, _) in enumerate(frames):
        if _cached_is_user(filename):
            return i
        if fallback < 0 and not filename.startswith(("<frozen", "<unknown>")):
            fallback = i
    return max(0, fallback)


def site_frame(frames: TraceKey) -> Frame:
    """The (filename, lineno) an allocation is attributed to (see site_index)."""
    return frames[site_index(frames)] if frames else ("<unknown>", 0)


def visible_totals(
    totals: dict[TraceKey, tuple[int, int]], keep_frames: int | None = None
) -> dict[TraceKey, tuple[int, int]]:
    """The program's own totals: memtui's hidden, tracebacks cut to ``keep_frames`` and summed."""
    out: dict[TraceKey, tuple[int, int]] = {}
    for key, (size, count) in totals.items():
        if _is_hidden(key):
            continue
        if keep_frames is not None and len(key) > keep_frames:
            key = key[:keep_frames]
        old = out.get(key)
        out[key] = (size, count) if old is None else (old[0] + size, old[1] + count)
    return out


def group_by_site(
    totals: dict[TraceKey, tuple[int, int]],
) -> tuple[dict[TraceKey, tuple[int, int]], dict[TraceKey, TraceKey]]:
    """Totals summed per site (``(site_frame,)`` keys, see site_index), and for each site the
    full traceback that allocated most of it, to show as its traceback."""
    out: dict[TraceKey, tuple[int, int]] = {}
    stacks: dict[TraceKey, TraceKey] = {}
    heaviest: dict[TraceKey, int] = {}
    for key, (size, count) in totals.items():
        site: TraceKey = (site_frame(key),)
        old = out.get(site)
        out[site] = (size, count) if old is None else (old[0] + size, old[1] + count)
        if size > heaviest.get(site, -1):
            heaviest[site] = size
            stacks[site] = key
    return out, stacks


def aggregate_raw_traces(
    raw_traces: Iterable[tuple[object, ...]],
) -> dict[TraceKey, tuple[int, int]]:
    """Sum size and count per traceback from tracemalloc's raw trace tuples."""
    sizes: dict[TraceKey, int] = {}
    counts: dict[TraceKey, int] = {}
    for trace in raw_traces:
        # Raw trace: (domain, size, frames[, total_nframe]); frames most recent first.
        key: TraceKey = trace[2]  # type: ignore[assignment]  # tracemalloc's raw tuple layout
        size: int = trace[1]  # type: ignore[assignment]
        sizes[key] = sizes.get(key, 0) + size
        counts[key] = counts.get(key, 0) + 1
    return {key: (sizes[key], counts[key]) for key in sizes}


def _totals_from_snapshot(snapshot: tracemalloc.Snapshot) -> dict[TraceKey, tuple[int, int]]:
    # Filtering per key after aggregating: Snapshot.filter_traces is a Python loop per trace.
    # The raw tuples, not Trace objects: wrapping each of a million traces costs seconds.
    totals = aggregate_raw_traces(snapshot.traces._traces)  # type: ignore[attr-defined]
    return visible_totals(totals)


def take_site_totals(
    work_dir: str | None = None, in_process_max: int = IN_PROCESS_MAX_TRACES
) -> SiteTotals:
    """Snapshot tracemalloc and aggregate it per traceback, out of process when it is large.

    Raises RuntimeError when tracemalloc is not tracing.
    """
    if not tracemalloc.is_tracing():
        raise RuntimeError("tracemalloc is not tracing")
    traced, peak = tracemalloc.get_traced_memory()
    frames = tracemalloc.get_traceback_limit()
    snapshot = tracemalloc.take_snapshot()
    n_traces = len(snapshot.traces)
    by_tb: dict[TraceKey, tuple[int, int]] | None = None
    if n_traces > in_process_max:
        by_tb = _aggregate_in_child(snapshot, work_dir)
    if by_tb is None:
        by_tb = _totals_from_snapshot(snapshot)
    del snapshot
    return SiteTotals(
        by_traceback=by_tb,
        traced_bytes=traced,
        traced_blocks=n_traces,
        peak_traced_bytes=peak,
        frames=frames,
    )


def _aggregate_in_child(
    snapshot: tracemalloc.Snapshot, work_dir: str | None
) -> dict[TraceKey, tuple[int, int]] | None:
    """Dump and aggregate in a child interpreter; None when that is impossible here."""
    import subprocess  # here: only large traces come this way, every agent imports tracing
    import tempfile

    fd, path = tempfile.mkstemp(prefix="memtui-snap-", suffix=".tracemalloc", dir=work_dir)
    os.close(fd)
    try:
        snapshot.dump(path)
        proc = subprocess.run(
            [sys.executable, "-I", "-S", os.path.abspath(__file__), "aggregate", path],
            capture_output=True,
            timeout=AGGREGATE_TIMEOUT_S,
            check=False,
        )
        if proc.returncode != 0:
            return None
        return decode_totals(proc.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def encode_totals(totals: dict[TraceKey, tuple[int, int]]) -> bytes:
    rows = [[[list(f) for f in key], size, count] for key, (size, count) in totals.items()]
    return json.dumps(rows, separators=(",", ":")).encode()


def decode_totals(data: bytes) -> dict[TraceKey, tuple[int, int]]:
    rows = json.loads(data)
    out: dict[TraceKey, tuple[int, int]] = {}
    for frames, size, count in rows:
        key = tuple((str(f[0]), int(f[1])) for f in frames)
        out[key] = (int(size), int(count))
    return out


def _main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "aggregate":
        print("usage: tracing.py aggregate SNAPSHOT_FILE", file=sys.stderr)
        return 2
    snapshot = tracemalloc.Snapshot.load(argv[1])
    sys.stdout.buffer.write(encode_totals(_totals_from_snapshot(snapshot)))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
