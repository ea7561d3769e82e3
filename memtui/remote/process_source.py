"""Provides what can be learned about any process from outside (psutil): the outside-only view.

RSS/VMS come from /proc/PID/statm (about 1 µs); USS, PSS and swap from smaps_rollup cost
~4 µs per MB of RSS (2.5 ms at 630 MB, measured here), so they are read at snapshot times,
not every sample. Memory maps and children are listed on demand.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from memtui.errors import TargetProcessError

MIB: float = 1024.0 * 1024.0


@dataclass(frozen=True, slots=True)
class Mapping:
    """One memory mapping of the process, by resident size."""

    path: str
    rss_bytes: int


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """A process as seen from outside."""

    pid: int
    name: str
    cmdline: tuple[str, ...]
    username: str
    create_time: float
    is_python: bool
    rss_bytes: int
    vms_bytes: int
    uss_bytes: int | None
    pss_bytes: int | None
    swap_bytes: int | None
    num_maps: int | None
    largest_maps: tuple[Mapping, ...]
    children: tuple[tuple[int, str], ...]
    """(pid, name) of direct and indirect children."""
    note: str = ""
    """What could not be read, and why."""


def _looks_like_python(proc: psutil.Process) -> bool:
    try:
        exe = proc.exe()
        name = proc.name()
    except (psutil.AccessDenied, psutil.ZombieProcess):
        return False
    if "python" in name.lower() or "python" in exe.rsplit("/", 1)[-1].lower():
        return True
    try:
        with open(f"/proc/{proc.pid}/maps", encoding="utf-8", errors="replace") as f:
            return any("libpython3" in line for line in f)
    except OSError:
        return False


def process_info(pid: int, maps: bool = True, largest: int = 5) -> ProcessInfo:
    """Everything cheap enough to read from outside; raises TargetProcessError when gone."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            mem = proc.memory_info()
            name = proc.name()
            cmdline = tuple(proc.cmdline())
            username = proc.username()
            created = proc.create_time()
    except psutil.NoSuchProcess:
        raise TargetProcessError(f"no process with pid {pid}") from None
    except psutil.AccessDenied:
        raise TargetProcessError(
            f"not allowed to read process {pid}; run as its user or root"
        ) from None
    notes = []
    uss = pss = swap = None
    try:
        full = proc.memory_full_info()
        uss, pss, swap = full.uss, getattr(full, "pss", None), getattr(full, "swap", None)
    except psutil.AccessDenied:
        notes.append("USS/PSS/swap need the target's user or root (smaps_rollup)")
    except psutil.NoSuchProcess:
        raise TargetProcessError(f"process {pid} exited") from None
    num_maps: int | None = None
    top: tuple[Mapping, ...] = ()
    if maps:
        try:
            regions = proc.memory_maps(grouped=True)
            num_maps = len(regions)
            ranked = sorted(regions, key=lambda m: -m.rss)[:largest]
            top = tuple(Mapping(m.path or "[anon]", m.rss) for m in ranked)
        except psutil.AccessDenied:
            notes.append("memory maps need the target's user or root")
        except psutil.NoSuchProcess:
            raise TargetProcessError(f"process {pid} exited") from None
    try:
        kids = tuple((c.pid, c.name()) for c in proc.children(recursive=True))
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        kids = ()
    return ProcessInfo(
        pid=pid,
        name=name,
        cmdline=cmdline,
        username=username,
        create_time=created,
        is_python=_looks_like_python(proc),
        rss_bytes=mem.rss,
        vms_bytes=mem.vms,
        uss_bytes=uss,
        pss_bytes=pss,
        swap_bytes=swap,
        num_maps=num_maps,
        largest_maps=top,
        children=kids,
        note="; ".join(notes),
    )


def process_facts(pid: int) -> dict[str, object]:
    """process_info as plain JSON for a report's "process" section; an "error" when gone."""
    import dataclasses

    try:
        return dataclasses.asdict(process_info(pid))
    except TargetProcessError as exc:
        return {"pid": pid, "error": str(exc)}
