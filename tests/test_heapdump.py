"""Provides tests of the heap-dump writer and reader on real heaps of known structure."""

from __future__ import annotations

import glob
import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path
from typing import Any

import pytest

from memtui.engine.heap.dumps import analyze, chains_for_type, find_object, load_dump, top_objects
from memtui.errors import HeapDumpError
from memtui.probe.heap.dump import (
    HEADER,
    MAGIC,
    SECTION,
    HeapDumpFailed,
    check_disk,
    write_heap_dump,
)

ROOT = Path(__file__).resolve().parent.parent
N = 10_000
TARGET = textwrap.dedent("""\
    import gc, json, os, sys
    sys.path.insert(0, sys.argv[3])
    from memtui.probe.heap.dump import write_heap_dump

    class Item:
        def __init__(self, i):
            self.payload = os.urandom(1024)

    class Node:
        def __init__(self):
            self.next = None

    ITEMS = [Item(i) for i in range(int(sys.argv[2]))]
    RING = [Node() for _ in range(100)]
    for a, b in zip(RING, RING[1:] + RING[:1]):
        a.next = b
    HEAD = RING[0]
    del RING, a, b
    CACHE = {f"key-{i:05d}": os.urandom(100) for i in range(50)}

    def own(o):
        # o and what only it holds: its instance dict (when it has one) and what that holds
        size = sys.getsizeof(o)
        for r in gc.get_referents(o):
            if isinstance(r, dict):
                size += sys.getsizeof(r)
                size += sum(sys.getsizeof(v) for v in r.values() if isinstance(v, bytes))
            elif isinstance(r, bytes):
                size += sys.getsizeof(r)
        return size

    ring, node = 0, HEAD
    while True:
        ring += own(node)
        node = node.next
        if node is HEAD:
            break
    expected = {
        "items": sys.getsizeof(ITEMS) + sum(own(it) for it in ITEMS),
        "ring": ring,
        "cache": sys.getsizeof(CACHE)
        + sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in CACHE.items()),
        "ids": {"ITEMS": id(ITEMS), "HEAD": id(HEAD), "CACHE": id(CACHE)},
    }
    result = write_heap_dump(sys.argv[1], sys.argv[4])
    print(json.dumps({"expected": expected, "result": result.to_dict()}))
    """)


def _dump(tmp_path: Path, writer: str, python: str = sys.executable) -> dict[str, Any]:
    script = tmp_path / "target.py"
    script.write_text(TARGET)
    path = tmp_path / f"t-{writer}.mtdump"
    out = subprocess.run(
        [python, str(script), str(path), str(N), str(ROOT), writer],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    data: dict[str, Any] = json.loads(out.stdout)
    return data


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("dumps")
    return {w: _dump(tmp, w) for w in ("fork", "inplace")}


@pytest.mark.parametrize("writer", ["fork", "inplace"])
def test_retained_sizes_and_chains_come_out_as_built(
    dumps: dict[str, dict[str, Any]], writer: str
) -> None:
    run = dumps[writer]
    result, expected = run["result"], run["expected"]
    assert result["writer"] == writer
    path = result["path"]
    assert not glob.glob(path + ".part-*")
    a = analyze(load_dump(path))
    assert a.dump.meta["writer"] == writer and a.dump.meta["pid"] > 0
    assert a.dump.meta["rss_bytes"] > 0
    ids = expected["ids"]
    items = find_object(a.dump, ids["ITEMS"])
    assert int(a.retained[items]) == expected["items"]
    assert int(a.retained[find_object(a.dump, ids["HEAD"])]) == expected["ring"]
    assert int(a.retained[find_object(a.dump, ids["CACHE"])]) == expected["cache"]
    assert a.chain(items) == "module __main__ → global ITEMS → list"
    chains = chains_for_type(a, "Item")
    assert chains["instances"] == N
    assert chains["chains"][0]["chain"] == "module __main__ → global ITEMS → list[*] → Item"
    assert chains["chains"][0]["count"] == N
    assert chains["chains"][0]["example"].startswith("module __main__ → global ITEMS → list[")
    ring = chains_for_type(a, "__main__.Node")["chains"]
    assert ring[0]["chain"].startswith("module __main__ → global HEAD → Node")
    by_type = {row["type"]: row for row in top_objects(a, 500)}
    assert by_type["__main__.Item"]["count"] == N
    if writer == "fork":
        assert result["pause_s"] < 0.5


def test_a_dump_written_by_another_python_reads_the_same(tmp_path: Path) -> None:
    others = sorted(glob.glob("/root/.pyenv/versions/3.1[03]*/bin/python"))
    if not others:
        pytest.skip("no other CPython installed")
    for python in others:
        run = _dump(tmp_path, "fork", python)
        a = analyze(load_dump(run["result"]["path"]))
        items = find_object(a.dump, run["expected"]["ids"]["ITEMS"])
        assert int(a.retained[items]) == run["expected"]["items"], python
        os.unlink(run["result"]["path"])


def _good(tmp_path: Path) -> bytes:
    path = tmp_path / "small.mtdump"
    write_heap_dump(str(path), "inplace")
    return path.read_bytes()


def _one_line(path: Path, match: str) -> None:
    with pytest.raises(HeapDumpError, match=match) as info:
        load_dump(str(path))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_bad_files_give_one_clear_line(tmp_path: Path) -> None:
    data = _good(tmp_path)
    bad = tmp_path / "bad.mtdump"
    bad.write_bytes(b"PK\x03\x04 a zip file, not a dump" * 4)
    _one_line(bad, "not a memtui heap dump")
    bad.write_bytes(b"")
    _one_line(bad, "not a memtui heap dump")
    for cut in (HEADER.size - 2, HEADER.size + 10, len(data) // 2, len(data) - 3):
        bad.write_bytes(data[:cut])
        _one_line(bad, "truncated")
    future = bytearray(data)
    struct.pack_into("<H", future, len(MAGIC), 99)
    bad.write_bytes(bytes(future))
    _one_line(bad, "v99 is newer")
    flipped = bytearray(data)
    flipped[HEADER.size + SECTION.size + 5] ^= 0xFF
    bad.write_bytes(bytes(flipped))
    _one_line(bad, "corrupt")
    bad.write_bytes(data + b"trailing")
    _one_line(bad, "corrupt|truncated")
    _one_line(tmp_path / "missing.mtdump", "cannot read")


def test_a_well_formed_file_with_inconsistent_columns_is_corrupt(tmp_path: Path) -> None:
    # Rebuild a file whose EDGE section points past the last node, checksums all valid.
    from memtui.probe.heap.dump import encode_section

    data = _good(tmp_path)
    pos, parts = HEADER.size, [data[: HEADER.size]]
    while True:
        tag, _, raw_len, stored_len, _ = SECTION.unpack_from(data, pos)
        end = pos + SECTION.size + stored_len
        if tag == b"EDGE":
            stored = data[pos + SECTION.size : end]
            raw = bytearray(zlib.decompress(stored) if stored_len != raw_len else stored)
            struct.pack_into("<i", raw, 0, 2**31 - 1)
            parts.append(encode_section(tag, bytes(raw)))
        elif tag == b"END!":
            offset = sum(map(len, parts))
            body = struct.pack("<QI", offset, len(parts) - 1)
            parts.append(SECTION.pack(tag, 0, len(body), len(body), zlib.crc32(body)) + body)
            break
        else:
            parts.append(data[pos:end])
        pos = end
    bad = tmp_path / "inconsistent.mtdump"
    bad.write_bytes(b"".join(parts))
    _one_line(bad, "corrupt heap dump: edges")


def test_refuses_when_the_disk_is_clearly_too_small(tmp_path: Path) -> None:
    with pytest.raises(HeapDumpFailed, match="not enough free disk space"):
        check_disk(str(tmp_path), 1 << 62)
    with pytest.raises(HeapDumpFailed, match="unknown heap dump writer"):
        write_heap_dump(str(tmp_path / "x.mtdump"), "telepathy")
    assert not list(tmp_path.iterdir())


def test_a_directory_gets_a_file_named_after_pid_and_time(tmp_path: Path) -> None:
    result = write_heap_dump(str(tmp_path), "fork")
    name = os.path.basename(result.path)
    assert name.startswith(f"heapdump-{os.getpid()}-") and name.endswith(".mtdump")
    assert result.writer == "fork" and result.objects > 1000 and result.bytes > 0
    assert load_dump(result.path).meta["writer"] == "fork"


def test_an_inplace_dump_never_breaks_a_tuple_being_built_nor_stalls(tmp_path: Path) -> None:
    """The in-place writer held gc.get_objects()'s list while the program's threads ran:
    ``tuple(genexpr)`` in another thread raised SystemError (9 in 11 dumps), and its huge
    switch interval once left the dumping thread waiting for minutes."""
    program = textwrap.dedent(
        f"""
        import json, os, threading, time
        from memtui.probe.heap.dump import write_heap_dump

        stop = threading.Event()
        errors, built = [], [0]

        def builder():
            while not stop.is_set():
                try:
                    tuple(x for x in range(200))  # grows past its first guess: a resize
                    built[0] += 1
                except SystemError as exc:
                    errors.append(repr(exc))

        t = threading.Thread(target=builder)
        t.start()
        dumps, start = 0, time.monotonic()
        try:
            while time.monotonic() - start < 4.0 or dumps < 5:
                if dumps:  # dumps never overwrite a file: keep only the last
                    os.unlink(path)
                path = os.path.join({str(tmp_path)!r}, "d.mtdump")
                write_heap_dump(path, writer="inplace")
                dumps += 1
        finally:
            stop.set()
            t.join()
        print(json.dumps({{"dumps": dumps, "built": built[0], "errors": errors[:3]}}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True
    )
    row = json.loads(out.stdout.splitlines()[-1])
    assert row["dumps"] >= 5 and row["built"] > 1000, row
    assert row["errors"] == [], row
    dump = load_dump(str(tmp_path / "d.mtdump"))
    names = set(dump.type_names)
    assert "tuple" in names and "dict" in names  # tuples are still in the dump
