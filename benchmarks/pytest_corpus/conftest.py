"""For bench_pytest.py: with MEMRAY_LIMIT set, every test gets pytest-memray's limit_leaks."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    limit = os.environ.get("MEMRAY_LIMIT")
    if limit:
        for item in items:
            item.add_marker(pytest.mark.limit_leaks(limit))
