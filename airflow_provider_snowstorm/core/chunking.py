"""Chunks of series: how many series one task fits and scores at once, derived from a memory budget.

The detector is vectorised over the columns of a wide frame, so a task that fits or scores thousands of series at
once costs little more per series than one that handles a single series, and far less than a loop. What bounds a
chunk is memory: the decomposition holds a handful of float64 arrays of (days x series), so the working set grows
with series x history days. ``series_per_chunk`` turns a budget (``SNOWSTORM_CHUNK_MEMORY_MB``, 1024 MiB by default)
into a chunk size for a given history length, and ``chunk_series`` splits a list of series into such chunks, one
mapped task each.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence

__all__ = [
    "BYTES_PER_SERIES_DAY",
    "CHUNK_MEMORY_ENV",
    "DEFAULT_CHUNK_MEMORY_MB",
    "chunk_memory_mb",
    "chunk_series",
    "series_per_chunk",
]

CHUNK_MEMORY_ENV = "SNOWSTORM_CHUNK_MEMORY_MB"
DEFAULT_CHUNK_MEMORY_MB = 1024
# Peak memory added per series and day of history while a chunk is read, fitted or scored: the decomposition's
# working set (30-60 bytes above the input frame, measured in fresh processes fitting and scoring 5,000-20,000
# series), the wide float64 frame and its validated copy (16 bytes), the frame as the database driver returns it,
# and headroom. Deliberately generous: a chunk that is too small costs a little speed, one that is too large kills
# the worker.
BYTES_PER_SERIES_DAY = 200


def chunk_memory_mb(environ: Mapping[str, str] | None = None) -> float:
    """The per-task memory budget in MiB: ``SNOWSTORM_CHUNK_MEMORY_MB`` if set, else 1024."""
    raw = (os.environ if environ is None else environ).get(CHUNK_MEMORY_ENV, "").strip()
    if not raw:
        return float(DEFAULT_CHUNK_MEMORY_MB)
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{CHUNK_MEMORY_ENV}={raw!r} is not a positive number of MiB (such as 1024)")
    return value


def series_per_chunk(
    history_days: int,
    memory_mb: float | None = None,
    *,
    bytes_per_series_day: float = BYTES_PER_SERIES_DAY,
) -> int:
    """Series one task can fit or score within ``memory_mb`` (default: ``chunk_memory_mb()``) when each series
    brings ``history_days`` rows: ``budget / (bytes_per_series_day x history_days)``, at least 1."""
    if isinstance(history_days, bool) or not isinstance(history_days, int) or history_days < 1:
        raise ValueError(f"history_days must be a whole number of days >= 1, got {history_days!r}")
    budget = chunk_memory_mb() if memory_mb is None else memory_mb
    if not math.isfinite(budget) or budget <= 0:
        raise ValueError(f"memory_mb must be a positive number of MiB, got {memory_mb!r}")
    if not math.isfinite(bytes_per_series_day) or bytes_per_series_day <= 0:
        raise ValueError(f"bytes_per_series_day must be positive, got {bytes_per_series_day!r}")
    return max(1, int(budget * 2**20 // (bytes_per_series_day * history_days)))


def chunk_series(series: Sequence[str], size: int) -> list[list[str]]:
    """``series`` split in order into lists of at most ``size`` (the last may be shorter): one mapped task each.

    A chunk's membership follows the list's order, and a chunk's model is found by its members: keep the list
    stable between training and scoring (sorted, say), and retrain when series are added.
    """
    if isinstance(series, str):
        raise ValueError("series must be a list of series names, not one string")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"chunk size must be a whole number >= 1, got {size!r}")
    names = list(series)
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"series {repeated[:10]} appear more than once: each series belongs to one chunk")
    return [names[first : first + size] for first in range(0, len(names), size)]
