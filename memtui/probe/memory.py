"""Provides process memory readings from /proc (RSS, VMS; USS/PSS/swap from smaps_rollup)."""

from __future__ import annotations

import contextlib
import errno
import os
from types import TracebackType
from typing import NamedTuple


class MemoryReading(NamedTuple):
    """One reading of a process's memory, in bytes."""

    rss_bytes: int
    vms_bytes: int
    uss_bytes: int | None = None
    """Unique set size; only from ``read_full`` (smaps_rollup), None when not read."""
    pss_bytes: int | None = None
    swap_bytes: int | None = None


_PAGE_SIZE: int = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

# smaps keys we sum, in kB; everything else in the file is skipped.
_PSS = b"Pss:"
_PRIVATE_CLEAN = b"Private_Clean:"
_PRIVATE_DIRTY = b"Private_Dirty:"
_SWAP = b"Swap:"


def parse_smaps(data: bytes) -> tuple[int, int, int]:
    """Sum (uss, pss, swap) in bytes over every mapping block of smaps or smaps_rollup text.

    smaps_rollup has one block and smaps one per mapping, so one parser serves both.
    """
    uss = pss = swap = 0
    for line in data.split(b"\n"):
        # Mapping header lines start with a hex address; key lines with a capital letter.
        if line.startswith(_PSS):
            pss += int(line.split()[1])
        elif line.startswith(_PRIVATE_CLEAN) or line.startswith(_PRIVATE_DIRTY):
            uss += int(line.split()[1])
        elif line.startswith(_SWAP):
            swap += int(line.split()[1])
    return uss * 1024, pss * 1024, swap * 1024


def _pread_all(fd: int, chunk: int = 65536) -> bytes:
    """Read a whole /proc file from offset 0 through a kept-open descriptor."""
    parts: list[bytes] = []
    offset = 0
    while True:
        data = os.pread(fd, chunk, offset)
        if not data:
            break
        parts.append(data)
        offset += len(data)
    return b"".join(parts)


class ProcMemoryReader:
    """Reads /proc/PID/statm through a kept-open descriptor (about 1 µs a reading).

    Raises ProcessLookupError when the process is gone and PermissionError when its
    /proc files may not be read.
    """

    def __init__(self, pid: int | None = None) -> None:
        self.pid: int = os.getpid() if pid is None else int(pid)
        self._proc_dir = f"/proc/{self.pid}"
        self._statm_fd: int | None = None
        self._full_fd: int | None = None
        self._full_is_rollup = True
        if not os.path.isdir("/proc/self"):
            raise OSError(errno.ENOSYS, "memory readings need Linux /proc, which is not mounted")
        # The descriptor pins this very process: a reused pid can never be read by mistake.
        self._statm_fd = self._open("statm")

    def _open(self, name: str) -> int:
        path = f"{self._proc_dir}/{name}"
        try:
            return os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            if not os.path.exists(self._proc_dir):
                raise ProcessLookupError(
                    errno.ESRCH, f"process {self.pid} does not exist (or has exited)"
                ) from None
            raise
        except PermissionError:
            raise PermissionError(
                errno.EACCES,
                f"not allowed to read {path}: the process must belong to the same user "
                "(or run memtui with CAP_SYS_PTRACE / as root)",
            ) from None

    def _gone(self) -> ProcessLookupError:
        return ProcessLookupError(errno.ESRCH, f"process {self.pid} has exited")

    def read(self) -> MemoryReading:
        """RSS and VMS from statm: one pread, no allocation beyond the result."""
        fd = self._statm_fd
        if fd is None:
            raise ValueError("ProcMemoryReader is closed")
        try:
            data = os.pread(fd, 256, 0)
        except ProcessLookupError:
            raise self._gone() from None
        size, resident = data.split(None, 2)[:2]
        vms = int(size)
        rss = int(resident)
        if vms == 0 and self._is_dead():
            # A zombie (exited, not yet reaped) reads as all zeros.
            raise self._gone()
        return MemoryReading(rss_bytes=rss * _PAGE_SIZE, vms_bytes=vms * _PAGE_SIZE)

    def _is_dead(self) -> bool:
        """True when the process is a zombie or gone (only asked when statm reads zeros)."""
        try:
            with open(f"{self._proc_dir}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            return True
        state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
        return state in (b"Z", b"X", b"x")

    def read_full(self) -> MemoryReading:
        """RSS/VMS plus USS, PSS and swap from smaps_rollup (costs ~4 µs per MB of RSS)."""
        basic = self.read()
        if self._full_fd is None:
            try:
                self._full_fd = self._open("smaps_rollup")
            except FileNotFoundError:
                # Kernels before 4.14 have no smaps_rollup: sum the per-mapping smaps.
                self._full_fd = self._open("smaps")
                self._full_is_rollup = False
        try:
            data = _pread_all(self._full_fd)
        except ProcessLookupError:
            raise self._gone() from None
        except PermissionError:
            name = "smaps_rollup" if self._full_is_rollup else "smaps"
            raise PermissionError(
                errno.EACCES,
                f"not allowed to read {self._proc_dir}/{name}: the process must belong to "
                "the same user (or run memtui with CAP_SYS_PTRACE / as root)",
            ) from None
        uss, pss, swap = parse_smaps(data)
        return MemoryReading(
            rss_bytes=basic.rss_bytes,
            vms_bytes=basic.vms_bytes,
            uss_bytes=uss,
            pss_bytes=pss,
            swap_bytes=swap,
        )

    def close(self) -> None:
        """Close the kept-open descriptors; safe to call more than once."""
        for attr in ("_statm_fd", "_full_fd"):
            fd = getattr(self, attr, None)
            if fd is not None:
                setattr(self, attr, None)
                with contextlib.suppress(OSError):
                    os.close(fd)

    def __enter__(self) -> ProcMemoryReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
