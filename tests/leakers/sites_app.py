"""Provides a small service whose leaks are allocated inside library code it calls, to check
that allocation sites name the program's own line.

Usage: python sites_app.py MODE [SECONDS [KB_PER_S]]

Modes (each line marked ``# site: MODE`` is the one that must rank):
  hook      json.loads(object_hook=...) calls back into the app, which keeps a buffer
  decode    the app keeps what json.loads decoded (allocated inside the json package)
  logging   records pile up in a logging MemoryHandler that never flushes
  markdown  the app keeps markdown-it-py token streams (allocated inside site-packages)
  churn     no leak: temporary work, and a bounded deque that fills and then turns over
"""

from __future__ import annotations

import collections
import json
import logging
import logging.handlers
import sys
import time
from collections.abc import Callable

ARCHIVE: list[bytearray] = []
CACHE: list[object] = []
RECENT: collections.deque[dict[str, object]] = collections.deque(maxlen=200)

log = logging.getLogger("sites_app.orders")
log.propagate = False
log.setLevel(logging.INFO)
log.addHandler(logging.handlers.MemoryHandler(capacity=10**9, flushLevel=logging.CRITICAL + 10))


def payload(i: int) -> str:
    return json.dumps({"id": i, "size": 900, "sku": f"A-{i}", "tags": ["x", "y"], "n": "z" * 200})


def on_record(d: dict[str, object]) -> object:
    """The app's callback, run by the json decoder for every object it builds."""
    if "size" in d:
        ARCHIVE.append(bytearray(int(str(d["size"]))))  # site: hook
    return d.get("id")


def handle_hook(i: int) -> None:
    json.loads(payload(i), object_hook=on_record)


def handle_decode(i: int) -> None:
    CACHE.append(json.loads(payload(i)))  # site: decode


def handle_logging(i: int) -> None:
    log.info("order %d accepted for %s", i, f"customer-{i:06d}")  # site: logging


_MD: object = None


def handle_markdown(i: int) -> None:
    global _MD
    if _MD is None:
        from markdown_it import MarkdownIt

        _MD = MarkdownIt()
    text = f"# Order {i}\n\n*Customer* **{i:06d}** wants [item](http://x/{i}).\n"
    CACHE.append(_MD.parse(text))  # type: ignore[attr-defined]  # site: markdown


def handle_churn(i: int) -> None:
    work = [json.loads(payload(i + k)) for k in range(5)]  # freed at once
    work.sort(key=lambda d: str(d["sku"]))
    RECENT.append({"id": i, "note": "n" * 100})  # bounded: full after 200 items (5 s)


HANDLERS: dict[str, tuple[Callable[[int], None], int]] = {
    "hook": (handle_hook, 965),
    "decode": (handle_decode, 783),
    "logging": (handle_logging, 621),
    "markdown": (handle_markdown, 3600),
    "churn": (handle_churn, 1000),
}
"""Mode -> (handler, bytes kept per call, measured with tracemalloc; churn keeps none)."""


def main(argv: list[str]) -> int:
    mode = argv[0]
    seconds = float(argv[1]) if len(argv) > 1 else 60.0
    kb_per_s = float(argv[2]) if len(argv) > 2 else 40.0
    handler, per_call = HANDLERS[mode]
    calls_per_s = kb_per_s * 1024 / per_call
    print("ready", flush=True)
    i = 0
    started = time.monotonic()
    try:
        while (now := time.monotonic()) < started + seconds:
            while i < calls_per_s * (now - started):  # a batch every 50 ms, at the set rate
                handler(i)
                i += 1
            time.sleep(0.05)
    except KeyboardInterrupt:  # memtui run ends a program it watched with SIGINT
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
