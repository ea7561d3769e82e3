"""A Flask app that leaks per request in an instance attribute, beside a bounded lru_cache."""

from __future__ import annotations

import functools

from flask import Flask, jsonify, request

app = Flask(__name__)


class ConnectionPool:
    def __init__(self) -> None:
        self._idle: list[dict[str, object]] = []

    def release(self, conn: dict[str, object]) -> None:
        self._idle.append(conn)  # never trimmed: the leak


POOL = ConnectionPool()


@functools.lru_cache(maxsize=256)
def price(item: int) -> dict[str, object]:
    return {"item": item, "price": item * 1.5, "label": f"item-{item}"}


@app.route("/order/<int:n>")
def order(n: int) -> object:
    POOL.release({"conn": n, "peer": request.remote_addr, "headers": dict(request.headers)})
    return jsonify(price(n % 512))
