"""Provides tests of the detailed HTML report: self-contained, escaped, and rendered by chromium.

Run as a script (`python tests/test_html_report.py`) to refresh screenshots/html-report.png from
a simulated 3-day run with a leak from day 1.5 and three markers.
"""

from __future__ import annotations

import math
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from memtui.engine.report.html_report import render_html
from memtui.engine.report.json_report import build_report
from memtui.engine.report.replay import build_report_input_from_recording
from memtui.probe.recorder import Recorder

T0 = 1_700_000_000.0
MIB = 1 << 20
ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
]


def demo_report(path: Path, days: float = 3.0) -> dict[str, Any]:
    """A simulated service: daily wave, GC sawtooth, a leak from day 1.5, markers, snapshots."""
    onset = 1.5 * 86400

    def rss(t: int) -> int:
        mb = 300 + 20 * ((t % 600) / 600) + 30 * 0.5 * (1 - math.cos(2 * math.pi * t / 86400))
        return int((mb + 20 * max(0.0, t - onset) / 3600) * MIB)

    meta = {
        "role": "agent",
        "pid": 4242,
        "argv": ["python", "app.py", "--serve"],
        "python": "3.11.7",
    }
    with Recorder(path, meta) as rec:
        for h in range(int(days * 24)):
            base = h * 3600
            rec.add_samples(
                (T0 + s, rss(s), 2 * rss(s), int(rss(s) * 0.6), 100_000 + s // 10)
                for s in range(base, base + 3600)
            )
            for s in range(base, base + 3600, 300):
                n = max(0, int((s - onset) / 36))
                gc = {
                    "collections": [s // 2, s // 20, s // 600],
                    "collected": [s * 3, s, s // 10],
                    "uncollectable": [0, 0, 0],
                    "time_s": [s * 1e-5, s * 1e-5, s * 1e-4],
                    "max_pause_s": 0.004,
                    "thresholds": [700, 10, 10],
                    "garbage_count": 0,
                    "timed": True,
                }
                census = {
                    "counts": {
                        "dict": 50_000 + n,
                        "list": 20_000 + n // 2,
                        "tuple": 30_000,
                        "app.Session": 100 + n,
                        "function": 12_000,
                    },
                    "total_objects": 150_000 + 2 * n,
                }
                sites = [
                    {
                        "frames": [["/srv/app/cache.py", 42]],
                        "size_bytes": 5 * MIB + n * 3000,
                        "count": 1000 + n,
                    },
                    {
                        "frames": [["/srv/app/handlers.py", 118]],
                        "size_bytes": 8 * MIB,
                        "count": 5000,
                    },
                    {
                        "frames": [["/usr/lib/python3.11/json/decoder.py", 353]],
                        "size_bytes": 3 * MIB,
                        "count": 800,
                    },
                ]
                rec.add_snapshot(T0 + s, {"census": census, "sites": sites, "gc": gc}, rss=rss(s))
                rec.add_gc(T0 + s, gc)
            if h == 10:
                rec.add_marker(T0 + base + 1200, "deploy 41")
            if h == 36:
                rec.add_marker(T0 + base + 60, "deploy 42 (new session cache)")
            if h == 60:
                rec.add_marker(T0 + base, "traffic <peak> & retry")
            rec.flush()
    return build_report(build_report_input_from_recording(path))


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path]:
    tmp = tmp_path_factory.mktemp("html")
    report = demo_report(tmp / "run.db")
    text = render_html(report)
    out = tmp / "report.html"
    out.write_text(text, encoding="utf-8")
    return report, text, out


def test_the_report_is_one_self_contained_file(
    report_html: tuple[dict[str, Any], str, Path],
) -> None:
    _, text, _ = report_html
    assert text.startswith("<!DOCTYPE html>")
    # Nothing is fetched: no external scripts, styles or images.
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?https?:""", text)
    assert "Plotly" in text and len(text) > 4_000_000  # plotly.js is inlined
    for needle in (
        "memory-chart",
        "Memory leak detected",
        "deploy 42 (new session cache)",
        "/srv/app/cache.py",
        "app.Session",
        "Garbage collector",
        "trend +",
    ):
        assert needle in text, needle
    assert "traffic &lt;peak&gt; &amp; retry" in text  # labels are escaped
    assert "<peak>" not in text


def test_render_html_without_a_timeline_falls_back_to_snapshots(
    report_html: tuple[dict[str, Any], str, Path],
) -> None:
    report, _, _ = report_html
    bare = {k: v for k, v in report.items() if k not in ("timeline", "markers", "gc_timeline")}
    text = render_html(bare)
    assert "memory-chart" in text and "deploy 42" not in text


def _png_size_and_colours(data: bytes) -> tuple[int, int, int]:
    """Width, height and (roughly) the number of distinct colours of an 8-bit RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, ctype = struct.unpack(">IIBB", data[16:26])
    idat = b""
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    channels = {2: 3, 6: 4}.get(ctype, 0)
    assert depth == 8 and channels
    stride = width * channels + 1
    # Unfiltered bytes are enough to tell a blank page from a drawn one.
    colours = {raw[i : i + 3] for i in range(1, min(len(raw), stride * height), 97)}
    return width, height, len(colours)


def screenshot(html: Path, png: Path, height: int = 3700) -> None:
    profile = png.parent / f".chromium-{png.stem}"
    shutil.rmtree(profile, ignore_errors=True)
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size=1280,{height}",
            f"--screenshot={png}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_chromium_renders_the_charts(
    report_html: tuple[dict[str, Any], str, Path], tmp_path: Path
) -> None:
    _, _, html = report_html
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", html.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
        text=True,
    ).stdout
    # plotly.js ran: each chart div holds the SVG it drew, with the traces' paths.
    for chart in ("memory-chart", "allocators-chart", "objects-chart", "gc-chart"):
        start = dom.index(f'id="{chart}"')
        assert 'class="main-svg"' in dom[start : start + 200_000], chart
    assert "trend +" in dom and "deploy 41" in dom
    png = tmp_path / "shot.png"
    screenshot(html, png, height=1000)
    width, height, colours = _png_size_and_colours(png.read_bytes())
    assert (width, height) == (1280, 1000)
    assert colours > 8  # not a blank page


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        page = tmp / "report.html"
        page.write_text(render_html(demo_report(tmp / "run.db")), encoding="utf-8")
        target = ROOT / "screenshots" / "html-report.png"
        screenshot(page, target, int(sys.argv[1]) if len(sys.argv) > 1 else 3150)
        print(target)
