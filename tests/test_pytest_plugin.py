"""memtui's pytest plugin on real test files run by a real pytest (pytester, in a subprocess)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

LIB = """
import functools
import re

EVENTS = []
CALLS = []
_SINGLETON = None


class Bus:
    listeners = []


def record(kind):
    EVENTS.append({"kind": kind, "n": len(EVENTS)})  # THE LEAKING LINE


@functools.lru_cache(maxsize=None)
def config(text):
    return dict(part.split("=") for part in text.split(";"))


def singleton():
    global _SINGLETON
    if _SINGLETON is None:
        _SINGLETON = [bytes(64) for _ in range(200)]
    return _SINGLETON
"""

TESTS = """
import re
import pytest
import leaklib


def test_leaks_into_module_list():
    leaklib.record("click")


def test_leaks_listeners_on_class():
    leaklib.Bus.listeners.append(lambda e: e)


def test_lru_cache_filled_once():
    assert leaklib.config("a=1;b=2")["a"] == "1"


def test_re_cache_and_import():
    import fractions
    assert re.compile(r"(?P<k>\\w+)=(?P<v>\\d+)").match("k=1") and fractions.Fraction(1, 2)


def test_lazy_singleton():
    assert len(leaklib.singleton()) == 200


def test_plain_work():
    assert sum(len(str(i)) for i in range(5000)) > 0
"""


@pytest.fixture
def corpus(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(leaklib=LIB, test_corpus=TESTS)
    return pytester


def test_flag_fails_leaks_naming_container_type_and_line(corpus: pytest.Pytester) -> None:
    result = corpus.runpytest_subprocess("--memtui-no-leak", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2, passed=4)
    out = result.stdout.str()
    assert "leaklib.EVENTS (list) grew" in out and "new items: 3 dict" in out
    assert "leaklib.py:14" in out and "THE LEAKING LINE" in out  # the allocating line
    assert "leaklib.Bus.listeners (list) grew" in out and "function" in out
    for clean in ("lru_cache_filled_once", "re_cache_and_import", "lazy_singleton", "plain_work"):
        assert f"FAILED test_corpus.py::test_{clean}" not in out


def test_plugin_does_nothing_unless_asked(corpus: pytest.Pytester) -> None:
    corpus.makepyfile(
        test_once="""
import leaklib

def test_called_once():
    leaklib.CALLS.append(1)
    assert len(leaklib.CALLS) == 1
"""
    )
    result = corpus.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=7)


def test_marker_checks_one_test_with_its_limits(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marked="""
import pytest

KEEP = []


@pytest.mark.memtui_no_leak
def test_marked_leak():
    KEEP.append(bytearray(4096))


@pytest.mark.memtui_no_leak(max_bytes_per_call=1_000_000, max_objects_per_call=10)
def test_marked_within_limits():
    KEEP.append(bytearray(4096))


def test_unmarked_leak_is_not_checked():
    KEEP.append(bytearray(4096))


@pytest.mark.memtui_no_leak(calls=4, warmup=1)
def test_clean():
    assert len(bytearray(4096)) == 4096
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, passed=3)
    out = result.stdout.str()
    assert "test_marked_leak leaks" in out and "test_marked.KEEP (list) grew" in out
    assert "bytearray" in out


def test_bad_marker_argument_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
import pytest

@pytest.mark.memtui_no_leak(max_megabytes=3)
def test_x():
    pass
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret != 0
    assert "unknown argument(s) max_megabytes" in result.stderr.str() + result.stdout.str()


def test_a_test_that_cannot_repeat_is_not_checked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_once="""
DONE = []

def test_only_once():
    assert not DONE
    DONE.append(1)
"""
    )
    result = pytester.runpytest_subprocess("--memtui-no-leak", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, warnings=1)
    assert "not checked" in result.stdout.str()


def test_works_with_xdist(corpus: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = corpus.runpytest_subprocess("--memtui-no-leak", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2, passed=4)
    assert "leaklib.EVENTS (list) grew" in result.stdout.str()
