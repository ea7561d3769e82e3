"""Tests that do not leak, though some fill a cache once: each must pass."""

import json
import re

from corpus_lib import parse_config, singleton, square, words


def test_pure_work():
    data = [{"i": i, "s": str(i)} for i in range(1000)]
    assert len(json.dumps(data)) > 1000


def test_lru_cache_filled_once():
    assert parse_config("a=1\nb=2\n" * 50)["a"] == "1"


def test_lru_cache_same_arg():
    assert square(12) == 144


def test_re_cache_filled_once():
    assert re.compile(r"(\d+)-(\w+)-(?P<x>[a-f]+)").match("12-ab-cafe")
    assert words("a well-known fact")


def test_lazy_singleton():
    assert len(singleton()["table"]) == 100


def test_import_inside():
    import decimal
    import fractions

    assert fractions.Fraction(1, 3) * 3 == 1 and decimal.Decimal(1) == 1


def test_tmp_path(tmp_path):
    (tmp_path / "x.txt").write_text("hello" * 1000)
    assert (tmp_path / "x.txt").read_text().startswith("hello")


def test_garbage_cycles():
    class Node:
        def __init__(self):
            self.me = self
            self.blob = bytearray(10_000)

    for _ in range(50):
        Node()


def test_logging_and_warnings(caplog):
    import logging
    import warnings

    logging.getLogger("corpus").warning("hello %s", 1)
    warnings.warn("careful", UserWarning, stacklevel=1)
