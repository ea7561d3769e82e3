"""contrib/: the alerting rule passes promtool, the dashboard queries only exported metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CONTRIB = Path(__file__).resolve().parent.parent / "contrib"
EXPORTED = {
    "memtui_rss_bytes",
    "memtui_traced_bytes",
    "memtui_leak_state",
    "memtui_leak_rate_mb_per_hour",
    "memtui_gc_collections_total",
    "memtui_gc_seconds_total",
    "memtui_objects",
}


def test_dashboard_queries_exported_metrics() -> None:
    dash = json.loads((CONTRIB / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"memtui_[a-z_]+", e)}
    assert used and used <= EXPORTED, used - EXPORTED
    assert {"memtui_rss_bytes", "memtui_leak_state"} <= used
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])


def test_alert_rule_is_leak_state_2_for_10m() -> None:
    text = (CONTRIB / "prometheus-alerts.yml").read_text()
    assert "expr: memtui_leak_state == 2" in text and "for: 10m" in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) missing")
def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run(
        ["promtool", "check", "rules", str(CONTRIB / "prometheus-alerts.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
