"""Corrupt inputs: hypothesis mutates a real heap dump and a real recording (truncation, bit
flips, overwritten spans, another format version) and `memtui heapdump analyze` / `memtui report`
must answer each with exit 0 (the damage was harmless) or one 'memtui:' line and a non-zero exit:
never a traceback, never a hang (pytest-timeout bounds the whole test)."""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtui.cli import main

pytestmark = pytest.mark.timeout(120)

FUZZ = settings(
    max_examples=int(os.environ.get("MEMTUI_FUZZ_EXAMPLES", "20")),
    deadline=None,
    derandomize="MEMTUI_FUZZ_EXAMPLES" not in os.environ,  # CI: the same cases every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

Mutation = tuple[str, int, int]


def mutations(size: int) -> st.SearchStrategy[Mutation]:
    return st.one_of(
        st.tuples(st.just("truncate"), st.integers(0, size - 1), st.just(0)),
        st.tuples(st.just("flip"), st.integers(0, size - 1), st.integers(0, 7)),
        st.tuples(st.just("zero"), st.integers(0, size - 1), st.integers(1, 512)),
        st.tuples(st.just("ones"), st.integers(0, size - 1), st.integers(1, 64)),
        st.tuples(st.just("version"), st.integers(2, 0xFFFF), st.just(0)),
    )


def mutate(data: bytes, mutation: Mutation, version_at: int) -> bytes:
    kind, a, b = mutation
    buf = bytearray(data)
    if kind == "truncate":
        return bytes(buf[:a])
    if kind == "flip":
        buf[a] ^= 1 << b
    elif kind == "zero":
        buf[a : a + b] = bytes(len(buf[a : a + b]))
    elif kind == "ones":
        buf[a : a + b] = b"\xff" * len(buf[a : a + b])
    else:
        buf[version_at : version_at + 2] = struct.pack("<H", a)
    return bytes(buf)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    started = time.monotonic()
    code = main(argv)  # a traceback here fails the test: main lets only bugs escape
    err = capsys.readouterr().err
    assert time.monotonic() - started < 20.0, argv
    if code != 0:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("memtui: "), err
    return code, err


@pytest.fixture(scope="module")
def dump_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real dump of a small process (its own interpreter: a few ten thousand objects)."""
    path = tmp_path_factory.mktemp("dump") / "small.mtdump"
    code = (
        "import sys; from memtui.probe.heap.dump import write_heap_dump; "
        "DATA = [{'k': i} for i in range(2000)]; write_heap_dump(sys.argv[1], 'inplace')"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)
    return path


@pytest.fixture(scope="module")
def recording_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real recording written by the recorder the agent uses, checkpointed into one file."""
    from memtui.probe.recorder import Recorder

    path = tmp_path_factory.mktemp("rec") / "run.db"
    rec = Recorder(path, {"pid": 4242, "argv": ["app.py"]})
    t0 = time.time() - 600
    for i in range(600):
        rec.add_sample(t0 + i, 100_000_000 + i * 20_000, 200_000_000, None, 50_000 + i)
    rec.add_marker(t0 + 300, "deploy")
    rec.close(t0 + 600)
    return path


def test_valid_inputs_pass(
    tmp_path: Path, dump_file: Path, recording_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control: unharmed files are read (a fuzz test whose base fails proves nothing)."""
    (tmp_path / "a.mtdump").write_bytes(dump_file.read_bytes())
    (tmp_path / "a.db").write_bytes(recording_file.read_bytes())
    assert run_cli(["heapdump", "analyze", str(tmp_path / "a.mtdump"), "--json"], capsys)[0] == 0
    assert run_cli(["report", str(tmp_path / "a.db"), "--output", "-", "--quiet"], capsys)[0] == 0


@FUZZ
@given(data=st.data())
def test_mutated_heap_dumps_get_one_line(
    tmp_path: Path, dump_file: Path, data: st.DataObject, capsys: pytest.CaptureFixture[str]
) -> None:
    dump_bytes = dump_file.read_bytes()
    mutation = data.draw(mutations(len(dump_bytes)))
    bad = tmp_path / "bad.mtdump"
    bad.write_bytes(mutate(dump_bytes, mutation, version_at=8))
    good = tmp_path / "good.mtdump"
    good.write_bytes(dump_bytes)
    code, err = run_cli(["heapdump", "analyze", str(bad), "--json"], capsys)
    if mutation[0] in ("truncate", "version"):
        assert code != 0, (mutation, err)  # never a silent partial or future-format answer
    run_cli(["heapdump", "analyze", str(good), "--diff", str(bad)], capsys)


@FUZZ
@given(data=st.data())
def test_mutated_recordings_get_one_line(
    tmp_path: Path, recording_file: Path, data: st.DataObject, capsys: pytest.CaptureFixture[str]
) -> None:
    recording_bytes = recording_file.read_bytes()
    mutation = data.draw(mutations(len(recording_bytes)))
    bad = tmp_path / f"bad-{time.monotonic_ns()}.db"
    bad.write_bytes(mutate(recording_bytes, mutation, version_at=18))
    if mutation[0] == "version":  # a recording's version lives in its meta table
        bad.write_bytes(recording_bytes)
        con = sqlite3.connect(bad)
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (json.dumps(mutation[1]),))
        con.commit()
        con.close()
    code, err = run_cli(
        ["report", str(bad), "--output", str(tmp_path / "r.json"), "--quiet"], capsys
    )
    if mutation[0] == "version":
        assert code != 0 and "newer memtui (schema" in err, err
