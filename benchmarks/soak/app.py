"""Provides the soak's service: a small Flask JSON app that allocates per request and keeps a
bounded cache, so a steady memory floor is the truth and any slope is memtui's (or a leak)."""

from __future__ import annotations

import os
import random
from collections import OrderedDict

from flask import Flask, jsonify, request

app = Flask(__name__)
_CACHE: OrderedDict[int, list[dict[str, object]]] = OrderedDict()
CACHE_ITEMS = 256


def _orders(seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    return [
        {"id": i, "sku": f"sku-{rng.randrange(10_000)}", "qty": rng.randrange(1, 9),
         "price": round(rng.uniform(1, 500), 2)}
        for i in range(60)
    ]  # fmt: skip


@app.route("/")
def index() -> object:
    """Some real work per request: build, sort and total 60 orders; cache a bounded few."""
    seed = int(request.args.get("seed", random.randrange(4096)))
    orders = _CACHE.get(seed)
    if orders is None:
        orders = _orders(seed)
        _CACHE[seed] = orders
        if len(_CACHE) > CACHE_ITEMS:
            _CACHE.popitem(last=False)
    top = sorted(orders, key=lambda o: -float(o["price"]) * int(o["qty"]))[:10]  # type: ignore[arg-type]
    total = sum(float(o["price"]) * int(o["qty"]) for o in orders)  # type: ignore[arg-type]
    return jsonify(pid=os.getpid(), total=round(total, 2), top=top)
