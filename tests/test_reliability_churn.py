"""Monitor churn against one real agent (attached by gdb): connect/disconnect cycles and the
agent's maximum of 8 concurrent viewers leave its thread and fd counts where they were, and a
second round grows its memory by no more than noise. Small counts here; the 1,000-cycle run
with the target's slowdown is benchmarks/soak/churn.py."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "soak"))
from churn import Target, TargetDied, run_churn

pytestmark = [
    pytest.mark.skipif(shutil.which("gdb") is None, reason="attach needs gdb"),
    pytest.mark.timeout(120),
]


def test_churn_and_eight_viewers_return_to_baseline(tmp_path: Path) -> None:
    target = Target(tmp_path)
    try:
        first = run_churn(target, cycles=50, viewers=8, viewer_s=1.0, measure_s=0.0)
        second = run_churn(target, cycles=50, viewers=8, viewer_s=1.0, measure_s=0.0)
    except TargetDied as exc:
        pytest.fail(f"{exc}: {target.death()}")
    finally:
        target.stop()
    for round_ in (first, second):
        assert round_.cycles_failed == 0 and round_.viewer_errors == 0
        assert round_.viewer_frames >= 8
        assert (round_.after.threads, round_.after.fds) == (
            round_.before.threads,
            round_.before.fds,
        ), round_
    # the first round builds what the agent keeps (caches, history); the second adds ~nothing
    # The allocator may keep a few arenas of the first round's frames: a bound, not zero.
    assert second.after.rss_bytes - second.before.rss_bytes < 4 << 20, second
