"""Detection metrics on labelled series: event-wise precision/recall/F1, false alarms and average precision.

Event-wise, as an on-call engineer experiences alerts: an incident counts as found once if any of its labelled rows
is flagged, and every run of consecutive flagged rows outside all incidents is one false alarm (one page). Only the
scored rows count: incidents that end before the first scored row are left out. Rows are days for daily data; for
sub-daily data ``count_events`` is told the rows per day so that false alarms are still per series-month.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

__all__ = ["DAYS_PER_MONTH", "EventCounts", "average_precision", "count_events", "false_alarm_runs"]

DAYS_PER_MONTH = 30.44


@dataclass(frozen=True)
class EventCounts:
    """Incidents found and missed, and false alarms (runs of flags outside every incident)."""

    found: int
    missed: int
    false_alarms: int
    series: int
    days: int

    def __add__(self, other: EventCounts) -> EventCounts:
        return EventCounts(
            self.found + other.found,
            self.missed + other.missed,
            self.false_alarms + other.false_alarms,
            self.series + other.series,
            self.days + other.days,
        )

    @property
    def precision(self) -> float:
        """Share of alarms (found incidents + false alarms) that are incidents; 0 without any alarm."""
        alarms = self.found + self.false_alarms
        return self.found / alarms if alarms else 0.0

    @property
    def recall(self) -> float:
        incidents = self.found + self.missed
        return self.found / incidents if incidents else 0.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0

    @property
    def false_alarms_per_series_month(self) -> float:
        """False alarms per series and 30.44 days of scored data (``days`` counts series-days)."""
        return self.false_alarms / (self.days / DAYS_PER_MONTH) if self.days else 0.0


def false_alarm_runs(flags: np.ndarray, labelled: np.ndarray) -> int:
    """Runs of consecutive flagged days outside the labelled days, counted per column of ``(days, series)``."""
    flags = np.asarray(flags, dtype=bool)
    labelled = np.asarray(labelled, dtype=bool)
    if flags.shape != labelled.shape:
        raise ValueError(f"flags {flags.shape} and labels {labelled.shape} must have the same shape")
    outside = flags & ~labelled
    if outside.ndim == 1:
        outside = outside[:, None]
    starts = outside.copy()
    starts[1:] &= ~outside[:-1]
    return int(starts.sum())


def count_events(flags: pd.DataFrame, labels: pd.DataFrame, rows_per_day: float = 1.0) -> EventCounts:
    """Event counts of boolean ``flags`` (rows x series) against incident ``labels`` (series, start, end).

    ``flags`` covers exactly the scored rows; incidents overlapping them by at least one row are counted.
    ``rows_per_day`` (24 for hourly rows) converts the scored rows into the series-days of ``EventCounts.days``.
    """
    if rows_per_day <= 0:
        raise ValueError(f"rows_per_day must be positive, got {rows_per_day!r}")
    index = pd.DatetimeIndex(flags.index)
    values = flags.to_numpy(dtype=bool)
    first, last = index[0], index[-1]
    column = flags.columns.get_indexer(labels["series"])
    if (column < 0).any():
        raise ValueError(
            f"labels name series that are not scored: {sorted(set(labels['series'][column < 0]))}"
        )
    starts = pd.to_datetime(labels["start"])
    ends = pd.to_datetime(labels["end"])
    labelled = np.zeros(values.shape, dtype=bool)
    found = missed = 0
    for col, start, end in zip(column, starts, ends, strict=True):
        if end < first or start > last:
            continue
        rows = slice(index.searchsorted(start, side="left"), index.searchsorted(end, side="right"))
        labelled[rows, col] = True
        if values[rows, col].any():
            found += 1
        else:
            missed += 1
    return EventCounts(
        found=found,
        missed=missed,
        false_alarms=false_alarm_runs(values, labelled),
        series=values.shape[1],
        days=round(values.size / rows_per_day),
    )


def average_precision(scores: np.ndarray, labelled: np.ndarray) -> float:
    """Point-wise average precision of anomaly scores (higher is more anomalous); NaN scores rank last."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labelled = np.asarray(labelled, dtype=bool).reshape(-1)
    if scores.shape != labelled.shape:
        raise ValueError(f"scores {scores.shape} and labels {labelled.shape} must have the same size")
    if not labelled.any():
        raise ValueError("average precision needs at least one labelled day")
    finite = np.isfinite(scores)
    lowest = scores[finite].min() - 1.0 if finite.any() else 0.0
    return float(average_precision_score(labelled, np.where(finite, scores, lowest)))
