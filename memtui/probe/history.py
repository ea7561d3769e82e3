"""Provides bounded multi-resolution history: fine samples recently, coarser ones further back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """One bucket of samples: time span and per-field min/max/mean/last."""

    t_start: float
    t_end: float
    count: int
    minimum: tuple[float, ...]
    maximum: tuple[float, ...]
    mean: tuple[float, ...]
    last: tuple[float, ...]


DEFAULT_TIERS: tuple[tuple[float, int], ...] = ((1.0, 3600), (10.0, 8640), (60.0, 10080))
"""(bucket width in seconds, buckets kept): 1 s for an hour, 10 s for a day, 1 min for a week."""


class History:
    """Keeps samples of ``fields`` numeric values in tiers of growing bucket width.

    Memory is bounded by the tiers whatever the run length; every tier sees every sample.
    """

    def __init__(
        self, fields: tuple[str, ...], tiers: tuple[tuple[float, int], ...] = DEFAULT_TIERS
    ) -> None:
        raise NotImplementedError

    def append(self, t: float, values: tuple[float, ...]) -> None:
        raise NotImplementedError

    def points(self, since: float | None = None, max_points: int | None = None) -> list[HistoryPoint]:
        """Points from ``since`` on, each span at the finest resolution still held."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError
