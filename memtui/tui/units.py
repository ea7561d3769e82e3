"""Provides tiny pure formatters: sizes in KiB/MiB/GiB (4 significant digits), counts, times."""

from __future__ import annotations

import time
from typing import Final

MIB: Final = 1024.0 * 1024.0
MISSING: Final = "-"
"""Shown where a value is not known (no baseline yet, not measured)."""

_UNITS: Final = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _sig4(value: float) -> str:
    """``value`` with at most 4 significant digits and no exponent (``value`` < 10000)."""
    text = f"{value:.4g}"
    if "e" in text:  # only for tiny fractions, which sizes never need
        text = f"{value:.0f}"
    return text


def format_bytes(n: float | None) -> str:
    """A size such as ``512 B``, ``1.5 KiB``, ``123.5 MiB``, ``1.235 GiB``."""
    if n is None:
        return MISSING
    value = abs(float(n))
    unit = 0
    while unit < len(_UNITS) - 1 and float(_sig4(value)) >= 1024.0:
        value /= 1024.0
        unit += 1
    if unit == 0:
        value = round(value)
    sign = "-" if n < 0 and float(_sig4(value)) != 0.0 else ""
    return f"{sign}{_sig4(value)} {_UNITS[unit]}"


def format_bytes_delta(n: float | None) -> str:
    """A signed size change: ``+1.5 MiB``, ``-3 KiB``, ``0 B``."""
    if n is None:
        return MISSING
    text = format_bytes(n)
    return f"+{text}" if n > 0 and not text.startswith("0 ") else text


def format_rate_mib_per_hour(rate: float | None) -> str:
    """A growth rate given in MiB/h, written with the readable unit: ``+12.35 MiB/h``."""
    if rate is None:
        return MISSING
    return f"{format_bytes_delta(rate * MIB)}/h"


def format_count(n: int | None) -> str:
    """A count with thousands separators: ``1,234,567``."""
    if n is None:
        return MISSING
    return f"{n:,}"


def format_count_delta(n: float | None) -> str:
    """A signed count change: ``+1,234``, ``-5``, ``0``."""
    if n is None:
        return MISSING
    return f"{round(n):+,}" if round(n) != 0 else "0"


def format_count_rate(n: float | None) -> str:
    """A signed count per hour that fits an 11-cell column: ``+52,000/h``, from 100,000 on
    ``+585.3k/h``, ``+5.85M/h``, ``+1.20G/h`` (a leak of 100k records a minute is 6M/h)."""
    if n is None:
        return MISSING
    size = abs(n)
    if size < 100_000:
        return f"{format_count_delta(n)}/h"
    if size < 999_950:
        return f"{n / 1e3:+.1f}k/h"
    if size < 999_995_000:
        return f"{n / 1e6:+.2f}M/h"
    return f"{n / 1e9:+.2f}G/h"


def format_percent(fraction: float | None) -> str:
    """A fraction 0..1 as a percentage with at most 3 significant digits: ``92%``, ``0.5%``."""
    if fraction is None:
        return MISSING
    pct = fraction * 100.0
    return f"{pct:.0f}%" if pct >= 10 or pct == 0 else f"{pct:.2g}%"


def format_duration(seconds: float | None) -> str:
    """A duration, coarse and short: ``45 s``, ``12 min``, ``5.2 h``, ``3.1 d``."""
    if seconds is None:
        return MISSING
    s = max(0.0, seconds)
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{_sig4(round(s / 3600, 1))} h"
    return f"{_sig4(round(s / 86400, 1))} d"


def format_uptime(seconds: float) -> str:
    """An uptime clock: ``42s``, ``5m 07s``, ``1h 02m 03s``, ``3d 04h 05m``."""
    s = int(max(0.0, seconds))
    days, rem = divmod(s, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_elapsed_tick(seconds: float) -> str:
    """An x-axis label for time since the first sample: ``30s``, ``5m``, ``1h30``, ``2d04h``."""
    s = round(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        m, sec = divmod(s, 60)
        return f"{m}m" if sec == 0 else f"{m}m{sec:02d}"
    if s < 86400:
        h, rem = divmod(s, 3600)
        return f"{h}h" if rem < 60 else f"{h}h{rem // 60:02d}"
    d, rem = divmod(s, 86400)
    return f"{d}d" if rem < 3600 else f"{d}d{rem // 3600:02d}h"


def local_clock(wall_s: float) -> str:
    """Wall time as ``HH:MM:SS`` in the local time zone."""
    return time.strftime("%H:%M:%S", time.localtime(wall_s))
