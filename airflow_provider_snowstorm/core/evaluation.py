"""Model evaluation on labelled days: event-wise precision, recall, F1, false alarms per month and average precision.

Event-wise, as an on-call engineer experiences alerts: an incident counts as found once if any of its labelled rows
is flagged, and every run of consecutive flagged rows outside all incidents is one false alarm (one page). Only the
scored rows count: incidents that end before the first scored row are left out. Rows are days for daily data; for
sub-daily data ``count_events`` is told the rows per day so that false alarms are still per series-month.

``evaluate_predictions`` applies these to the long-format rows that scoring writes (``core.schema``), which is how the
evaluation operator scores a backtest or a shadow period; the quality benchmark uses the same functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from airflow_provider_snowstorm.core.schema import ANOMALY_SCORE, DATE, IS_ANOMALY, SERIES
from airflow_provider_snowstorm.core.thresholds import DAYS_PER_MONTH

__all__ = [
    "DAYS_PER_MONTH",
    "LABEL_COLUMNS",
    "EvaluationMetrics",
    "EventCounts",
    "average_precision",
    "compare_evaluations",
    "count_events",
    "evaluate_predictions",
    "false_alarm_runs",
    "validate_labels",
]

# Labelled incidents: which series, first and last day (inclusive).
LABEL_COLUMNS: tuple[str, ...] = ("series", "start", "end")


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


def _labelled_rows(
    index: pd.DatetimeIndex, columns: pd.Index, labels: pd.DataFrame
) -> tuple[np.ndarray, list[slice | None], np.ndarray]:
    """A (rows x series) mask of labelled rows, each label's row slice (None outside the rows) and its column."""
    column = columns.get_indexer(labels["series"])
    if (column < 0).any():
        raise ValueError(
            f"labels name series that are not scored: {sorted(set(labels['series'][column < 0]))}"
        )
    labelled = np.zeros((len(index), len(columns)), dtype=bool)
    spans: list[slice | None] = []
    first, last = index[0], index[-1]
    for col, start, end in zip(
        column, pd.to_datetime(labels["start"]), pd.to_datetime(labels["end"]), strict=True
    ):
        if end < first or start > last:
            spans.append(None)
            continue
        rows = slice(index.searchsorted(start, side="left"), index.searchsorted(end, side="right"))
        labelled[rows, col] = True
        spans.append(rows)
    return labelled, spans, column


def count_events(flags: pd.DataFrame, labels: pd.DataFrame, rows_per_day: float = 1.0) -> EventCounts:
    """Event counts of boolean ``flags`` (rows x series) against incident ``labels`` (series, start, end).

    ``flags`` covers exactly the scored rows; incidents overlapping them by at least one row are counted.
    ``rows_per_day`` (24 for hourly rows) converts the scored rows into the series-days of ``EventCounts.days``.
    """
    if rows_per_day <= 0:
        raise ValueError(f"rows_per_day must be positive, got {rows_per_day!r}")
    values = flags.to_numpy(dtype=bool)
    labelled, spans, column = _labelled_rows(pd.DatetimeIndex(flags.index), flags.columns, labels)
    found = missed = 0
    for rows, col in zip(spans, column, strict=True):
        if rows is None:
            continue
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


def validate_labels(labels: pd.DataFrame | Any, *, where: str = "labels") -> pd.DataFrame:
    """Labels as a frame of ``LABEL_COLUMNS`` (dates parsed); an error names the column or row that is wrong."""
    frame = pd.DataFrame(labels).rename(columns=lambda column: str(column).lower())
    missing = [column for column in LABEL_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"{where} lack column(s) {missing}; got {sorted(frame.columns)}")
    frame = frame[list(LABEL_COLUMNS)].reset_index(drop=True)
    for column in ("start", "end"):
        parsed = pd.to_datetime(frame[column], errors="coerce")
        if parsed.isna().any():
            row = int(parsed.isna().to_numpy().argmax())
            raise ValueError(f"{where}: row {row + 1} has {column} {frame[column].iloc[row]!r}, not a date")
        frame[column] = parsed.dt.normalize()
    backwards = frame["end"] < frame["start"]
    if backwards.any():
        row = int(backwards.to_numpy().argmax())
        raise ValueError(f"{where}: row {row + 1} ends ({frame['end'].iloc[row].date()}) before it starts")
    frame["series"] = frame["series"].astype(str)
    return frame


@dataclass(frozen=True)
class EvaluationMetrics:
    """One model's detection quality on one span: event counts and the rates derived from them."""

    days: int
    incidents: int
    found: int
    missed: int
    false_alarms: int
    precision: float
    recall: float
    f1: float
    false_alarms_per_month: float
    average_precision: float | None
    """Point-wise AP of the anomaly scores; None when the span holds no labelled day."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_predictions(predictions: pd.DataFrame, labels: pd.DataFrame) -> EvaluationMetrics:
    """Metrics of long-format predictions (``usage_date, series, anomaly_score, is_anomaly``) against ``labels``.

    Every scored day counts; labels of other series or outside the scored days are ignored.
    """
    missing = [column for column in (DATE, SERIES, ANOMALY_SCORE, IS_ANOMALY) if column not in predictions]
    if missing:
        raise ValueError(f"predictions lack column(s) {missing}")
    if predictions.empty:
        raise ValueError("no predictions to evaluate: the span has no scored days")
    frame = predictions.assign(
        **{DATE: pd.to_datetime(predictions[DATE]), SERIES: predictions[SERIES].astype(str)}
    )
    flags = frame.pivot(index=DATE, columns=SERIES, values=IS_ANOMALY).astype(bool).sort_index()
    scores = frame.pivot(index=DATE, columns=SERIES, values=ANOMALY_SCORE).astype(float).sort_index()
    labels = validate_labels(labels)
    labels = labels[labels["series"].isin(flags.columns)]
    counts = count_events(flags, labels)
    labelled, _, _ = _labelled_rows(pd.DatetimeIndex(flags.index), flags.columns, labels)
    return EvaluationMetrics(
        days=len(flags),
        incidents=counts.found + counts.missed,
        found=counts.found,
        missed=counts.missed,
        false_alarms=counts.false_alarms,
        precision=counts.precision,
        recall=counts.recall,
        f1=counts.f1,
        false_alarms_per_month=counts.false_alarms_per_series_month,
        average_precision=average_precision(scores.to_numpy(), labelled) if labelled.any() else None,
    )


def compare_evaluations(champion: Mapping[str, Any] | None, candidate: Mapping[str, Any]) -> tuple[bool, str]:
    """Is ``candidate`` at least as good as ``champion`` on the same evaluation? And why, in one sentence.

    Better means a higher F1; on equal F1, fewer false alarms per month; then a higher average precision. No
    champion: the candidate is accepted.
    """
    if champion is None:
        return True, "no model in production yet"

    def key(metrics: Mapping[str, Any]) -> tuple[float, float, float]:
        ap = metrics.get("average_precision")
        return (
            round(float(metrics["f1"]), 6),
            -float(metrics["false_alarms_per_month"]),
            float(ap) if ap is not None and math.isfinite(float(ap)) else -1.0,
        )

    def text(metrics: Mapping[str, Any]) -> str:
        ap = metrics.get("average_precision")
        return (
            f"F1 {float(metrics['f1']):.2f}, {float(metrics['false_alarms_per_month']):.2f} false alarms/month, "
            f"AP {'n/a' if ap is None else f'{float(ap):.2f}'}"
        )

    better = key(candidate) >= key(champion)
    verdict = "at least as good as" if better else "worse than"
    return better, f"candidate ({text(candidate)}) is {verdict} the champion ({text(champion)})"
