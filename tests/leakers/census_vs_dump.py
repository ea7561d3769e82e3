"""Untracked records, then a heap summary and a heap dump of the same heap, as JSON."""

from __future__ import annotations

import gc
import json
import sys

from memtui.probe.heap.dump import write_heap_dump
from memtui.probe.heap.summary import start_heap_summary

RECORDS = [{"i": i, "tag": f"t{i}", "pt": (i, i)} for i in range(100_000)]


def main() -> None:
    gc.collect()
    gc.disable()  # nothing changes between the two walks
    job = start_heap_summary(0.0)
    job.wait()
    dump = write_heap_dump(sys.argv[1], writer="fork")
    tracked_dicts = sum(1 for o in gc.get_objects() if type(o) is dict)
    print(
        json.dumps(
            {
                "summary": job.result,
                "error": job.error,
                "dump": dump.path,
                "gc_tracked_dicts": tracked_dicts,
            }
        )
    )


if __name__ == "__main__":
    main()
