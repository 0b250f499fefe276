"""Synthetic daily cost series for benchmarks, with exactly labelled anomalies. Model and labels: see the package
docstring."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from airflow_provider_snowstorm.core.schema import DATE
from airflow_provider_snowstorm.datasets._common import (
    _KIND_CODE,
    _LEVEL,
    _OUTAGE,
    KINDS,
    _check_common,
    _check_kinds,
    _draw_trend,
    _Incidents,
    _inject,
    _label_mask,
    _SeriesParameters,
    _simulate,
    _slot_count,
    _streams,
    _to_date,
    _windows,
)

__all__ = ["SyntheticSeries", "generate_cost_series"]

_SERIES_LABEL_COLUMNS = (
    "incident_id",
    "series",
    "kind",
    "start",
    "end",
    "effect_end",
    "direction",
    "extra_cost",
)


@dataclass(frozen=True)
class SyntheticSeries:
    """Daily cost series for benchmarks, and one label row per injected incident.

    ``values``: DatetimeIndex ``usage_date``, one float column per series (``s0000``...). ``labels``:
    incident_id, series, kind, start, end (inclusive Timestamps), effect_end, direction, extra_cost; see the
    module docstring.
    """

    values: pd.DataFrame
    labels: pd.DataFrame

    def label_mask(self) -> pd.DataFrame:
        """Boolean frame shaped like ``values``: True on labelled anomalous days."""
        return _label_mask(self.values, self.labels)


def generate_cost_series(
    n_series: int,
    days: int,
    seed: int = 0,
    start: date | str = "2024-01-01",
    anomaly_rate: float = 3.0,
    kinds: Sequence[str] = KINDS,
    *,
    clean_days: int = 0,
    level_shift_label_days: int = 3,
) -> SyntheticSeries:
    """``n_series`` independent daily cost series with labelled incidents, for detection benchmarks.

    Heterogeneous on purpose: scale from a few dollars to tens of thousands per day (log-uniform), weekly
    seasonality from none to strong, growth of -2%..+6% per month per trend segment, noise of 2-20%, a benign
    month-start bump in a quarter of the series and a smooth storage-like profile in about 15%. Incidents per
    series are Poisson with mean ``anomaly_rate`` per 365 days (capped by the free 21-day slots), kinds
    uniform over ``kinds``, none in the first ``clean_days`` days (default 0: incidents in a training span are
    realistic).
    """
    first_day = _to_date(start, "start")
    if isinstance(n_series, bool) or not isinstance(n_series, int | np.integer) or n_series < 1:
        raise ValueError(f"n_series must be a positive integer, got {n_series!r}")
    _check_common(days, seed, anomaly_rate, clean_days, level_shift_label_days)
    chosen_kinds = _check_kinds(kinds)
    structure_rng, clean_rng, _, incident_rng = _streams(seed)

    params = _draw_benchmark_parameters(structure_rng, n_series, days)
    clean = _simulate(clean_rng, params, first_day, days)

    n_slots = _slot_count(days, clean_days)
    incidents = _Incidents(*(np.zeros(0, dtype=np.int64) for _ in range(5)), magnitude=np.zeros(0))
    cents, extra = clean, np.zeros(0, dtype=np.int64)
    if chosen_kinds and anomaly_rate > 0 and n_slots > 0:
        per_series = np.minimum(
            incident_rng.poisson(anomaly_rate * (days - clean_days) / 365.0, n_series), n_slots
        )
        slot_order = np.argsort(incident_rng.random((n_series, n_slots)), axis=1)
        taken = np.arange(n_slots)[None, :] < per_series[:, None]
        series = np.repeat(np.arange(n_series), per_series)
        slot = slot_order[taken]
        kind = np.array([_KIND_CODE[k] for k in chosen_kinds])[
            incident_rng.integers(0, len(chosen_kinds), series.size)
        ]
        start_day, length, magnitude = _windows(
            incident_rng, kind, slot, clean_days, first_day.weekday(), level_shift_label_days
        )
        incidents = _Incidents(series, series, kind, start_day, length, magnitude)
        if len(incidents):
            cents, extra = _inject(incident_rng, clean, np.arange(n_series), n_series, incidents)

    width = max(4, len(str(n_series - 1)))
    names = [f"s{index:0{width}d}" for index in range(n_series)]
    index = pd.date_range(first_day.isoformat(), periods=days, freq="D", name=DATE)
    values = pd.DataFrame(cents.T / 100.0, index=index, columns=names)

    order = np.lexsort((incidents.series, incidents.start))
    kind_sorted = incidents.kind[order]
    start_sorted = incidents.start[order]
    end_sorted = start_sorted + incidents.length[order] - 1
    effect_end = np.where(kind_sorted == _LEVEL, days - 1, end_sorted)
    labels = pd.DataFrame(
        {
            "incident_id": np.arange(len(incidents), dtype=np.int64),
            "series": pd.Series(np.array(names, dtype=object)[incidents.series[order]].tolist(), dtype=str),
            "kind": pd.Series(np.array(KINDS, dtype=object)[kind_sorted].tolist(), dtype=str),
            "start": index[start_sorted],
            "end": index[end_sorted],
            "effect_end": index[effect_end],
            "direction": pd.Series(np.where(kind_sorted == _OUTAGE, "drop", "spike").tolist(), dtype=str),
            "extra_cost": (extra[order] / 100.0).round(2),
        },
        columns=list(_SERIES_LABEL_COLUMNS),
    )
    return SyntheticSeries(values=values, labels=labels)


def _draw_benchmark_parameters(rng: np.random.Generator, n: int, days: int) -> _SeriesParameters:
    storage_like = rng.random(n) < 0.15
    seasonal = rng.random(n) < 0.7
    weekend_drop = np.where(seasonal, rng.uniform(0.1, 0.7, n), rng.uniform(0.0, 0.05, n))
    noise = np.exp(rng.uniform(np.log(0.02), np.log(0.2), n))
    growth_low = np.where(storage_like, 0.005, -0.02)
    growth_high = np.where(storage_like, 0.04, 0.06)
    monthly_growth, change_points = _draw_trend(rng, n, days, growth_low, growth_high)
    return _SeriesParameters(
        level=np.exp(rng.uniform(np.log(3.0), np.log(30_000.0), n)),
        weekend_drop=np.where(storage_like, 0.0, weekend_drop),
        noise=np.where(storage_like, rng.uniform(0.003, 0.01, n), noise),
        noise_persistence=np.where(storage_like, 0.95, rng.uniform(0.0, 0.6, n)),
        month_start_bump=np.where(~storage_like & (rng.random(n) < 0.25), rng.uniform(0.1, 0.5, n), 0.0),
        monthly_growth=monthly_growth,
        change_points=change_points,
    )
