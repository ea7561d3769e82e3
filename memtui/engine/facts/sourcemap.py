"""Provides the name of the function that holds a source line (tracemalloc keeps only file:line)."""

from __future__ import annotations

import ast
from bisect import bisect_right
from functools import lru_cache

_MODULE_LEVEL = "<module>"


@lru_cache(maxsize=512)
def _function_spans(filename: str) -> tuple[tuple[int, int, str], ...]:
    """(first line, last line, qualified name) of every def in ``filename``, innermost last."""
    try:
        with open(filename, "rb") as f:
            tree = ast.parse(f.read(), filename)
    except (OSError, SyntaxError, ValueError):
        return ()
    spans: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                    spans.append((start, child.end_lineno or child.lineno, name))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    spans.sort()
    return tuple(spans)


def function_at(filename: str, lineno: int) -> str:
    """Qualified name of the innermost function containing ``lineno``, or '<module>'."""
    spans = _function_spans(filename)
    best = _MODULE_LEVEL
    # Spans are sorted by start line; the innermost containing span starts last.
    for start, end, name in spans[: bisect_right(spans, (lineno, 1 << 30, ""))]:
        if start <= lineno <= end:
            best = name
    return best
