"""`memtui exporter`: real agents, the real prometheus-client server, a real Prometheus."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from memtui.cli import main
from memtui.remote.exporter import AgentPoller, parse_listen, registry_for
from memtui.remote.launcher import LaunchedProgram, launch

ROOT = Path(__file__).resolve().parent.parent
IDLE = textwrap.dedent("""\
    import time
    KEEP = [str(i) * 10 for i in range(20000)]
    print("ready", flush=True)
    time.sleep(120)
    """)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _series(text: str, name: str) -> dict[str, float]:
    """pid -> value of ``name`` in an exposition text."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[sample.labels.get("pid", "")] = sample.value
    return out


@pytest.fixture
def programs(tmp_path: Path) -> Iterator[list[LaunchedProgram]]:
    script = tmp_path / "idle.py"
    script.write_text(IDLE)
    started = [launch([sys.executable, str(script)]) for _ in range(2)]
    yield started
    for program in started:
        program.process.kill()
        program.process.wait()
        program.cleanup()


def test_metrics_of_live_agents_and_dead_ones_disappear(
    programs: list[LaunchedProgram],
) -> None:
    assert all(p.client is not None for p in programs)
    pids = {str(p.pid) for p in programs}
    poller = AgentPoller(interval_s=60, top_types=5)
    registry = registry_for(poller)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            poller.poll_once()
            text = generate_latest(registry).decode()
            objects = [
                s
                for f in text_string_to_metric_families(text)
                for s in f.samples
                if s.name == "memtui_objects" and s.labels["pid"] in pids
            ]
            if len({s.labels["pid"] for s in objects}) == 2:
                break
            time.sleep(0.5)
        rss = _series(text, "memtui_rss_bytes")
        assert pids <= set(rss) and all(rss[p] > 1e6 for p in pids)
        for name in (
            "memtui_leak_state",
            "memtui_leak_rate_mb_per_hour",
            "memtui_gc_seconds_total",
        ):
            assert pids <= set(_series(text, name)), name
        assert pids <= set(_series(text, "memtui_traced_bytes"))
        gens = {
            (s.labels["pid"], s.labels["generation"])
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "memtui_gc_collections_total"
        }
        assert {(p, g) for p in pids for g in "012"} <= gens
        per_pid = {p: [s for s in objects if s.labels["pid"] == p] for p in pids}
        assert all(0 < len(v) <= 5 for v in per_pid.values())  # a bounded top of types
        assert all(_series(text, "memtui_leak_state")[p] in (0, 1, 2) for p in pids)
        assert 'command="' in text and "idle.py" in text
        gone = programs[0]
        gone.process.kill()
        gone.process.wait()
        poller.poll_once()
        text = generate_latest(registry).decode()
        assert str(gone.pid) not in _series(text, "memtui_rss_bytes")
        assert f'pid="{gone.pid}"' not in text  # every series of the dead process is gone
        assert str(programs[1].pid) in _series(text, "memtui_rss_bytes")
    finally:
        poller.stop()


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:80") == ("::1", 80)
    assert parse_listen(":9464") == ("0.0.0.0", 9464)


@pytest.mark.parametrize("listen", ["127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", "a b:80"])
def test_bad_address_is_one_line(listen: str, capfd: pytest.CaptureFixture[str]) -> None:
    assert main(["exporter", "--listen", listen]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "--listen" in err and "Traceback" not in err


def test_port_in_use_is_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["exporter", "--listen", f"127.0.0.1:{port}"]) == 1
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "in use" in err and "Traceback" not in err


def _get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


@contextlib.contextmanager
def _started(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus is missing")
def test_a_real_prometheus_scrapes_every_worker(tmp_path: Path) -> None:
    pytest.importorskip("flask")
    from pool_harness import (
        GUNICORN,
        children_of,
        free_port,
        kill_group,
        start_pool,
        wait_until_serving,
    )

    if not GUNICORN.exists():
        pytest.skip("gunicorn is not installed")
    app_port, exporter_port, prom_port = free_port(), _free_port(), _free_port()
    pool = start_pool(
        tmp_path, app_port, ["--headless", "--duration", "120", "--output", "r.json"], []
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files: ['{ROOT / 'contrib' / 'prometheus-alerts.yml'}']\n"
        "scrape_configs:\n  - job_name: memtui\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{exporter_port}']\n"
    )
    exporter_cmd = [
        sys.executable,
        "-c",
        "import sys; from memtui.cli import main; sys.exit(main())",
        "exporter",
        "--listen",
        f"127.0.0.1:{exporter_port}",
        "--interval",
        "0.5",
    ]
    prometheus_cmd = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prom_port}",
    ]
    try:
        wait_until_serving(app_port, pool)
        master = children_of(pool.pid)[0]
        with (
            _started(exporter_cmd, tmp_path / "exporter.log"),
            _started(prometheus_cmd, tmp_path / "prometheus.log") as prom,
        ):
            deadline = time.monotonic() + 90
            want: set[str] = set()
            got: set[str] = set()
            query = urllib.parse.quote('memtui_rss_bytes{job="memtui"}')
            while time.monotonic() < deadline:
                assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
                want = {str(master), *map(str, children_of(master))}
                with contextlib.suppress(OSError, ValueError):
                    reply = _get_json(f"http://127.0.0.1:{prom_port}/api/v1/query?query={query}")
                    data = reply["data"]
                    assert isinstance(data, dict)
                    got = {r["metric"]["pid"] for r in data["result"] if float(r["value"][1]) > 0}
                    if len(want) == 3 and want <= got:
                        break
                time.sleep(1.0)
            assert len(want) == 3 and want <= got, (want, got)
            rules = _get_json(f"http://127.0.0.1:{prom_port}/api/v1/rules")
            names = json.dumps(rules)
            assert "MemtuiLeak" in names  # the shipped alerting rule loads in Prometheus
            state = urllib.parse.quote(f'memtui_leak_state{{pid="{master}"}}')
            reply = _get_json(f"http://127.0.0.1:{prom_port}/api/v1/query?query={state}")
            data = reply["data"]
            assert isinstance(data, dict) and data["result"], reply
    finally:
        kill_group(pool)
