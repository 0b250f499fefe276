"""Shared pieces of the synthetic generators: the normal-behaviour model, anomaly placement and injection,
argument checks and label masks (see the package docstring for the model and the label conventions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

from airflow_provider_snowstorm.core.features import snake_case_usage_type

KINDS: tuple[str, ...] = ("runaway_spike", "burst", "outage", "level_shift", "weekend_job")

# Anomaly windows live in slots of this many days, each window at least _SLOT_MARGIN days from the slot's
# edges: windows in the same series therefore never overlap or touch.
_SLOT_DAYS = 21
_SLOT_MARGIN = 3
_MAX_LABEL_DAYS = 7
_DAYS_PER_MONTH = 30.44
_N_CHANGE_POINTS = 3

_KIND_CODE = {kind: code for code, kind in enumerate(KINDS)}
_SPIKE, _BURST, _OUTAGE, _LEVEL, _WEEKEND = range(len(KINDS))
# Per kind: label length range (days) and magnitude range. Magnitude is the uplift relative to the series
# (m - 1 for "m times"), except for an outage, where it is the fraction of usage the affected account keeps.
_LENGTH_RANGE = np.array([(1, 1), (3, 7), (1, 3), (3, 3), (1, 2)])
_MAGNITUDE_RANGE = np.array([(2.0, 9.0), (0.6, 2.0), (0.0, 0.2), (0.4, 1.0), (1.0, 2.5)])
_BURST_DAY_JITTER = 0.15  # a burst's daily uplift varies by +-15% around its magnitude (never below +51%)

# Day-of-week profile on weekdays (Mon..Fri) of a strongly seasonal series; Saturday gets 1 - weekend_drop,
# Sunday up to 5% less than that.
_WEEKDAY_PROFILE = np.array([1.04, 1.02, 1.0, 1.0, 0.94])


# ----------------------------------------------------------------------------------------------------
# Shared series model
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SeriesParameters:
    """Per-series parameters of the normal behaviour, one array entry per series."""

    level: np.ndarray  # cost per day at the start, weekday level
    weekend_drop: np.ndarray
    noise: np.ndarray  # log-scale standard deviation
    noise_persistence: np.ndarray  # AR(1) coefficient in log space
    month_start_bump: np.ndarray  # 0 for series without the effect
    monthly_growth: np.ndarray  # (n, _N_CHANGE_POINTS + 1)
    change_points: np.ndarray  # (n, _N_CHANGE_POINTS) day offsets, sorted


def _simulate(rng: np.random.Generator, params: _SeriesParameters, first_day: date, days: int) -> np.ndarray:
    """Normal behaviour of n series over ``days`` days, in integer cents, shape (n, days)."""
    n = params.level.shape[0]
    t = np.arange(days)

    segment = (t[None, :, None] >= params.change_points[:, None, :]).sum(axis=2)
    daily_rate = np.log1p(np.take_along_axis(params.monthly_growth, segment, axis=1)) / _DAYS_PER_MONTH
    log_trend = np.cumsum(daily_rate, axis=1) - daily_rate[:, :1]

    # Series with a weak weekend drop have a correspondingly flat week (storage: none at all).
    weekday = (first_day.weekday() + t) % 7
    strength = np.clip(params.weekend_drop / 0.3, 0.0, 1.0)[:, None]
    is_weekend = weekday >= 5
    weekly = np.empty((n, days))
    weekly[:, ~is_weekend] = 1.0 + (_WEEKDAY_PROFILE[weekday[~is_weekend]][None, :] - 1.0) * strength
    sunday = (weekday[is_weekend] == 6)[None, :]
    weekly[:, is_weekend] = (1.0 - params.weekend_drop[:, None]) * (1.0 - 0.05 * strength * sunday)

    calendar_day = np.datetime64(first_day, "D") + t
    day_of_month = (calendar_day - calendar_day.astype("datetime64[M]")).astype(np.int64) + 1
    month_start = (
        1.0
        + params.month_start_bump[:, None]
        * np.select([day_of_month == 1, day_of_month == 2], [1.0, 0.5], 0.0)[None, :]
    )

    shocks = rng.standard_normal((n, days)) * params.noise[:, None]
    innovation_scale = np.sqrt(1.0 - params.noise_persistence**2)
    log_noise = np.empty((n, days))
    if days:
        log_noise[:, 0] = shocks[:, 0]
    for day in range(1, days):
        log_noise[:, day] = (
            params.noise_persistence * log_noise[:, day - 1] + innovation_scale * shocks[:, day]
        )
    log_noise -= params.noise[:, None] ** 2 / 2.0

    cost = params.level[:, None] * np.exp(log_trend + log_noise) * weekly * month_start
    return np.rint(cost * 100.0).astype(np.int64)


def _draw_trend(
    rng: np.random.Generator, n: int, days: int, growth_low: np.ndarray, growth_high: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Monthly growth per segment and sorted change points for n series."""
    monthly_growth = rng.uniform(growth_low[:, None], growth_high[:, None], size=(n, _N_CHANGE_POINTS + 1))
    change_points = np.sort(rng.integers(1, max(days, 2), size=(n, _N_CHANGE_POINTS)), axis=1)
    return monthly_growth, change_points


# ----------------------------------------------------------------------------------------------------
# Shared anomaly placement and injection
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Incidents:
    """Incidents as parallel arrays; ``unit`` is the row of the cost matrix hit, ``series`` where it shows."""

    series: np.ndarray
    unit: np.ndarray
    kind: np.ndarray
    start: np.ndarray
    length: np.ndarray
    magnitude: np.ndarray

    def __len__(self) -> int:
        return int(self.kind.shape[0])


def _slot_count(days: int, clean_days: int) -> int:
    return max(0, (days - clean_days) // _SLOT_DAYS)


def _windows(
    rng: np.random.Generator,
    kind: np.ndarray,
    slot: np.ndarray,
    clean_days: int,
    first_weekday: int,
    level_shift_label_days: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start day, label length and magnitude of each incident inside its slot (weekend jobs on a weekend)."""
    count = kind.shape[0]
    low, high = _LENGTH_RANGE[kind, 0], _LENGTH_RANGE[kind, 1]
    length = np.where(
        kind == _LEVEL, level_shift_label_days, low + np.floor(rng.random(count) * (high - low + 1))
    )
    length = length.astype(np.int64)
    magnitude = rng.uniform(_MAGNITUDE_RANGE[kind, 0], _MAGNITUDE_RANGE[kind, 1])

    slot_start = clean_days + slot * _SLOT_DAYS + _SLOT_MARGIN
    room = _SLOT_DAYS - 2 * _SLOT_MARGIN - np.where(kind == _WEEKEND, 2 + 6, length)
    start = slot_start + np.floor(rng.random(count) * (room + 1)).astype(np.int64)

    # Weekend job: move to the next Saturday, then Saturday only, Sunday only, or both.
    variant = rng.integers(0, 3, size=count)
    to_saturday = (5 - (first_weekday + start) % 7) % 7
    weekend_start = start + to_saturday + (variant == 1)
    weekend_length = np.where(variant == 2, 2, 1)
    is_weekend_job = kind == _WEEKEND
    start = np.where(is_weekend_job, weekend_start, start)
    length = np.where(is_weekend_job, weekend_length, length)
    return start, length, magnitude


def _expand(start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(incident index, day) for every labelled day of every incident."""
    owner = np.repeat(np.arange(start.shape[0]), length)
    offset = np.arange(owner.shape[0]) - np.repeat(np.cumsum(length) - length, length)
    return owner, start[owner] + offset


def _inject(
    rng: np.random.Generator, clean: np.ndarray, unit_series: np.ndarray, n_series: int, incidents: _Incidents
) -> tuple[np.ndarray, np.ndarray]:
    """Add incidents to a (units, days) cent matrix; return the new matrix and each incident's extra cents.

    Spikes, bursts, level shifts and weekend jobs add a multiple of the series' current level (organisation
    level, including earlier level shifts) to the incident's unit; an outage keeps a fraction of the unit's
    own usage.
    """
    n_units, days = clean.shape
    series_clean = np.zeros((n_series, days))
    np.add.at(series_clean, unit_series, clean.astype(np.float64))

    level = incidents.kind == _LEVEL
    step_weight = _compounded_steps(incidents)
    shift_series = np.zeros((n_series, days + 1))
    np.add.at(shift_series, (incidents.series[level], incidents.start[level]), step_weight[level])
    shift_series = np.cumsum(shift_series[:, :days], axis=1)
    shift_unit = np.zeros((n_units, days + 1))
    np.add.at(shift_unit, (incidents.unit[level], incidents.start[level]), step_weight[level])
    shift_unit = np.cumsum(shift_unit[:, :days], axis=1)

    unit_reference = series_clean[unit_series]
    current = clean + np.rint(shift_unit * unit_reference).astype(np.int64)
    series_level = series_clean * (1.0 + shift_series)

    owner, day = _expand(incidents.start, incidents.length)
    kind = incidents.kind[owner]
    unit = incidents.unit[owner]
    jitter = rng.uniform(1.0 - _BURST_DAY_JITTER, 1.0 + _BURST_DAY_JITTER, size=owner.shape[0])
    uplift = incidents.magnitude[owner] * np.where(kind == _BURST, jitter, 1.0)

    added = np.rint(uplift * series_level[incidents.series[owner], day]).astype(np.int64)
    removed = np.rint((incidents.magnitude[owner] - 1.0) * current[unit, day]).astype(np.int64)
    # The step of a level shift on its own labelled days: the data with it minus the data without it.
    with_step = np.rint(shift_unit[unit, day] * unit_reference[unit, day])
    without_step = np.rint((shift_unit[unit, day] - step_weight[owner]) * unit_reference[unit, day])
    step = (with_step - without_step).astype(np.int64)

    transient = kind != _LEVEL
    extra = np.select([kind == _OUTAGE, kind == _LEVEL], [removed, step], added)
    result = current.copy()
    result[unit[transient], day[transient]] += extra[transient]  # windows never overlap within a series
    extra_per_incident = np.bincount(owner, weights=extra, minlength=len(incidents)).astype(np.int64)
    return result, extra_per_incident


def _compounded_steps(incidents: _Incidents) -> np.ndarray:
    """Each level shift's step in multiples of the clean series: +magnitude of the level it meets.

    After earlier shifts of +u1 and +u2 in the same series, a shift of +u adds u * (1 + u1) * (1 + u2) times
    the clean series, which then runs at (1 + u1) * (1 + u2) * (1 + u) times its clean level. Other kinds: 0.
    """
    level = np.flatnonzero(incidents.kind == _LEVEL)
    weight = np.zeros(len(incidents))
    if level.size:
        order = level[np.lexsort((incidents.start[level], incidents.series[level]))]
        growth = np.log1p(incidents.magnitude[order])
        running = np.cumsum(growth) - growth  # log of the level before each shift, across series
        series = incidents.series[order]
        first_of_series = np.r_[True, series[1:] != series[:-1]]
        running -= np.maximum.accumulate(np.where(first_of_series, running, -np.inf))
        weight[order] = incidents.magnitude[order] * np.exp(running)
    return weight


def _check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    if isinstance(kinds, str):
        raise ValueError(
            f"kinds must be a sequence of kind names, not the string {kinds!r}; e.g. ({kinds!r},)"
        )
    chosen = tuple(dict.fromkeys(kinds))
    unknown = [kind for kind in chosen if kind not in _KIND_CODE]
    if unknown:
        raise ValueError(f"kinds has unknown anomaly kind(s) {unknown}; choose from {list(KINDS)}")
    return chosen


def _check_common(
    days: int, seed: int, anomaly_rate: float, clean_days: int, level_shift_label_days: int
) -> None:
    if isinstance(days, bool) or not isinstance(days, int | np.integer) or days < 1:
        raise ValueError(f"days must be a positive integer, got {days!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if (
        isinstance(anomaly_rate, bool)
        or not isinstance(anomaly_rate, int | float | np.number)
        or not np.isfinite(anomaly_rate)
        or anomaly_rate < 0
    ):
        raise ValueError(f"anomaly_rate must be a finite number >= 0, got {anomaly_rate!r}")
    if (
        isinstance(clean_days, bool)
        or not isinstance(clean_days, int | np.integer)
        or not 0 <= clean_days <= days
    ):
        raise ValueError(f"clean_days must be an integer between 0 and days ({days}), got {clean_days!r}")
    if not isinstance(level_shift_label_days, int | np.integer) or not (
        1 <= level_shift_label_days <= _MAX_LABEL_DAYS
    ):
        raise ValueError(
            f"level_shift_label_days must be between 1 and {_MAX_LABEL_DAYS}, got {level_shift_label_days!r}"
        )


def _to_date(value: date | str, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError as error:
            raise ValueError(f"{name} must be an ISO date like '2024-01-01', got {value!r}") from error
    raise ValueError(f"{name} must be a date or an ISO date string, got {type(value).__name__} {value!r}")


def _snake_case(usage_type: str) -> str:
    return snake_case_usage_type(usage_type, validate=False)


def _label_mask(values: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    mask = np.zeros(values.shape, dtype=bool)
    if not labels.empty:
        column = values.columns.get_indexer(labels["series"])
        if (column < 0).any():
            missing = sorted(set(labels["series"][column < 0]))
            raise ValueError(f"labels name series that are not columns of the values: {missing}")
        first = pd.Timestamp(values.index[0])
        start = (pd.to_datetime(labels["start"]) - first).dt.days.to_numpy()
        length = (pd.to_datetime(labels["end"]) - pd.to_datetime(labels["start"])).dt.days.to_numpy() + 1
        owner, day = _expand(start, length)
        mask[day, column[owner]] = True
    return pd.DataFrame(mask, index=values.index, columns=values.columns)


def _streams(seed: int) -> tuple[np.random.Generator, ...]:
    """Independent random streams, so that turning anomalies off leaves every other draw unchanged."""
    return tuple(np.random.default_rng(child) for child in np.random.SeedSequence(int(seed)).spawn(4))
