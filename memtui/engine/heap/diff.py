"""Provides diff_heap_dumps: which types and which retainers grew between two heap dumps."""

from __future__ import annotations

from typing import Any

import numpy as np

from memtui.engine.heap.dumps import Analysis, analyze, largest_retainers, load_dump, top_objects


def _types(a: Analysis) -> dict[str, dict[str, Any]]:
    return {row["type"]: row for row in top_objects(a, limit=len(a.dump.type_names))}


def _resolve(a: Analysis, chain: str) -> int | None:
    """The node of ``a`` at the end of a rendered chain (root label, named edges, types with
    list indices), choosing the largest retainer where a step is ambiguous."""
    d = a.dump
    parts = chain.split(" → ")
    starts = [node for node, label in sorted(a.root_label.items()) if label == parts[0]]
    if not starts:
        return None
    node = starts[0]
    names = {(u, name): w for (u, w), name in d.named.items()}
    if len(parts) > 1:
        node = next((u for u in starts if (u, parts[1]) in names), node)
    pending: int | None = None
    named = False
    for part in parts[1:]:
        if (node, part) in names:
            node, pending, named = names[(node, part)], None, True
            continue
        text, _, index = part.partition("[")
        short = text.split(" ")[0]
        if named:  # the type token of the object a name led to
            named = False
            pending = int(index[:-1]) if index[:-1].isdigit() else None
            if d.short_names[d.types[node]] != short:
                return None
            continue
        row = d.edges[d.offsets[node] : d.offsets[node + 1]]
        if (
            pending is not None
            and pending < row.size
            and d.short_names[d.types[row[pending]]] == short
        ):
            node = int(row[pending])
        else:
            candidates = [int(w) for w in np.unique(row) if d.short_names[d.types[w]] == short]
            if not candidates:
                return None
            node = max(candidates, key=lambda w: (int(a.retained[w]), -w))
        pending = int(index[:-1]) if index[:-1].isdigit() else None
    return node


def diff_heap_dumps(before: str, after: str, top: int = 20) -> dict[str, Any]:
    """Types whose retained size grew from ``before`` to ``after``, and the largest retainers
    of ``after`` with what the same chain retained in ``before``. JSON-serialisable."""
    a = analyze(load_dump(str(before)))
    b = analyze(load_dump(str(after)))
    ta, tb = _types(a), _types(b)
    rows = []
    for name, rb in tb.items():
        ra = ta.get(name, {"count": 0, "shallow_size": 0, "retained_size": 0})
        rows.append(
            {
                "type": name,
                "count_before": ra["count"],
                "count_after": rb["count"],
                "count_delta": rb["count"] - ra["count"],
                "shallow_delta": rb["shallow_size"] - ra["shallow_size"],
                "retained_before": ra["retained_size"],
                "retained_after": rb["retained_size"],
                "retained_delta": rb["retained_size"] - ra["retained_size"],
            }
        )
    grew = sorted(
        (r for r in rows if r["retained_delta"] > 0 or r["count_delta"] > 0),
        key=lambda r: (-r["retained_delta"], -r["count_delta"], r["type"]),
    )
    retainers = []
    for row in largest_retainers(b, top * 2):
        node = _resolve(a, row["chain"])
        before_size = int(a.retained[node]) if node is not None else 0
        retainers.append(
            {
                "chain": row["chain"],
                "type": row["type"],
                "retained_before": before_size,
                "retained_after": row["retained_size"],
                "retained_delta": row["retained_size"] - before_size,
                "new": node is None,
            }
        )
    retainers.sort(key=lambda r: (-r["retained_delta"], r["chain"]))
    return {
        "before": {
            "file": str(before),
            "pid": a.dump.meta.get("pid"),
            "time": a.dump.meta.get("time"),
        },
        "after": {
            "file": str(after),
            "pid": b.dump.meta.get("pid"),
            "time": b.dump.meta.get("time"),
        },
        "total_before": int(a.dump.sizes.sum()),
        "total_after": int(b.dump.sizes.sum()),
        "types": grew[:top],
        "retainers": [r for r in retainers if r["retained_delta"] > 0][:top],
    }


def format_diff(r: dict[str, Any]) -> str:
    lines = [
        f"{r['before']['file']} → {r['after']['file']}: "
        f"{(r['total_after'] - r['total_before']) / 1e6:+,.1f} MB in all",
        "",
        f"{'retained Δ':>12} {'count Δ':>10}  type",
    ]
    for t in r["types"]:
        lines.append(f"{t['retained_delta'] / 1e6:>+11.1f}M {t['count_delta']:>+10,}  {t['type']}")
    lines += ["", "retainers that grew:"]
    for x in r["retainers"]:
        new = " (new)" if x["new"] else ""
        lines.append(f"{x['retained_delta'] / 1e6:>+11.1f}M  {x['chain']}{new}")
    return "\n".join(lines)
