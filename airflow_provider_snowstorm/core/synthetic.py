"""Synthetic Snowflake spend with exactly labelled anomalies.

Used to seed the local Snowflake emulation, to check the example pipeline's report and to benchmark detection
quality, so it is deterministic per seed, vectorised, and its labels are exact to the cent.

Normal behaviour (one model for both generators): a daily cost is ``level * trend * weekly * month_start *
noise``.

- ``trend``: piecewise exponential growth, a few % per month, with a new rate after each of three random
  change points.
- ``weekly``: weekdays busier than weekends; the weekend drop differs per series (0 for storage-like series).
- ``month_start``: some series have a benign bump on the first two days of each month (month-end reporting
  jobs).
- ``noise``: multiplicative, log-normal, AR(1) in log space so that busy and quiet days cluster a little.

Anomalies (``KINDS``) are added on top, in integer cents, never overlapping another incident's label window in
the same series, and sized relative to that series (at organisation level for ``generate_organization_usage``)
so that they are material where a detector looks:

- ``runaway_spike``: 1 day at 3-10x the series.
- ``burst``: 3-7 days at +60-200%.
- ``outage``: 1-3 days where the affected account keeps only 0-20% of its usage (a drop).
- ``level_shift``: a permanent step of +40-100% from ``start`` on. Only its first ``level_shift_label_days``
  days are labelled (``start``..``end``); afterwards the new level is the normal the detector should adapt to.
  ``effect_end`` is the last day the step is still in the data (the last generated day).
- ``weekend_job``: an unexpected job on a Saturday and/or Sunday, +100-250% of that day's usage.

Label conventions: ``start`` and ``end`` are inclusive; ``extra_cost`` is the signed currency the incident
adds (negative for a drop) on its labelled days, exact to the cent: data with the incident minus the same data
without it. Outside labelled windows the data equal those drawn with ``anomalies=False`` (same seed), except
after a level shift, whose step persists until ``effect_end``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from airflow_provider_snowstorm.core.schema import DATE

__all__ = [
    "KINDS",
    "USAGE_ROW_COLUMNS",
    "SyntheticSeries",
    "SyntheticUsage",
    "generate_cost_series",
    "generate_organization_usage",
]

KINDS: tuple[str, ...] = ("runaway_spike", "burst", "outage", "level_shift", "weekend_job")

USAGE_ROW_COLUMNS: tuple[str, ...] = (
    "ORGANIZATION_NAME",
    "CONTRACT_NUMBER",
    "ACCOUNT_NAME",
    "ACCOUNT_LOCATOR",
    "REGION",
    "SERVICE_LEVEL",
    "USAGE_DATE",
    "USAGE_TYPE",
    "USAGE",
    "CURRENCY",
    "USAGE_IN_CURRENCY",
    "BALANCE_SOURCE",
    "BILLING_TYPE",
    "RATING_TYPE",
    "SERVICE_TYPE",
    "IS_ADJUSTMENT",
)

_ORG_LABEL_COLUMNS = (
    "incident_id",
    "kind",
    "account_name",
    "usage_type",
    "series",
    "start",
    "end",
    "effect_end",
    "extra_cost",
    "direction",
)
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


@dataclass(frozen=True)
class _UsageTypeProfile:
    """How one Snowflake usage type behaves, relative to the account's compute spend."""

    usage_type: str
    relative_cost: float
    weekend_drop: tuple[float, float]
    noise: tuple[float, float]
    growth: tuple[float, float]  # monthly growth rate range per trend segment
    month_start_probability: float
    presence: float  # probability that a non-primary account has it
    adopted_mid_span: bool = False
    primary_only: bool = False

    @property
    def service_type(self) -> str:
        return _SERVICE_TYPES[self.usage_type]

    @property
    def rating_type(self) -> str:
        return self.usage_type if self.usage_type in ("storage", "data transfer") else "compute"


_SERVICE_TYPES = {
    "compute": "WAREHOUSE_METERING",
    "storage": "STORAGE",
    "cloud services": "CLOUD_SERVICES",
    "data transfer": "DATA_TRANSFER",
    "serverless tasks": "SERVERLESS_TASK",
    "snowpipe": "PIPE",
    "automatic clustering": "AUTO_CLUSTERING",
    "materialized views": "MATERIALIZED_VIEW",
    "search optimization": "SEARCH_OPTIMIZATION",
    "replication": "REPLICATION",
}

# Realistic relative magnitudes: compute dominates, storage grows slowly and smoothly, the rest is small.
# Columns: cost relative to compute, weekend drop, noise, monthly growth, month-start probability, presence.
_P = _UsageTypeProfile
_USAGE_TYPES: tuple[_UsageTypeProfile, ...] = (
    _P("compute",              1.0,   (0.3, 0.65),  (0.05, 0.1),    (0.0, 0.05),   0.5, 1.0),
    _P("storage",              0.14,  (0.0, 0.0),   (0.002, 0.006), (0.01, 0.04),  0.0, 1.0),
    _P("cloud services",       0.04,  (0.3, 0.6),   (0.08, 0.14),   (0.0, 0.05),   0.3, 1.0),
    _P("data transfer",        0.025, (0.1, 0.3),   (0.15, 0.3),    (-0.01, 0.04), 0.0, 1.0),
    _P("serverless tasks",     0.05,  (0.0, 0.15),  (0.03, 0.07),   (0.0, 0.04),   0.4, 0.5),
    _P("snowpipe",             0.04,  (0.1, 0.4),   (0.04, 0.09),   (0.0, 0.05),   0.0, 0.4),
    _P("automatic clustering", 0.03,  (0.15, 0.35), (0.1, 0.18),    (0.0, 0.04),   0.0, 0.4),
    _P("materialized views",   0.015, (0.1, 0.3),   (0.05, 0.1),    (0.0, 0.03),   0.0, 0.3),
    _P("search optimization",  0.012, (0.0, 0.1),   (0.04, 0.08),   (0.0, 0.03),   0.0, 0.0,
       adopted_mid_span=True),
    _P("replication",          0.02,  (0.0, 0.1),   (0.05, 0.1),    (0.0, 0.03),   0.0, 0.0,
       primary_only=True),
)  # fmt: skip
del _P

# Where each kind of incident plausibly lands in an organisation, with relative weights.
_KIND_USAGE_TYPES: dict[str, dict[str, float]] = {
    "runaway_spike": {
        "compute": 6, "cloud services": 1, "serverless tasks": 1, "automatic clustering": 1,
        "data transfer": 1,
    },
    "burst": {
        "compute": 5, "snowpipe": 1.5, "serverless tasks": 1.5, "automatic clustering": 1,
        "data transfer": 1,
    },
    "outage": {"compute": 6, "snowpipe": 2, "serverless tasks": 2},
    "level_shift": {"compute": 5, "storage": 2.5, "serverless tasks": 1.5, "materialized views": 1},
    "weekend_job": {"compute": 1},
}  # fmt: skip

_ACCOUNT_NAMES = (
    "PROD",
    "ANALYTICS",
    "DEV",
    "STAGING",
    "DATA_SCIENCE",
    "SANDBOX",
    "FINANCE",
    "MARKETING",
    "ML_PLATFORM",
    "REPORTING",
)
_REGIONS = ("AWS_US_EAST_1", "AWS_US_WEST_2", "AWS_EU_CENTRAL_1", "AZURE_WESTEUROPE", "GCP_US_CENTRAL1")
_SERVICE_LEVELS = {"Standard": 2.0, "Enterprise": 3.0, "Business Critical": 4.0}  # currency per credit
_STORAGE_PRICE_PER_TB_DAY = 23.0 / _DAYS_PER_MONTH
_TRANSFER_PRICE_PER_TB = 90.0
_SPLIT_DAY_PROBABILITY = 0.015  # share of account-days billed from two balance sources
_SECOND_BALANCE_SOURCES = ("overage", "rollover")


@dataclass(frozen=True)
class SyntheticUsage:
    """Rows shaped like ``USAGE_IN_CURRENCY_DAILY`` and one label row per injected incident.

    ``rows`` may hold two rows for one account, day and usage type (``BALANCE_SOURCE`` 'capacity' plus
    'overage' or 'rollover'), as real data does: aggregate before use. ``labels``: incident_id, kind,
    account_name, usage_type (Snowflake spelling), series (snake_case organisation-level series), start, end
    (inclusive dates), effect_end, extra_cost (signed, on the labelled days), direction ('spike' | 'drop');
    see the module docstring.
    """

    rows: pd.DataFrame
    labels: pd.DataFrame

    def org_series(self) -> pd.DataFrame:
        """Daily organisation-level cost per snake_case series (summed over accounts and balance sources)."""
        frame = self.rows.assign(
            **{
                DATE: pd.to_datetime(self.rows["USAGE_DATE"]),
                "series": self.rows["USAGE_TYPE"].map(_snake_case),
            }
        )
        wide = frame.pivot_table(
            index=DATE, columns="series", values="USAGE_IN_CURRENCY", aggfunc="sum", fill_value=0.0
        )
        wide = wide.reindex(
            pd.date_range(wide.index.min(), wide.index.max(), freq="D", name=DATE), fill_value=0.0
        )
        wide.columns.name = None
        return wide.round(2)

    def label_mask(self) -> pd.DataFrame:
        """Boolean frame shaped like ``org_series()``: True on labelled days of the affected series."""
        return _label_mask(self.org_series(), self.labels)


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
    return re.sub(r"[\s\-]+", "_", usage_type.strip()).lower()


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


# ----------------------------------------------------------------------------------------------------
# Organisation usage
# ----------------------------------------------------------------------------------------------------


def generate_organization_usage(
    start: date | str,
    days: int,
    accounts: int = 3,
    seed: int = 0,
    anomalies: bool = True,
    organization_name: str = "SNOWSTORM_DEMO",
    *,
    anomaly_rate: float = 8.0,
    kinds: Sequence[str] = KINDS,
    clean_days: int = 0,
    level_shift_label_days: int = 3,
    currency: str = "USD",
) -> SyntheticUsage:
    """Rows of ``USAGE_IN_CURRENCY_DAILY`` for an organisation with ``accounts`` accounts, and their labels.

    The first account (``PROD``) carries 60-85% of the spend and every usage type; the others have a random
    subset. ``anomaly_rate`` is incidents per 365 days for the whole organisation; their count is
    deterministic (``round(rate * (days - clean_days) / 365)``) and each kind in ``kinds`` appears once before
    any repeats, so a default two-year draw holds every kind. No incident starts in the first ``clean_days``
    days. An outage hits the account with most of the series' usage; other kinds hit an account drawn in
    proportion to its usage. With ``anomalies=False`` the rows are exactly those of the same seed without
    incidents.
    """
    first_day = _to_date(start, "start")
    _check_common(days, seed, anomaly_rate, clean_days, level_shift_label_days)
    if isinstance(accounts, bool) or not isinstance(accounts, int | np.integer) or not 1 <= accounts <= 50:
        raise ValueError(f"accounts must be an integer between 1 and 50, got {accounts!r}")
    if not organization_name or not isinstance(organization_name, str):
        raise ValueError(f"organization_name must be a non-empty string, got {organization_name!r}")
    chosen_kinds = _check_kinds(kinds)
    structure_rng, clean_rng, balance_rng, incident_rng = _streams(seed)

    org = _draw_organization(structure_rng, accounts, days)
    clean = _simulate(clean_rng, org.params, first_day, days)
    clean[org.inactive] = 0

    incidents = _Incidents(*(np.zeros(0, dtype=np.int64) for _ in range(5)), magnitude=np.zeros(0))
    cents = clean
    extra = np.zeros(0, dtype=np.int64)
    if anomalies and anomaly_rate > 0 and chosen_kinds:
        incidents = _place_organization_incidents(
            incident_rng,
            org,
            clean,
            chosen_kinds,
            anomaly_rate,
            clean_days,
            first_day,
            level_shift_label_days,
        )
        if len(incidents):
            cents, extra = _inject(incident_rng, clean, org.unit_series, len(org.series_types), incidents)

    rows = _usage_rows(balance_rng, org, cents, first_day, organization_name, currency)
    labels = _organization_labels(org, incidents, extra, first_day, days)
    return SyntheticUsage(rows=rows, labels=labels)


@dataclass(frozen=True)
class _Organization:
    account_names: tuple[str, ...]
    account_locators: tuple[str, ...]
    account_regions: tuple[str, ...]
    account_levels: tuple[str, ...]
    contract_number: str
    series_types: tuple[_UsageTypeProfile, ...]  # one per organisation-level series
    unit_account: np.ndarray  # per unit (account x usage type present)
    unit_series: np.ndarray
    params: _SeriesParameters
    inactive: np.ndarray  # (units, days) True before a mid-span adoption: no rows there


def _draw_organization(rng: np.random.Generator, accounts: int, days: int) -> _Organization:
    names = tuple(
        _ACCOUNT_NAMES[index] if index < len(_ACCOUNT_NAMES) else f"ACCOUNT_{index + 1:02d}"
        for index in range(accounts)
    )
    letters = np.array(list("ABCDEFGHJKLMNPQRSTUVWXYZ"))
    locators = tuple(
        "".join(rng.choice(letters, 2)) + "".join(str(digit) for digit in rng.integers(0, 10, 5))
        for _ in names
    )
    regions = tuple(str(region) for region in rng.choice(_REGIONS, accounts))
    levels = tuple(str(level) for level in rng.choice(list(_SERVICE_LEVELS)[1:], accounts, p=[0.7, 0.3]))
    contract = str(rng.integers(10_000_000, 99_999_999))

    # Spend shares: PROD 60-85%, the rest split at random between the other accounts.
    other_share = rng.uniform(0.15, 0.4) if accounts > 1 else 0.0
    shares = np.concatenate([[1.0 - other_share], other_share * rng.dirichlet(np.full(accounts - 1, 2.0))])
    compute_per_day = rng.uniform(1_200.0, 6_000.0)

    unit_account, unit_type, level = [], [], []
    for type_index, profile in enumerate(_USAGE_TYPES):
        for account in range(accounts):
            present = account == 0 or (not profile.primary_only and rng.random() < profile.presence)
            jitter = 1.0 if profile.usage_type == "compute" else float(rng.lognormal(0.0, 0.25))
            if present:
                unit_account.append(account)
                unit_type.append(type_index)
                level.append(compute_per_day * profile.relative_cost * shares[account] * jitter)
    unit_account_array = np.array(unit_account)
    unit_type_array = np.array(unit_type)
    present_types = np.unique(unit_type_array)
    series_types = tuple(_USAGE_TYPES[index] for index in present_types)
    unit_series = np.searchsorted(present_types, unit_type_array)

    n = unit_account_array.shape[0]

    def profile_range(attribute: str) -> tuple[np.ndarray, np.ndarray]:
        bounds = np.array([getattr(_USAGE_TYPES[index], attribute) for index in unit_type_array])
        return bounds[:, 0], bounds[:, 1]

    month_start_probability = np.array(
        [_USAGE_TYPES[index].month_start_probability for index in unit_type_array]
    )
    weekend_low, weekend_high = profile_range("weekend_drop")
    noise_low, noise_high = profile_range("noise")
    growth_low, growth_high = profile_range("growth")
    monthly_growth, change_points = _draw_trend(rng, n, days, growth_low, growth_high)
    is_storage = unit_type_array == [profile.usage_type for profile in _USAGE_TYPES].index("storage")
    params = _SeriesParameters(
        level=np.array(level),
        weekend_drop=rng.uniform(weekend_low, weekend_high),
        noise=rng.uniform(noise_low, noise_high),
        noise_persistence=np.where(is_storage, 0.95, rng.uniform(0.0, 0.5, n)),
        month_start_bump=np.where(rng.random(n) < month_start_probability, rng.uniform(0.1, 0.35, n), 0.0),
        monthly_growth=monthly_growth,
        change_points=change_points,
    )
    adopted = np.array([_USAGE_TYPES[index].adopted_mid_span for index in unit_type_array])
    adoption_day = np.where(adopted, rng.integers(0, max(days // 2, 1), n), 0)
    inactive = np.arange(days)[None, :] < adoption_day[:, None]
    return _Organization(
        names,
        locators,
        regions,
        levels,
        contract,
        series_types,
        unit_account_array,
        unit_series,
        params,
        inactive,
    )


def _place_organization_incidents(
    rng: np.random.Generator,
    org: _Organization,
    clean: np.ndarray,
    kinds: tuple[str, ...],
    anomaly_rate: float,
    clean_days: int,
    first_day: date,
    level_shift_label_days: int,
) -> _Incidents:
    """Each kind once (shuffled), then kinds at random; each in a free slot of a plausible series."""
    days = clean.shape[1]
    n_slots = _slot_count(days, clean_days)
    count = round(anomaly_rate * (days - clean_days) / 365.0)
    first_round = [str(kind) for kind in rng.permutation(kinds)][:count]
    drawn = first_round + [str(kind) for kind in rng.choice(kinds, max(count - len(first_round), 0))]

    series_index = {profile.usage_type: index for index, profile in enumerate(org.series_types)}
    free_slots = {index: list(range(n_slots)) for index in series_index.values()}
    unit_total = clean.sum(axis=1)
    chosen_kind, chosen_series, chosen_slot, chosen_unit = [], [], [], []
    for kind in drawn:
        candidates = [
            (series_index[usage_type], weight)
            for usage_type, weight in _KIND_USAGE_TYPES[kind].items()
            if usage_type in series_index and free_slots[series_index[usage_type]]
        ]
        if not candidates:
            continue
        weights = np.array([weight for _, weight in candidates])
        series = candidates[rng.choice(len(candidates), p=weights / weights.sum())][0]
        slot = free_slots[series].pop(int(rng.integers(len(free_slots[series]))))
        units = np.flatnonzero(org.unit_series == series)
        if kind == "outage":
            unit = units[np.argmax(unit_total[units])]
        else:
            unit = rng.choice(units, p=unit_total[units] / unit_total[units].sum())
        chosen_kind.append(_KIND_CODE[kind])
        chosen_series.append(series)
        chosen_slot.append(slot)
        chosen_unit.append(unit)

    kind_array = np.array(chosen_kind, dtype=np.int64)
    start, length, magnitude = _windows(
        rng,
        kind_array,
        np.array(chosen_slot, dtype=np.int64),
        clean_days,
        first_day.weekday(),
        level_shift_label_days,
    )
    return _Incidents(
        series=np.array(chosen_series, dtype=np.int64),
        unit=np.array(chosen_unit, dtype=np.int64),
        kind=kind_array,
        start=start,
        length=length,
        magnitude=magnitude,
    )


def _usage_rows(
    rng: np.random.Generator,
    org: _Organization,
    cents: np.ndarray,
    first_day: date,
    organization_name: str,
    currency: str,
) -> pd.DataFrame:
    """One row per active unit and day; on some account-days a second balance source pays part of it."""
    days = cents.shape[1]
    n_accounts = len(org.account_names)
    split_day = rng.random((n_accounts, days)) < _SPLIT_DAY_PROBABILITY
    split_source = rng.integers(0, len(_SECOND_BALANCE_SOURCES), size=(n_accounts, days))
    split_fraction = rng.uniform(0.15, 0.85, size=(n_accounts, days))

    unit, day = np.nonzero(~org.inactive)
    account = org.unit_account[unit]
    total = cents[unit, day]
    is_split = split_day[account, day]
    primary = np.where(is_split, np.rint(total * split_fraction[account, day]).astype(np.int64), total)

    second = np.flatnonzero(is_split)
    row_unit = np.concatenate([unit, unit[second]])
    row_day = np.concatenate([day, day[second]])
    row_cents = np.concatenate([primary, total[second] - primary[second]])
    source_names = np.array(("capacity", *_SECOND_BALANCE_SOURCES), dtype=object)
    row_source = np.concatenate(
        [np.zeros(unit.shape[0], dtype=np.int64), 1 + split_source[account[second], day[second]]]
    )
    order = np.lexsort((row_source, org.unit_series[row_unit], org.unit_account[row_unit], row_day))
    row_unit, row_day, row_cents, row_source = (
        row_unit[order],
        row_day[order],
        row_cents[order],
        row_source[order],
    )

    row_account = org.unit_account[row_unit]
    profiles = org.series_types
    row_profile = org.unit_series[row_unit]
    account_price = np.array([_SERVICE_LEVELS[level] for level in org.account_levels])
    unit_price = np.select(
        [
            np.array([p.rating_type == "storage" for p in profiles])[row_profile],
            np.array([p.rating_type == "data transfer" for p in profiles])[row_profile],
        ],
        [_STORAGE_PRICE_PER_TB_DAY, _TRANSFER_PRICE_PER_TB],
        account_price[row_account],
    )
    cost = row_cents / 100.0
    dates = np.array([first_day + timedelta(days=offset) for offset in range(days)], dtype=object)

    def per_account(values: Sequence[str]) -> np.ndarray:
        return np.array(values, dtype=object)[row_account]

    def per_type(attribute: str) -> np.ndarray:
        return np.array([getattr(p, attribute) for p in profiles], dtype=object)[row_profile]

    n_rows = row_unit.shape[0]
    frame = pd.DataFrame(
        {
            "ORGANIZATION_NAME": np.full(n_rows, organization_name, dtype=object),
            "CONTRACT_NUMBER": np.full(n_rows, org.contract_number, dtype=object),
            "ACCOUNT_NAME": per_account(org.account_names),
            "ACCOUNT_LOCATOR": per_account(org.account_locators),
            "REGION": per_account(org.account_regions),
            "SERVICE_LEVEL": per_account(org.account_levels),
            "USAGE_DATE": dates[row_day],
            "USAGE_TYPE": per_type("usage_type"),
            "USAGE": np.round(cost / unit_price, 3),
            "CURRENCY": np.full(n_rows, currency, dtype=object),
            "USAGE_IN_CURRENCY": cost.round(2),
            "BALANCE_SOURCE": source_names[row_source],
            "BILLING_TYPE": np.full(n_rows, "consumption", dtype=object),
            "RATING_TYPE": per_type("rating_type"),
            "SERVICE_TYPE": per_type("service_type"),
            "IS_ADJUSTMENT": np.zeros(n_rows, dtype=bool),
        },
        columns=list(USAGE_ROW_COLUMNS),
    )
    return frame


def _organization_labels(
    org: _Organization, incidents: _Incidents, extra: np.ndarray, first_day: date, days: int
) -> pd.DataFrame:
    order = np.argsort(incidents.start, kind="stable")
    kind = incidents.kind[order]
    start = incidents.start[order]
    end = start + incidents.length[order] - 1
    effect_end = np.where(kind == _LEVEL, days - 1, end)

    def as_dates(offsets: np.ndarray) -> list[date]:
        return [first_day + timedelta(days=int(offset)) for offset in offsets]

    series = incidents.series[order]
    return pd.DataFrame(
        {
            "incident_id": np.arange(len(incidents), dtype=np.int64),
            "kind": pd.Series([KINDS[code] for code in kind], dtype=str),
            "account_name": pd.Series(
                [org.account_names[org.unit_account[unit]] for unit in incidents.unit[order]], dtype=str
            ),
            "usage_type": pd.Series([org.series_types[index].usage_type for index in series], dtype=str),
            "series": pd.Series(
                [_snake_case(org.series_types[index].usage_type) for index in series], dtype=str
            ),
            "start": pd.Series(as_dates(start), dtype=object),
            "end": pd.Series(as_dates(end), dtype=object),
            "effect_end": pd.Series(as_dates(effect_end), dtype=object),
            "extra_cost": (extra[order] / 100.0).round(2),
            "direction": pd.Series(np.where(kind == _OUTAGE, "drop", "spike").tolist(), dtype=str),
        },
        columns=list(_ORG_LABEL_COLUMNS),
    )


# ----------------------------------------------------------------------------------------------------
# Benchmark series
# ----------------------------------------------------------------------------------------------------


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
