"""Per-test leak checks side by side: memtui's pytest plugin against pytest-memray.

Runs the corpus in benchmarks/pytest_corpus (6 tests that leak on every call, 9 that do not but
fill caches once: an lru_cache, re's cache, imports, a lazy singleton, log capture, tmp_path,
garbage cycles) three ways: plain pytest, ``pytest --memtui-no-leak``, and ``pytest --memray``
with ``@pytest.mark.limit_leaks("1 KB")`` on every test (pip install '.[bench]'). Prints, for
each: leaks caught, false alarms, the median wall time of ``--repeat`` runs, and its ratio to
plain pytest. Usage: python benchmarks/bench_pytest.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "pytest_corpus"


def run(
    extra: list[str], env: dict[str, str], target: Path = CORPUS
) -> tuple[float, dict[str, bool]]:
    """One pytest run: wall seconds and {test name: failed}."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = os.path.join(tmp, "r.xml")
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                f"--junitxml={xml}", *extra, str(target)]  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, cwd=tmp, capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - t0
        root = ET.parse(xml).getroot()
        outcome = {
            f"{case.get('classname')}.{case.get('name')}": case.find("failure") is not None
            or case.find("error") is not None
            for case in root.iter("testcase")
        }
    return wall, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    tools = {
        "plain pytest": ([], base),
        "memtui --memtui-no-leak": (["--memtui-no-leak"], base),
        "pytest-memray limit_leaks 1 KB": (["--memray"], {**base, "MEMRAY_LIMIT": "1 KB"}),
        "pytest-memray limit_leaks 1 B": (["--memray"], {**base, "MEMRAY_LIMIT": "1 B"}),
    }
    walls: dict[str, list[float]] = {}
    outcomes: dict[str, dict[str, bool]] = {}
    for _ in range(args.repeat):
        for name, (extra, env) in tools.items():
            wall, outcome = run(extra, env)
            walls.setdefault(name, []).append(wall)
            outcomes[name] = outcome
    plain = statistics.median(walls["plain pytest"])
    n_leaky = sum(1 for k in outcomes["plain pytest"] if "test_leaky" in k)
    n_clean = sum(1 for k in outcomes["plain pytest"] if "test_clean" in k)
    print(f"corpus: {n_leaky} leaking tests, {n_clean} non-leaking; median of {args.repeat} runs")
    print(f"{'tool':34s} {'caught':>8s} {'false alarms':>13s} {'wall s':>8s} {'x plain':>8s}")
    for name in tools:
        out = outcomes[name]
        caught = sum(1 for k, failed in out.items() if "test_leaky" in k and failed)
        false = [k.rsplit(".", 1)[-1] for k, failed in out.items() if "test_clean" in k and failed]
        wall = statistics.median(walls[name])
        print(
            f"{name:34s} {caught:>4d}/{n_leaky:<3d} {len(false):>8d}/{n_clean:<4d} "
            f"{wall:8.2f} {wall / plain:8.2f}"
        )
        if false:
            print(f"{'':34s} false alarms: {', '.join(false)}")
    # Cost per passing test: the non-leaking file alone, with and without the plugin.
    clean = CORPUS / "test_clean.py"
    t_plain = statistics.median(run([], base, clean)[0] for _ in range(args.repeat))
    t_ours = statistics.median(
        run(["--memtui-no-leak"], base, clean)[0] for _ in range(args.repeat)
    )
    ours_all = statistics.median(walls["memtui --memtui-no-leak"])
    per_fail = (ours_all - plain - (t_ours - t_plain)) / max(n_leaky, 1)
    print(
        f"memtui cost per passing test: {(t_ours - t_plain) / n_clean * 1000:.0f} ms "
        f"({t_plain:.2f} s -> {t_ours:.2f} s for {n_clean} tests); a failing test adds the "
        f"container walk: {per_fail * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
