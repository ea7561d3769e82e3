"""Provides the monitor benchmark: CPU, terminal KB/s and time to first frame in a tmux pane.

Runs a monitor at 160x45 inside ``script`` inside tmux, then measures, with psutil, its CPU
while live, paused (``p``) and after the target exited, and the bytes ``script`` recorded
(what an SSH link carries). Three monitors:

- memtui on FakeSource frames, one new frame per poll in which every value moves (harsher
  than a real target, whose counts change at each census);
- the baseline: a plain Textual screen of the same panes on the same frames (Static text,
  DataTables refilled and the plot rebuilt on every frame, as a first version would);
- ``--demo``: the real ``memtui demo`` (the monitor process only; the demo target's CPU is
  not counted); the exit phase is skipped.

Usage: python benchmarks/bench_tui.py [--quick] [--live-s 60] [--idle-s 30] [--demo]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

T0 = time.time()  # the child's start, before Textual is imported
ROOT = Path(__file__).resolve().parent.parent
REFERENCE: dict[str, dict[str, Any]] = {
    "memray live": {"cpu_live": 11.2, "kbps_live": 67.0, "kbps_idle": 45.0, "first": "0.9-1.2 s"},
    "plain Textual": {"cpu_live": 2.3, "kbps_live": 11.0, "kbps_idle": None, "first": "-"},
}
TARGETS = {"cpu_live": 3.0, "cpu_idle": 1.0, "kbps_live": 10.0, "kbps_idle": 1.0, "first_s": 0.3}


def child(control: Path, plain: bool) -> None:
    """Run the app; the parent creates ``control/exit`` to make the fake target exit."""
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fake_source import FakeSource, demo_frames

    from memtui.engine.monitor.frame import MonitorFrame
    from memtui.tui.messages import FrameReceived

    if plain:
        from plain_monitor import PlainApp as MemtuiApp
    else:
        from memtui.tui.app import MemtuiApp  # type: ignore[assignment]

    class LiveSource(FakeSource):
        def poll(self, max_points: int = 600) -> MonitorFrame:
            if self.exit_code is None and (control / "exit").exists():
                self.exit(code=0, at=time.time())
            # One new frame per poll, built when asked, as a real source does.
            self.frames = demo_frames(1, start_s=3 * 3600.0 + self.polls)
            return super().poll(max_points)

    source = LiveSource(demo_frames(1, start_s=3 * 3600.0))
    painted: list[float] = []

    class BenchApp(MemtuiApp):
        def on_frame_received(self, message: FrameReceived) -> None:
            super().on_frame_received(message)
            if not painted:
                self.call_after_refresh(lambda: painted.append(time.time()))

    app = BenchApp(source, out_dir=str(control))
    (control / "pid").write_text(str(os.getpid()))
    run_at = time.time()  # imports done: what Textual and memtui cost before the app runs
    app.run()
    (control / "result.json").write_text(
        json.dumps(
            {"start": T0, "run_at": run_at, "first_painted": painted[0] if painted else None}
        )
    )


def _tmux(*args: str) -> None:
    subprocess.run(["tmux", *args], check=True)


def _find(psutil: Any, root: Any, words: tuple[str, ...], avoid: str) -> Any:
    """The descendant of ``root`` whose command line has ``words`` and not ``avoid``."""
    for p in root.children(recursive=True):
        try:
            cmd = " ".join(p.cmdline())
        except psutil.Error:
            continue
        if all(w in cmd for w in words) and avoid not in cmd:
            return p
    return None


def measure(live_s: float, idle_s: float, mode: str = "memtui") -> dict[str, float]:
    """``mode``: memtui or plain (on fake frames), or demo (the real `memtui demo`)."""
    import psutil

    control = Path(tempfile.mkdtemp(prefix="memtui-bench-"))
    out = control / "typescript"
    session = f"memtui-bench-{os.getpid()}"
    if mode == "demo":
        inner = f"{sys.executable} -m memtui demo --out-dir {control}"
    else:
        plain = " --plain" if mode == "plain" else ""
        inner = f"{sys.executable} {Path(__file__).resolve()} --child {control}{plain}"
    cmd = f"TERM=xterm-256color script -q -f {out} -c '{inner}'"
    launched = time.time()
    _tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "45", cmd)
    target = None
    try:
        first_seen = None
        while first_seen is None and time.time() - launched < 30:
            if out.exists() and b"LIVE" in out.read_bytes():
                first_seen = time.time()
            time.sleep(0.005)
        if mode == "demo":
            pane_pid = subprocess.run(
                ["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"],
                capture_output=True,
                text=True,
            ).stdout.split()[0]
            root = psutil.Process(int(pane_pid))
            proc = _find(psutil, root, ("memtui", "demo"), "memtui.demo")
            target = _find(psutil, root, ("memtui.demo",), "\x00")
            if proc is None or target is None:
                raise RuntimeError(f"memtui demo did not start; see {out}")
        else:
            while not (control / "pid").exists():
                if time.time() - launched > 20:
                    raise RuntimeError(f"the app did not start; see {out}")
                time.sleep(0.01)
            proc = psutil.Process(int((control / "pid").read_text()))
        time.sleep(5.0 if mode == "demo" else 2.0)  # settle: startup is not steady state

        def phase(seconds: float) -> tuple[float, float]:
            c0, b0, w0 = sum(proc.cpu_times()[:2]), out.stat().st_size, time.time()
            time.sleep(seconds)
            c1, b1, w1 = sum(proc.cpu_times()[:2]), out.stat().st_size, time.time()
            return 100.0 * (c1 - c0) / (w1 - w0), (b1 - b0) / 1024.0 / (w1 - w0)

        cpu_live, kbps_live = phase(live_s)
        _tmux("send-keys", "-t", session, "p")
        time.sleep(1.0)
        cpu_paused, kbps_paused = phase(idle_s)
        _tmux("send-keys", "-t", session, "p")
        time.sleep(1.0)
        if target is not None:
            target.kill()
        else:
            (control / "exit").write_text("")
        time.sleep(2.0)
        cpu_exited, kbps_exited = phase(idle_s)
        capture = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
        ).stdout
        _tmux("send-keys", "-t", session, "q")
        result: dict[str, Any] = {"start": launched, "first_painted": None}
        deadline = time.time() + 10
        while mode != "demo" and not (control / "result.json").exists():
            if time.time() > deadline:
                break
            time.sleep(0.05)
        if (control / "result.json").exists():
            result = json.loads((control / "result.json").read_text())
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        if target is not None and target.is_running():
            target.kill()
    first_painted = result["first_painted"]
    shutil.rmtree(control, ignore_errors=True)
    return {
        "first_frame_s": (first_painted - result["start"]) if first_painted else float("nan"),
        "run_to_frame_s": (first_painted - result["run_at"]) if first_painted else float("nan"),
        "first_seen_s": (first_seen - launched) if first_seen else float("nan"),
        "cpu_live": cpu_live,
        "kbps_live": kbps_live,
        "cpu_paused": cpu_paused,
        "kbps_paused": kbps_paused,
        "cpu_exited": cpu_exited,
        "kbps_exited": kbps_exited,
        "exited_shown": float("TARGET EXITED" in capture or mode == "plain"),
    }


ROWS = (
    ("first frame (launch -> LIVE seen)", "first_seen_s", "first_s", "s"),
    ("first frame (start -> painted)", "first_frame_s", "first_s", "s"),
    ("first frame (app.run -> painted)", "run_to_frame_s", "first_s", "s"),
    ("CPU live (% of a core)", "cpu_live", "cpu_live", ""),
    ("CPU paused", "cpu_paused", "cpu_idle", ""),
    ("CPU after target exited", "cpu_exited", "cpu_idle", ""),
    ("terminal KB/s live", "kbps_live", "kbps_live", ""),
    ("terminal KB/s paused", "kbps_paused", "kbps_idle", ""),
    ("terminal KB/s after exit", "kbps_exited", "kbps_idle", ""),
)


def report(runs: dict[str, dict[str, float]], live_s: float, idle_s: float) -> str:
    """One column per monitor measured; 'ok'/'OVER' judge memtui's columns on the targets."""
    names = list(runs)
    lines = [
        f"monitors at 160x45, 1 Hz, live {live_s:g} s, paused/exited {idle_s:g} s each",
        f"{'':36}" + "".join(f"{n:>16}" for n in names) + f"{'target':>9}",
    ]
    for label, key, target_key, unit in ROWS:
        target = TARGETS[target_key]
        cells = []
        verdict = []
        for name in names:
            value = runs[name][key]
            cells.append(f"{value:>15.2f}{unit or ' '}")
            if name != "plain Textual" and value == value:  # NaN: not measured
                verdict.append("ok" if value <= target else "OVER")
        lines.append(
            f"{label:36}"
            + "".join(cells)
            + f"{'<=' + format(target, 'g'):>9}  "
            + " ".join(verdict)
        )
    for name in names:
        lines.append(
            f"{name}: status after exit shown: {'yes' if runs[name]['exited_shown'] else 'NO'}"
        )
    ref = REFERENCE["memray live"]
    lines.append(
        f"memray live (not installed here; figures from the issue): {ref['kbps_live']:g} KB/s, "
        f"{ref['cpu_live']:g}% CPU live"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 s live, 5 s paused/exited")
    parser.add_argument("--live-s", type=float, default=60.0)
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--demo", action="store_true", help="also measure the real memtui demo")
    parser.add_argument("--no-baseline", action="store_true", help="skip the plain Textual run")
    parser.add_argument("--demo-only", action="store_true", help="only the real memtui demo")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(Path(args.child), args.plain)
        return 0
    if shutil.which("tmux") is None or shutil.which("script") is None:
        print("bench_tui: needs tmux and script (util-linux)", file=sys.stderr)
        return 2
    live_s, idle_s = (10.0, 5.0) if args.quick else (args.live_s, args.idle_s)
    runs = {} if args.demo_only else {"memtui (fake)": measure(live_s, idle_s, "memtui")}
    if not args.no_baseline and not args.demo_only:
        runs["plain Textual"] = measure(live_s, idle_s, "plain")
    if args.demo or args.demo_only:
        runs["memtui demo"] = measure(live_s, idle_s, "demo")
    print(report(runs, live_s, idle_s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
