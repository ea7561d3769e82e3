"""Tests for read_series_csv, analyze_series and `memtui analyze` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from memtui.cli import main
from memtui.engine.detect.series_file import analyze_series, read_series_csv
from memtui.errors import SeriesError

MIB = 1024.0 * 1024.0


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.csv"
    p.write_text(text)
    return p


def _leak_csv(tmp_path: Path) -> Path:
    t = np.arange(0.0, 4 * 3600.0, 10.0)
    y = (300.0 + 50.0 * t / 3600.0 + np.random.default_rng(1).normal(0, 1, t.size)) * MIB
    rows = "\n".join(f"{a:.1f},{int(b)}" for a, b in zip(t, y, strict=True))
    return _write(tmp_path, "timestamp,rss_bytes\n" + rows + "\n")


def test_reads_columns_by_name_with_extra_columns(tmp_path: Path) -> None:
    p = _write(tmp_path, "rss_bytes,note,timestamp\n100,a,0\n200,b,1.5\n")
    t, x = read_series_csv(p)
    assert t == [0.0, 1.5]
    assert x == [100.0, 200.0]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param(None, "no such file", id="missing"),
        pytest.param("", "empty", id="empty"),
        pytest.param("0,100\n1,200\n", "header", id="no-header"),
        pytest.param("time,rss\n0,100\n1,200\n", "header", id="wrong-header"),
        pytest.param("timestamp,rss_bytes\n0,100\n1,abc\n", "line 3", id="non-numeric"),
        pytest.param("timestamp,rss_bytes\n0,100\n", "at least 2", id="one-sample"),
        pytest.param("timestamp,rss_bytes\n0,1\n5,1\n3,1\n", "backwards", id="backwards"),
    ],
)
def test_bad_series_raise_one_line(tmp_path: Path, text: str | None, needle: str) -> None:
    p = tmp_path / "missing.csv" if text is None else _write(tmp_path, text)
    with pytest.raises(SeriesError) as exc:
        read_series_csv(p)
    msg = str(exc.value)
    assert needle in msg
    assert "\n" not in msg


def test_analyze_series_contract_is_json_clean(tmp_path: Path) -> None:
    t, x = read_series_csv(_leak_csv(tmp_path))
    out = analyze_series(t, x, 10.0, memory_limit_bytes=4 << 30)
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text) == out
    assert out["leak_detected"] is True
    assert out["leak_rate_mb_per_hour"] == pytest.approx(50.0, rel=0.05)
    assert isinstance(out["first_detected_at"], float)
    assert out["projected_oom_hours"] is not None
    assert out["n_samples"] == len(t)
    for key in ("confidence", "r_squared", "reason", "onset_s", "state", "duration_h", "events"):
        assert key in out


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["analyze", str(_leak_csv(tmp_path)), "--growth-threshold", "10", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["leak_detected"] is True
    assert out["projected_oom_hours"] is None


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(None, id="missing"),
        pytest.param("hello\n", id="garbage"),
        pytest.param("timestamp,rss_bytes\n0,1\n1,x\n", id="bad-row"),
    ],
)
def test_cli_bad_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None) -> None:
    p = tmp_path / "nope.csv" if text is None else _write(tmp_path, text)
    code = main(["analyze", str(p), "--json"])
    captured = capsys.readouterr()
    assert code != 0
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("memtui: ")
    assert "Traceback" not in captured.err
