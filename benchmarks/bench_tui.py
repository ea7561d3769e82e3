"""Provides the monitor benchmark: CPU, terminal KB/s and time to first frame in a tmux pane.

Runs the app (on FakeSource frames, one new frame per poll) at 160x45 inside
``script`` inside tmux, then measures, with psutil, the app's CPU while live, paused (``p``)
and after the target exited, and the bytes ``script`` recorded (what an SSH link carries).

Usage: python benchmarks/bench_tui.py [--quick] [--live-s 60] [--idle-s 30]
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

T0 = time.time()  # the child's start, before Textual is imported
ROOT = Path(__file__).resolve().parent.parent
REFERENCE = {
    "memray live": {"cpu_live": 11.2, "kbps_live": 67.0, "kbps_idle": 45.0, "first": "0.9-1.2 s"},
    "plain Textual": {"cpu_live": 2.3, "kbps_live": 11.0, "kbps_idle": None, "first": "-"},
}
TARGETS = {"cpu_live": 3.0, "cpu_idle": 1.0, "kbps_live": 10.0, "kbps_idle": 1.0, "first_s": 0.3}


def child(control: Path) -> None:
    """Run the app; the parent creates ``control/exit`` to make the fake target exit."""
    sys.path.insert(0, str(ROOT / "tests"))
    from fake_source import FakeSource, demo_frames

    from memtui.engine.frame import MonitorFrame
    from memtui.tui.app import MemtuiApp
    from memtui.tui.messages import FrameReceived

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
    app.run()
    (control / "result.json").write_text(
        json.dumps({"start": T0, "first_painted": painted[0] if painted else None})
    )


def _tmux(*args: str) -> None:
    subprocess.run(["tmux", *args], check=True)


def measure(live_s: float, idle_s: float) -> dict[str, float]:
    import psutil

    control = Path(tempfile.mkdtemp(prefix="memtui-bench-"))
    out = control / "typescript"
    session = f"memtui-bench-{os.getpid()}"
    cmd = (
        f"TERM=xterm-256color script -q -f {out} -c "
        f"'{sys.executable} {Path(__file__).resolve()} --child {control}'"
    )
    launched = time.time()
    _tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "45", cmd)
    try:
        while not (control / "pid").exists():
            if time.time() - launched > 20:
                raise RuntimeError(f"the app did not start; see {out}")
            time.sleep(0.01)
        first_seen = None
        while first_seen is None and time.time() - launched < 10:
            if out.exists() and b"LIVE" in out.read_bytes():
                first_seen = time.time()
            time.sleep(0.005)
        proc = psutil.Process(int((control / "pid").read_text()))
        time.sleep(2.0)  # settle: startup is not steady state

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
        (control / "exit").write_text("")
        time.sleep(2.0)
        cpu_exited, kbps_exited = phase(idle_s)
        capture = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
        ).stdout
        _tmux("send-keys", "-t", session, "q")
        deadline = time.time() + 10
        while not (control / "result.json").exists() and time.time() < deadline:
            time.sleep(0.05)
        result = json.loads((control / "result.json").read_text())
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    first_painted = result["first_painted"]
    shutil.rmtree(control, ignore_errors=True)
    return {
        "first_frame_s": (first_painted - result["start"]) if first_painted else float("nan"),
        "first_seen_s": (first_seen - launched) if first_seen else float("nan"),
        "cpu_live": cpu_live,
        "kbps_live": kbps_live,
        "cpu_paused": cpu_paused,
        "kbps_paused": kbps_paused,
        "cpu_exited": cpu_exited,
        "kbps_exited": kbps_exited,
        "exited_shown": float("TARGET EXITED" in capture),
    }


def report(m: dict[str, float], live_s: float, idle_s: float) -> str:
    def ok(value: float, target: float) -> str:
        return "ok" if value <= target else "OVER"

    lines = [
        f"memtui monitor at 160x45, 1 Hz, live {live_s:g} s, paused/exited {idle_s:g} s each",
        f"{'':34}{'memtui':>10}{'target':>9}{'memray live':>13}{'plain Textual':>15}",
        f"{'first frame (start -> painted)':34}{m['first_frame_s']:>9.3f}s"
        f"{'<=0.3s':>9}{'0.9-1.2s*':>13}{'-':>15}  {ok(m['first_frame_s'], 0.3)}",
        f"{'first frame (tmux launch -> seen)':34}{m['first_seen_s']:>9.3f}s{'':9}{'':13}{'':15}",
        f"{'CPU live (% of a core)':34}{m['cpu_live']:>10.2f}{'<=3':>9}{11.2:>13}{2.3:>15}"
        f"  {ok(m['cpu_live'], 3.0)}",
        f"{'CPU paused':34}{m['cpu_paused']:>10.2f}{'<=1':>9}{'-':>13}{'-':>15}"
        f"  {ok(m['cpu_paused'], 1.0)}",
        f"{'CPU after target exited':34}{m['cpu_exited']:>10.2f}{'<=1':>9}{'-':>13}{'-':>15}"
        f"  {ok(m['cpu_exited'], 1.0)}",
        f"{'terminal KB/s live':34}{m['kbps_live']:>10.2f}{'<=10':>9}{67:>13}{11:>15}"
        f"  {ok(m['kbps_live'], 10.0)}",
        f"{'terminal KB/s paused':34}{m['kbps_paused']:>10.2f}{'<=1':>9}{45:>13}{'-':>15}"
        f"  {ok(m['kbps_paused'], 1.0)}",
        f"{'terminal KB/s after exit':34}{m['kbps_exited']:>10.2f}{'<=1':>9}{'-':>13}{'-':>15}"
        f"  {ok(m['kbps_exited'], 1.0)}",
        f"status after exit shown: {'yes' if m['exited_shown'] else 'NO'}",
        "* memray: first data, measured in MEASUREMENTS.md, not in this run",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10 s live, 5 s paused/exited")
    parser.add_argument("--live-s", type=float, default=60.0)
    parser.add_argument("--idle-s", type=float, default=30.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(Path(args.child))
        return 0
    if shutil.which("tmux") is None or shutil.which("script") is None:
        print("bench_tui: needs tmux and script (util-linux)", file=sys.stderr)
        return 2
    live_s, idle_s = (10.0, 5.0) if args.quick else (args.live_s, args.idle_s)
    print(report(measure(live_s, idle_s), live_s, idle_s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
