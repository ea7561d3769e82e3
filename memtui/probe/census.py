"""Provides the object census: live gc-tracked objects counted by type, in GIL-friendly chunks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """One of the largest containers seen by the census (lists, dicts, sets, deques)."""

    type_name: str
    length: int
    object_id: int


@dataclass(frozen=True, slots=True)
class CensusResult:
    """Counts of live objects by type name ('module.Qualname', builtins bare: 'dict')."""

    counts: dict[str, int]
    total_objects: int
    duration_s: float
    """Wall time of the whole census."""
    max_hold_s: float
    """Longest stretch the census ran without releasing the GIL."""
    tracked: dict[type, int] = field(default_factory=dict)
    """Counts of exactly the types passed in ``track`` (subclasses not included)."""
    largest_containers: tuple[ContainerInfo, ...] = ()


def take_census(
    track: Iterable[type] = (),
    chunk_size: int = 100_000,
    largest: int = 10,
) -> CensusResult:
    """Count live gc-tracked objects by type, yielding the GIL between chunks."""
    raise NotImplementedError
