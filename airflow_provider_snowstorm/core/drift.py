"""Data, score and age drift of a deployed model: is it still looking at the data it was trained on?

Pure functions (no Airflow). At training time ``reference_profile`` summarises the end of each series' training data
(its level and weekly profile); the profile is stored with the model. Monitoring then compares recent features and
recent predictions with it:

- **level**: the recent mean against the training level (a ratio outside ``1 / (1 + level_tolerance)`` ..
  ``1 + level_tolerance``);
- **weekly profile**: the largest change of a weekday's share of the week (more than ``profile_tolerance``);
- **missing or late days**: calendar days without a row or with zero spend (feature building zero-fills missing
  days), or a last day more than ``max_lateness_days`` before the expected one;
- **new series**: feature columns (usage types) that appeared after training and that no model covers;
- **alarm rate**: alarms (runs of flagged days) in the recent predictions that the model's calibrated budget makes
  improbable (Poisson tail probability below ``alarm_p_value``);
- **model age**: days between the end of the training data and the last scored day beyond ``max_age_days``.

Each finding names the series, what drifted, by how much and the limit, so the reason a retraining was triggered
can be shown as it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from airflow_provider_snowstorm.core.schema import DATE, IS_ANOMALY, SERIES
from airflow_provider_snowstorm.core.thresholds import DAYS_PER_MONTH

__all__ = [
    "DriftFinding",
    "DriftLimits",
    "DriftReport",
    "alarm_runs",
    "check_drift",
    "reference_profile",
]

REFERENCE_DAYS = 56  # the last eight weeks of training data define the reference level and weekly profile


@dataclass(frozen=True)
class DriftLimits:
    """How far recent data and scores may move from the training reference before retraining is due."""

    level_tolerance: float = 0.5
    profile_tolerance: float = 0.1
    max_missing_days: int = 0
    max_lateness_days: int = 3
    alarm_p_value: float = 0.001
    max_age_days: int = 35

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"drift limit {name} must be a non-negative number, got {value!r}")
        if not 0 < self.alarm_p_value < 1:
            raise ValueError(f"drift limit alarm_p_value must be in (0, 1), got {self.alarm_p_value!r}")


@dataclass(frozen=True)
class DriftFinding:
    series: str
    kind: str
    """``level``, ``weekly_profile``, ``missing_days``, ``late_data``, ``new_series``, ``alarm_rate``,
    ``model_age``; ``series`` is ``*`` for findings about the features as a whole."""
    value: float
    limit: float
    message: str
    names: tuple[str, ...] = ()
    """The series a ``new_series`` finding is about."""


@dataclass(frozen=True)
class DriftReport:
    checked: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per series, every measured value (drifted or not)."""
    findings: tuple[DriftFinding, ...] = ()

    @property
    def drifted(self) -> bool:
        return bool(self.findings)

    @property
    def drifted_series(self) -> list[str]:
        return sorted({finding.series for finding in self.findings if finding.series != "*"})

    @property
    def new_series(self) -> list[str]:
        """Series in the features that no model covers and that were not there at training."""
        return sorted({name for finding in self.findings for name in finding.names})

    @property
    def reason(self) -> str:
        """One line: every finding, or that nothing drifted."""
        if not self.findings:
            return "no drift: " + ", ".join(sorted(self.checked)) + " within limits"
        return "; ".join(finding.message for finding in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "drifted_series": self.drifted_series,
            "new_series": self.new_series,
            "reason": self.reason,
            "findings": [asdict(finding) for finding in self.findings],
            "checked": self.checked,
        }


def _weekday_shares(values: pd.Series) -> list[float]:
    by_weekday = values.groupby(values.index.day_of_week).mean().reindex(range(7), fill_value=0.0)
    total = float(by_weekday.sum())
    return [float(v) / total if total > 0 else 1.0 / 7 for v in by_weekday]


def reference_profile(history: pd.DataFrame, days: int = REFERENCE_DAYS) -> dict[str, dict[str, Any]]:
    """Per series of a daily frame: the mean level and weekday shares of its last ``days`` rows (JSON-safe)."""
    if days < 7:
        raise ValueError(f"a reference needs at least a week of rows, got days={days}")
    tail = history.sort_index().iloc[-days:]
    tail.index = pd.DatetimeIndex(tail.index)
    return {
        str(name): {
            "level": float(tail[name].mean()),
            "weekday_shares": _weekday_shares(tail[name]),
            "start": tail.index[0].date().isoformat(),
            "end": tail.index[-1].date().isoformat(),
        }
        for name in tail.columns
    }


def alarm_runs(flags: Iterable[bool]) -> int:
    """Alarms as a person is paged: runs of consecutive flagged rows."""
    values = np.asarray(list(flags), dtype=bool)
    return int(values[0]) + int((values[1:] & ~values[:-1]).sum()) if values.size else 0


def _poisson_tail(observed: int, expected: float) -> float:
    """P(X >= observed) for X ~ Poisson(expected)."""
    if observed <= 0:
        return 1.0
    below = sum(math.exp(-expected) * expected**k / math.factorial(k) for k in range(observed))
    return max(0.0, 1.0 - below)


def check_drift(
    recent: pd.DataFrame,
    references: Mapping[str, Mapping[str, Any]],
    *,
    predictions: pd.DataFrame | None = None,
    alarm_budgets: Mapping[str, float] | None = None,
    training_ends: Mapping[str, str | date] | None = None,
    feature_columns: Sequence[str] = (),
    known_series: Sequence[str] = (),
    expected_last_day: date | None = None,
    limits: DriftLimits | None = None,
) -> DriftReport:
    """Compare ``recent`` daily features (index dates, one column per modelled series) with each model's reference.

    ``predictions`` (long format, ``usage_date, series, is_anomaly``) give the alarm rate, judged against each series'
    ``alarm_budgets`` (alarms per 30.44 days); ``training_ends`` give the model age at the last recent day;
    ``feature_columns`` are every series the features hold now and ``known_series`` those they held at training (a
    new one without a model is reported; not checked without ``known_series``); ``expected_last_day`` is the day the
    features should reach by now.
    """
    limits = limits or DriftLimits()
    if recent.empty:
        raise ValueError("no recent features to check for drift")
    recent = recent.sort_index()
    recent.index = pd.DatetimeIndex(recent.index).normalize()
    last_day = recent.index[-1].date()
    calendar = pd.date_range(recent.index[0], recent.index[-1], freq="D")
    findings: list[DriftFinding] = []
    checked: dict[str, dict[str, Any]] = {}
    for series in recent.columns:
        name = str(series)
        reference = references.get(name)
        if reference is None:
            raise ValueError(f"no training reference for series {name!r}: retrain its model to record one")
        values = recent[series]
        measured: dict[str, Any] = {}
        ratio = float(values.mean()) / reference["level"] if reference["level"] > 0 else math.inf
        measured["level_ratio"] = ratio
        high, low = 1 + limits.level_tolerance, 1 / (1 + limits.level_tolerance)
        if not low <= ratio <= high:
            findings.append(
                DriftFinding(
                    name,
                    "level",
                    ratio,
                    high if ratio > high else low,
                    f"{name}: level {ratio:.2f}x the training level (limit {low:.2f}-{high:.2f}x)",
                )
            )
        if len(values) >= 14:
            shift = float(np.max(np.abs(np.subtract(_weekday_shares(values), reference["weekday_shares"]))))
            measured["weekly_profile_shift"] = shift
            if shift > limits.profile_tolerance:
                findings.append(
                    DriftFinding(
                        name,
                        "weekly_profile",
                        shift,
                        limits.profile_tolerance,
                        f"{name}: a weekday's share of the week moved by {shift:.1%} "
                        f"(limit {limits.profile_tolerance:.0%})",
                    )
                )
        # No row, or a zero-filled one (feature building makes every calendar day explicit, zero when missing).
        missing = len(calendar.difference(values[values.fillna(0) > 0].index))
        measured["missing_days"] = missing
        if missing > limits.max_missing_days:
            findings.append(
                DriftFinding(
                    name,
                    "missing_days",
                    missing,
                    limits.max_missing_days,
                    f"{name}: {missing} day(s) without data between {calendar[0].date()} and {last_day}",
                )
            )
        if predictions is not None and alarm_budgets and name in alarm_budgets:
            rows = predictions[predictions[SERIES].astype(str) == name].sort_values(DATE)
            if not rows.empty:
                alarms = alarm_runs(rows[IS_ANOMALY].astype(bool))
                expected = float(alarm_budgets[name]) * len(rows) / DAYS_PER_MONTH
                p_value = _poisson_tail(alarms, expected)
                measured.update(alarms=alarms, expected_alarms=expected, alarm_p_value=p_value)
                if p_value < limits.alarm_p_value:
                    findings.append(
                        DriftFinding(
                            name,
                            "alarm_rate",
                            alarms,
                            expected,
                            f"{name}: {alarms} alarms in {len(rows)} days where the budget expects {expected:.2f} "
                            f"(p = {p_value:.1e} < {limits.alarm_p_value:g})",
                        )
                    )
        if training_ends and name in training_ends:
            age = (last_day - pd.Timestamp(training_ends[name]).date()).days
            measured["model_age_days"] = age
            if age > limits.max_age_days:
                findings.append(
                    DriftFinding(
                        name,
                        "model_age",
                        age,
                        limits.max_age_days,
                        f"{name}: model trained on data up to {training_ends[name]}, {age} days before "
                        f"{last_day} (limit {limits.max_age_days})",
                    )
                )
        checked[name] = measured
    if expected_last_day is not None:
        lateness = (expected_last_day - last_day).days
        if lateness > limits.max_lateness_days:
            findings.append(
                DriftFinding(
                    "*",
                    "late_data",
                    lateness,
                    limits.max_lateness_days,
                    f"features end on {last_day}, {lateness} days before {expected_last_day} "
                    f"(limit {limits.max_lateness_days})",
                )
            )
    # Without the training-time columns there is no telling a new series from one never modelled: not checked.
    covered = {str(c).lower() for c in (*references, *known_series)}
    uncovered = sorted({str(c).lower() for c in feature_columns} - covered) if known_series else []
    if uncovered:
        findings.append(
            DriftFinding(
                "*",
                "new_series",
                len(uncovered),
                0,
                f"new series without a model: {', '.join(uncovered)}",
                tuple(uncovered),
            )
        )
    return DriftReport(checked=checked, findings=tuple(findings))
