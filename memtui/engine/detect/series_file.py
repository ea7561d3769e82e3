"""Provides the leak verdict for a recorded memory series (`memtui analyze FILE.csv`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from memtui.engine.detect.detector import LeakDetector
from memtui.engine.detect.stats import HOUR
from memtui.errors import SeriesError

EVENTS_REPORTED = 50
_REQUIRED = ("timestamp", "rss_bytes")


def _parse_rows(path: Path, lines: list[str], cols: tuple[int, int]) -> NDArray[np.float64]:
    """Parse data lines with numpy; on failure find the first bad line to name it."""
    body = [ln for ln in lines[1:] if ln.strip()]
    try:
        data = np.loadtxt(body, delimiter=",", usecols=cols, dtype=np.float64, ndmin=2)
    except (ValueError, IndexError):
        data = None
    if data is not None and bool(np.isfinite(data).all()):
        return data
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        try:
            vals = [float(parts[c]) for c in cols]
        except (ValueError, IndexError):
            raise SeriesError(
                f"{path}: line {lineno} is not a number pair: {line.strip()[:60]!r}"
            ) from None
        if not all(math.isfinite(v) for v in vals):
            raise SeriesError(f"{path}: line {lineno} holds a non-finite value")
    raise SeriesError(f"{path}: could not parse the rows")


def read_series_csv(path: str | Path) -> tuple[list[float], list[float]]:
    """Read a ``timestamp,rss_bytes`` CSV; raise SeriesError with one clear line when unusable."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SeriesError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise SeriesError(f"{p}: is a directory, expected a CSV file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise SeriesError(f"{p}: cannot read ({reason})") from None
    lines = text.splitlines()
    if not lines:
        raise SeriesError(f"{p}: empty file, expected a 'timestamp,rss_bytes' header")
    header = [h.strip().lower() for h in lines[0].lstrip("\ufeff").split(",")]
    if not all(name in header for name in _REQUIRED):
        raise SeriesError(
            f"{p}: first line must be a header naming 'timestamp' and 'rss_bytes' "
            f"columns, got {lines[0].strip()[:60]!r}"
        )
    cols = (header.index("timestamp"), header.index("rss_bytes"))
    data = _parse_rows(p, lines, cols)
    if data.shape[0] < 2:
        raise SeriesError(f"{p}: needs at least 2 samples, found {data.shape[0]}")
    t = data[:, 0]
    back = np.flatnonzero(np.diff(t) < 0)
    if back.size:
        raise SeriesError(
            f"{p}: timestamps go backwards at sample {int(back[0]) + 2} "
            f"({t[back[0]]:g} then {t[back[0] + 1]:g})"
        )
    return t.tolist(), data[:, 1].tolist()


def _clean(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(x)


def analyze_series(
    timestamps_s: Sequence[float],
    rss_bytes: Sequence[float],
    growth_threshold_mb_per_hour: float = 10.0,
    memory_limit_bytes: int | None = None,
    alert_threshold_mb: float | None = None,
) -> dict[str, Any]:
    """Feed the series to LeakDetector as the live monitor would (vectorised, same result).

    Returns the DESIGN.md contract: leak_detected, confidence, leak_rate_mb_per_hour,
    first_detected_at (seconds from the first sample, or None), plus reason, r_squared,
    onset_s, state, projected_oom_hours, n_samples, duration_h and (capped) events.
    """
    t = np.asarray(timestamps_s, dtype=np.float64)
    x = np.asarray(rss_bytes, dtype=np.float64)
    det = LeakDetector(growth_threshold_mb_per_hour, alert_threshold_mb, memory_limit_bytes)
    det.update_many(t, x)
    v = det.final_verdict()
    events = [
        {
            "kind": e.kind,
            "t_s": float(e.t_s),
            "size_mb": round(float(e.size_mb), 3),
            "message": e.message,
        }
        for e in det.events[-EVENTS_REPORTED:]
    ]
    duration = float(t[-1] - t[0]) if t.size else 0.0
    return {
        "leak_detected": bool(v.leak_detected),
        "confidence": float(v.confidence),
        "leak_rate_mb_per_hour": float(v.rate_mb_per_hour),
        "first_detected_at": _clean(v.first_detected_at),
        "r_squared": float(v.r_squared),
        "reason": v.reason,
        "onset_s": _clean(v.onset_s),
        "state": v.state,
        "projected_oom_hours": _clean(v.projected_oom_hours),
        "n_samples": int(t.size),
        "duration_h": duration / HOUR,
        "events": events,
    }
