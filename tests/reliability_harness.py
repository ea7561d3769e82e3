"""Provides the real fixtures of the reliability tests: memory cgroups, small tmpfs mounts,
targets in their own process, and memtui's CLI run as a subprocess (bounded in time).

Nothing here is a mock: a cgroup is a real kernel memory limit (v2 when this machine's unified
hierarchy has the memory controller, else v1's), a tmpfs a real mount. When the machine does not
allow one (not root, no controller, no mount permission) ``make_*`` returns None and the reason,
and the test skips with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
MEMTUI = [sys.executable, "-m", "memtui"]


@dataclass
class MemoryCgroup:
    """A memory cgroup made for one test (removed by ``remove``)."""

    path: Path
    version: int

    def _file(self, v2: str, v1: str) -> Path:
        return self.path / (v2 if self.version == 2 else v1)

    def usage(self) -> int:
        return int(self._file("memory.current", "memory.usage_in_bytes").read_text())

    def set_limit(self, limit_bytes: int) -> None:
        self._file("memory.max", "memory.limit_in_bytes").write_text(str(limit_bytes))

    def oom_kills(self) -> int:
        """The kernel's count of OOM kills in this cgroup."""
        text = self._file("memory.events", "memory.oom_control").read_text()
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def join(self) -> None:
        """Move the calling process in (a ``preexec_fn``: the target starts inside)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)  # its last process is still being reaped


def _own_cgroup(controller: str) -> str | None:
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if (controller == "" and controllers == "") or controller in controllers.split(","):
                return path
    return None


def make_memory_cgroup(name: str) -> tuple[MemoryCgroup | None, str]:
    """A fresh memory cgroup under this process's own, v2 first; (None, why) if impossible."""
    if os.geteuid() != 0:
        return None, "creating a memory cgroup needs root"
    for v2_root in (CGROUP_ROOT, CGROUP_ROOT / "unified"):
        controllers = v2_root / "cgroup.controllers"
        if controllers.exists() and "memory" in controllers.read_text().split():
            # the root of the v2 hierarchy may hold processes and delegate the controller
            with contextlib.suppress(OSError):
                (v2_root / "cgroup.subtree_control").write_text("+memory")
            path = v2_root / name
            try:
                path.mkdir()
            except OSError as exc:
                return None, f"cannot create a v2 cgroup at {path}: {exc.strerror}"
            if (path / "memory.max").exists():
                return MemoryCgroup(path, 2), ""
            path.rmdir()
    own = _own_cgroup("memory")
    v1_root = CGROUP_ROOT / "memory"
    if own is None or not (v1_root / "memory.limit_in_bytes").exists():
        return None, "no memory cgroup controller is mounted (v2 or v1)"
    path = v1_root / own.strip("/") / name
    try:
        path.mkdir()
    except OSError as exc:
        return None, f"cannot create a v1 memory cgroup at {path}: {exc.strerror}"
    return MemoryCgroup(path, 1), ""


def mount_tmpfs(where: Path, size: str) -> str:
    """Mount a tmpfs of ``size`` at ``where``; '' when done, else why not."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None:
        return "no mount command"
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    return "" if done.returncode == 0 else f"mount refused: {done.stderr.strip()}"


def umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def spawn_target(
    source: str, tmp: Path, preexec: object = None, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """A Python target that prints 'ready' once set up (a real separate process)."""
    script = tmp / f"target-{time.monotonic_ns()}.py"
    script.write_text(source)
    proc = subprocess.Popen(
        [sys.executable, "-I", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=preexec,  # type: ignore[arg-type]
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "ready", f"target did not start: {line!r}"
    return proc


def memtui(
    *args: str, timeout_s: float = 60.0, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """memtui's CLI in a subprocess, the way a user runs it; bounded by ``timeout_s``."""
    return subprocess.run(
        [*MEMTUI, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=cwd,
        env={**os.environ, **env},
    )


def one_clear_line(stderr: str) -> str:
    """The error output is one line starting 'memtui:' and carries no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    assert lines[0].startswith("memtui: "), stderr
    return lines[0]


def kill(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait(10)
