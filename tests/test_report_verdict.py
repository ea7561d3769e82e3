"""The report's verdict and its own culprit evidence agree (memtui.engine.report.json_report)."""

from __future__ import annotations

import dataclasses
from typing import Any

from memtui.engine.culprits.signatures import Suspect
from memtui.engine.detect.events import LeakVerdict
from memtui.engine.report.json_report import corroborate, lifted_verdict

MIB = 1024 * 1024


def _leak(state: str, rate: float, suspect_mb_h: float | None) -> dict[str, Any]:
    suspects = [] if suspect_mb_h is None else [
        {"name": "shop.SESSIONS", "bytes_per_hour": suspect_mb_h * MIB}
    ]  # fmt: skip
    return {
        "state": state,
        "leak_rate_mb_per_hour": rate,
        "reason": "levelling off: floor growth slowed to +274.5 MB/h (warm-up)",
        "leak_detected": False,
        "suspects": suspects,
    }


def test_a_steadily_growing_container_lifts_a_slowing_rss_to_suspected() -> None:
    leak = _leak("ok", 397.9, 145.0)
    corroborate(leak, 10.0)
    assert leak["state"] == "suspected" and leak["leak_detected"] is False
    assert "shop.SESSIONS grows steadily (+145.0 MB/h)" in leak["reason"]
    assert leak["reason"].startswith("levelling off")  # the detector's own words stay


def test_no_lift_without_rss_growth_a_suspect_or_a_fast_enough_one() -> None:
    for leak in (_leak("ok", 3.0, 145.0), _leak("ok", 397.9, None), _leak("ok", 397.9, 2.0)):
        corroborate(leak, 10.0)
        assert leak["state"] == "ok"
    confirmed = _leak("leak", 397.9, 145.0)
    corroborate(confirmed, 10.0)
    assert confirmed["state"] == "leak" and "grows steadily" not in confirmed["reason"]


def test_the_line_that_names_the_growing_container_leads_the_leaking_lines(tmp_path: Any) -> None:
    from memtui.engine.report.json_report import link_lines_to_suspects

    app = tmp_path / "shop.py"
    app.write_text(
        "RECENT.append({'path': path})\n"  # a bounded deque, busier
        "SESSIONS[sid] = {'user': user}\n"  # the leak
        "SESSIONS_SEEN = 0\n"  # another name that merely starts the same
    )
    recent = {"file": str(app), "line": 1, "growth_mb_per_hour": 56.3}
    sessions = {"file": str(app), "line": 2, "growth_mb_per_hour": 10.9}
    seen = {"file": str(app), "line": 3, "growth_mb_per_hour": 1.0}
    leak = {
        "leaking_allocators": [recent, sessions, seen],
        "suspects": [{"name": "shop.SESSIONS", "path": "shop.SESSIONS"}],
    }
    link_lines_to_suspects(leak, [recent, sessions])
    assert [e["line"] for e in leak["leaking_allocators"]] == [2, 1, 3]
    assert sessions["fills"] == "shop.SESSIONS" and "fills" not in recent and "fills" not in seen


def test_the_monitor_lifts_its_live_verdict_by_the_same_rule() -> None:
    """The header and the leak pane show SUSPECTED where the report will say "suspected"."""
    reason = "levelling off: floor growth slowed to +274.5 MB/h (warm-up)"
    live = LeakVerdict("ok", False, 0.4, 397.9, 0.9, None, None, None, reason)
    sessions = Suspect(
        "unbounded_collection", "shop.SESSIONS", "dict `shop.SESSIONS` grew", 409, 6239,
        5830.0, 0.9, path="shop.SESSIONS", bytes_per_hour=145.0 * MIB,
    )  # fmt: skip
    shown = lifted_verdict(live, [sessions], 10.0)
    assert shown.state == "suspected" and not shown.leak_detected
    assert (
        shown.reason.startswith("levelling off") and "shop.SESSIONS grows steadily" in shown.reason
    )
    slow = dataclasses.replace(sessions, bytes_per_hour=2.0 * MIB)
    assert lifted_verdict(live, [slow], 10.0) is live
    assert (
        lifted_verdict(dataclasses.replace(live, rate_mb_per_hour=3.0), [sessions], 10.0).state
        == "ok"
    )
    leak = dataclasses.replace(live, state="leak", leak_detected=True)
    assert lifted_verdict(leak, [sessions], 10.0) is leak
