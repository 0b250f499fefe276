"""Independent families of labelled cost series for the quality benchmark (issue #9).

Each family has its own generator of normal behaviour, written here and not derived from the package's
``datasets/`` (that generator is one family among the others, ``package_generator``), so a detector tuned on
some families can be judged on another it was never tuned on (leave-one-family-out in ``benchmarks.quality``).

Every family is a function ``(seed, n_series) -> LabelledSet``: deterministic per seed, values non-negative and
rounded to cents on a fixed-frequency ``DatetimeIndex``, and one label row per injected incident (``series``,
``start``, ``end`` inclusive, ``kind``). Incident kinds:

- ``spike``: one row (daily), 1-3 hours (hourly), 1-4 half-hours or 1-6 intervals (5-minute) above normal.
- ``burst``: several consecutive days (hourly: hours; half-hourly: 6-48 rows; 5-minute: 12-72 intervals) above
  normal.
- ``level_shift``: a permanent step from ``start`` on; only its first ``SHIFT_LABEL_DAYS`` days are labelled, so a
  detector should alarm once at the start and then adapt.
- ``drop``: an outage or partial drop over one or more days (hours).
- ``runaway`` (hourly): a warehouse left running over a night or a weekend, when it normally auto-suspends.
- ``resized`` (``job_fleet``): a warehouse resized up one or two sizes for hours to days.

Magnitudes are drawn in noise scales of the series at that row, log-uniform from ``SUBTLE`` (about 3) to ``HUGE``,
plus a share of gross incidents of 2-20 times the level. Incidents also occur in the first ``TRAIN_SHARE`` of each
series (the training span), as in real data; they are labelled, and the benchmark scores only the rest.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from airflow_provider_snowstorm.core.detector import rows_per_day

__all__ = [
    "DAILY_DAYS",
    "FAMILIES",
    "FLEET_DAYS",
    "HOURLY_DAYS",
    "MINUTE_DAYS",
    "SERVICE_DAYS",
    "TRAIN_SHARE",
    "LabelledSet",
    "batch_jobs",
    "fleet_warehouses",
    "heavy_tail",
    "hourly_warehouse",
    "intermittent",
    "job_fleet",
    "lognormal_weekly",
    "minute_metrics",
    "package_generator",
    "service_metrics",
    "smooth_storage",
]

DAILY_DAYS = 540
HOURLY_DAYS = 90
FLEET_DAYS = 120
MINUTE_DAYS = 21
SERVICE_DAYS = 56
TRAIN_SHARE = 0.4
SHIFT_LABEL_DAYS = 3
SUBTLE, HUGE = 3.0, 40.0
GROSS_SHARE = 0.2  # share of incidents sized 2-20x the level rather than in noise scales
DAILY_START = "2024-01-01"
HOURLY_START = "2024-03-04"  # a Monday
MINUTE_START = "2024-05-06"  # a Monday
SERVICE_START = "2024-07-01"  # a Monday
LABEL_COLUMNS = ("series", "start", "end", "kind")


@dataclass(frozen=True)
class LabelledSet:
    """Series (rows x series, fixed frequency) and their incidents (series, start, end inclusive, kind)."""

    values: pd.DataFrame
    labels: pd.DataFrame
    period: int
    freq: str
    training_rows: int | None = None  # None: the first ``TRAIN_SHARE`` of the series

    @property
    def train_rows(self) -> int:
        """Rows of the training span: ``training_rows``, by default the first ``TRAIN_SHARE`` of the series."""
        return round(TRAIN_SHARE * len(self.values)) if self.training_rows is None else self.training_rows

    def with_training_rows(self, rows: int) -> LabelledSet:
        """The same data and labels with a training span of ``rows`` rows (the rest is scored)."""
        if not 0 < rows < len(self.values):
            raise ValueError(
                f"a training span of {rows} rows must leave rows to score (the series have {len(self.values)})"
            )
        return replace(self, training_rows=int(rows))

    @property
    def rows_per_day(self) -> float:
        return rows_per_day(self.values.index[1] - self.values.index[0])

    def label_mask(self) -> np.ndarray:
        """Boolean (rows x series): True on labelled rows."""
        index = self.values.index
        mask = np.zeros(self.values.shape, dtype=bool)
        columns = self.values.columns.get_indexer(self.labels["series"])
        for column, start, end in zip(columns, self.labels["start"], self.labels["end"], strict=True):
            mask[index.searchsorted(start, side="left") : index.searchsorted(end, side="right"), column] = (
                True
            )
        return mask


# -- incident injection (shared mechanics; each family sets its own kinds, lengths and noise scales) -------------


@dataclass(frozen=True)
class _Plan:
    kinds: dict[str, float]
    spike_rows: tuple[int, int] = (1, 1)
    burst_rows: tuple[int, int] = (2, 7)
    drop_rows: tuple[int, int] = (1, 5)
    runaway_rows: tuple[int, int] = (10, 60)
    shift_label_rows: int = SHIFT_LABEL_DAYS
    slot_rows: int = (
        22  # at most one incident per slot, so incidents never overlap; 22 - 7 - 1 = two weeks of starts
    )
    scored_rate: float = 2.5  # mean incidents per series in the scored span
    train_rate: float = 1.0  # ... and in the training span
    warm_rows: int = 28  # no incident in the very first rows
    additive_shift: bool = False  # level shifts add a new usage stream instead of scaling the series
    active_only: bool = False  # incidents other than runaways start on rows with positive expected value
    drop_outage_share: float = 0.4
    floor: np.ndarray | None = field(default=None)  # spikes lift the value to at least this before adding
    scales: tuple[float, float] = (SUBTLE, HUGE)  # noise scales of a magnitude, drawn log-uniform
    gross_share: float = GROSS_SHARE


def _magnitude(rng: np.random.Generator, sigma: np.ndarray, base: np.ndarray, plan: _Plan) -> np.ndarray:
    """Deviation per row: k noise scales (k log-uniform over ``plan.scales``), or a gross 2-20x of the level."""
    if rng.random() < plan.gross_share:
        return rng.uniform(2.0, 20.0) * np.maximum(base, sigma)
    low, high = plan.scales
    return np.exp(rng.uniform(np.log(low), np.log(high))) * sigma


def _slot_starts(
    rng: np.random.Generator, first: int, last: int, plan: _Plan, count: int
) -> list[tuple[int, int]]:
    """Up to ``count`` sorted (start row, slot end) in [first, last), one per slot of ``plan.slot_rows``.

    An incident starting at ``start`` must end before its slot's end, so incidents never overlap.
    """
    slots = (last - first) // plan.slot_rows
    if slots <= 0 or count <= 0:
        return []
    chosen = np.sort(rng.choice(slots, size=min(count, slots), replace=False))
    room = max(plan.slot_rows - _longest(plan) - 1, 1)
    return [
        (int(first + slot * plan.slot_rows + rng.integers(0, room)), int(first + (slot + 1) * plan.slot_rows))
        for slot in chosen
    ]


def _longest(plan: _Plan) -> int:
    """Rows of the longest labelled incident the plan can draw (bursts stand in for runaways without evenings)."""
    longest = {
        "spike": plan.spike_rows[1],
        "burst": plan.burst_rows[1],
        "drop": plan.drop_rows[1],
        "runaway": max(plan.runaway_rows[1], plan.burst_rows[1]),
        "level_shift": plan.shift_label_rows,
    }
    return max(longest[kind] for kind in plan.kinds)


def _inject(
    rng: np.random.Generator,
    name: str,
    values: np.ndarray,
    base: np.ndarray,
    sigma: np.ndarray,
    index: pd.DatetimeIndex,
    plan: _Plan,
) -> list[dict[str, object]]:
    """Add incidents to one series in place (values, and base/sigma after level shifts); return their labels."""
    rows = len(values)
    train = round(TRAIN_SHARE * rows)
    starts = _slot_starts(rng, plan.warm_rows, train - 1, plan, int(rng.poisson(plan.train_rate)))
    starts += _slot_starts(rng, train + 1, rows - 1, plan, int(rng.poisson(plan.scored_rate)))
    kinds = list(plan.kinds)
    weights = np.array([plan.kinds[kind] for kind in kinds], dtype=float)
    labels = []
    for start, slot_end in starts:
        kind = kinds[rng.choice(len(kinds), p=weights / weights.sum())]
        if kind == "runaway":
            # The first suspended row after an active one within the slot: the warehouse is left running from there.
            window = np.arange(start, slot_end - plan.runaway_rows[1])
            evening = window[(base[window] <= 0) & (base[window - 1] > 0)]
            if evening.size == 0:
                kind = "burst"
            else:
                start = int(evening[0])
        if plan.active_only and kind in ("spike", "burst", "drop", "level_shift"):
            window = np.arange(start, slot_end - _longest(plan))
            active = window[base[window] > 0]
            if active.size == 0:
                continue
            start = int(active[0])
        if kind == "spike":
            length = int(rng.integers(plan.spike_rows[0], plan.spike_rows[1] + 1))
        elif kind == "burst":
            length = int(rng.integers(plan.burst_rows[0], plan.burst_rows[1] + 1))
        elif kind == "drop":
            length = int(rng.integers(plan.drop_rows[0], plan.drop_rows[1] + 1))
        elif kind == "runaway":
            length = int(rng.integers(plan.runaway_rows[0], plan.runaway_rows[1] + 1))
        else:
            length = plan.shift_label_rows
        span = slice(start, start + length)
        if kind in ("spike", "burst"):
            deviation = _magnitude(rng, sigma[span], base[span], plan) * rng.lognormal(0.0, 0.1, length)
            lifted = values[span] if plan.floor is None else np.maximum(values[span], plan.floor[span])
            values[span] = lifted + deviation
        elif kind == "drop":
            if rng.random() < plan.drop_outage_share:
                keep = 0.0
            else:
                relative = _magnitude(rng, sigma[start], base[start], plan) / max(base[start], 1e-9)
                keep = float(np.clip(1.0 - relative, 0.0, 0.9))
            values[span] *= keep
        elif kind == "runaway":
            busy = base[max(0, start - 48) : start]
            level = (busy[busy > 0].mean() if (busy > 0).any() else base.max()) * rng.uniform(0.4, 1.1)
            values[span] += level * rng.lognormal(0.0, 0.1, length)
        else:  # level_shift from ``start`` to the end of the series
            after = slice(start, rows)
            # In noise scales of the level, or of the noise where the level is 0 (a weekday-only series' Saturday):
            # dividing by a zero level made steps of 1e10 and more.
            relative = _magnitude(rng, sigma[start], base[start], plan) / max(base[start], sigma[start], 1e-9)
            if plan.additive_shift:
                step = relative * max(base[start], sigma[start])
                values[after] += step * rng.lognormal(-0.02, 0.2, rows - start)
                base[after] += step
            else:
                factor = 1.0 + relative if rng.random() < 0.7 else 1.0 / (1.0 + relative)
                values[after] *= factor
                base[after] *= factor
                sigma[after] *= factor
        labels.append({"series": name, "start": index[start], "end": index[start + length - 1], "kind": kind})
    return labels


def _rng(seed: int, family: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(family.encode())])


def _assemble(
    columns: dict[str, np.ndarray],
    labels: list[dict[str, object]],
    index: pd.DatetimeIndex,
    period: int,
    freq: str,
) -> LabelledSet:
    values = pd.DataFrame(columns, index=index).clip(lower=0.0).round(2)
    frame = pd.DataFrame(labels, columns=list(LABEL_COLUMNS))
    frame["series"] = frame["series"].astype(str)
    frame["kind"] = frame["kind"].astype(str)
    frame["start"] = pd.to_datetime(frame["start"])
    frame["end"] = pd.to_datetime(frame["end"])
    return LabelledSet(values=values, labels=frame.reset_index(drop=True), period=period, freq=freq)


def _check(n_series: int) -> None:
    if isinstance(n_series, bool) or not isinstance(n_series, int | np.integer) or n_series < 1:
        raise ValueError(f"n_series must be a positive integer, got {n_series!r}")


def _daily_index() -> pd.DatetimeIndex:
    return pd.date_range(DAILY_START, periods=DAILY_DAYS, freq="D", name="usage_date")


def _growth(rng: np.random.Generator, rows: int, low: float, high: float, breaks: int, rows_per_month: float):
    """Log of a piecewise exponential trend: a new monthly growth rate after each of ``breaks`` change points."""
    points = np.sort(rng.integers(rows // 8, rows - rows // 8, breaks))
    rates = rng.uniform(low, high, breaks + 1)
    segment = np.searchsorted(points, np.arange(rows), side="right")
    return np.cumsum(np.log1p(rates[segment]) / rows_per_month)


# -- families ----------------------------------------------------------------------------------------------------


def lognormal_weekly(seed: int, n_series: int) -> LabelledSet:
    """Snowflake-like compute: weekday/weekend pattern, growth with a change of rate, log-normal noise (3-25%)."""
    _check(n_series)
    rng = _rng(seed, "lognormal_weekly")
    index = _daily_index()
    rows = len(index)
    plan = _Plan(kinds={"spike": 0.3, "burst": 0.25, "level_shift": 0.25, "drop": 0.2})
    columns, labels = {}, []
    for number in range(n_series):
        name = f"lnw{number:03d}"
        level = np.exp(rng.uniform(np.log(20.0), np.log(100_000.0)))
        weekly = rng.uniform(0.9, 1.1, 7)
        weekly[5:] *= rng.uniform(0.15, 0.95)
        noise = np.exp(rng.uniform(np.log(0.03), np.log(0.25)))
        base = level * weekly[index.day_of_week] * np.exp(_growth(rng, rows, -0.02, 0.08, 1, 30.44))
        values = base * rng.lognormal(-(noise**2) / 2, noise, rows)
        sigma = base * np.sqrt(np.expm1(noise**2))
        labels += _inject(rng, name, values, base, sigma, index, plan)
        columns[name] = values
    return _assemble(columns, labels, index, 7, "D")


def heavy_tail(seed: int, n_series: int) -> LabelledSet:
    """Low-volume usage (data transfer, cloud services): gamma or Student-t noise with a CV of 0.3-0.7."""
    _check(n_series)
    rng = _rng(seed, "heavy_tail")
    index = _daily_index()
    rows = len(index)
    plan = _Plan(kinds={"spike": 0.35, "burst": 0.3, "level_shift": 0.2, "drop": 0.15}, drop_rows=(3, 7))
    columns, labels = {}, []
    for number in range(n_series):
        name = f"ht{number:03d}"
        level = np.exp(rng.uniform(np.log(1.0), np.log(300.0)))
        cv = rng.uniform(0.3, 0.7)
        weekly = np.ones(7)
        if rng.random() < 0.5:
            weekly[5:] = rng.uniform(0.4, 0.9)
        base = level * weekly[index.day_of_week] * np.exp(_growth(rng, rows, -0.01, 0.04, 1, 30.44))
        if rng.random() < 0.5:
            shape = 1.0 / cv**2
            values = base * rng.gamma(shape, 1.0 / shape, rows)
        else:
            df = rng.uniform(2.5, 5.0)
            values = base * np.maximum(1.0 + cv * rng.standard_t(df, rows) * np.sqrt((df - 2) / df), 0.0)
        sigma = cv * base
        labels += _inject(rng, name, values, base, sigma, index, plan)
        columns[name] = values
    return _assemble(columns, labels, index, 7, "D")


def intermittent(seed: int, n_series: int) -> LabelledSet:
    """Sporadic usage: most days zero, active days log-normal; incidents are unusual amounts or new daily usage."""
    _check(n_series)
    rng = _rng(seed, "intermittent")
    index = _daily_index()
    rows = len(index)
    columns, labels = {}, []
    weekday = index.day_of_week.to_numpy() < 5
    for number in range(n_series):
        name = f"int{number:03d}"
        level = np.exp(rng.uniform(np.log(5.0), np.log(5_000.0)))
        chance = rng.uniform(0.08, 0.45)
        active_chance = np.full(rows, chance)
        if rng.random() < 0.5:  # only on weekdays
            active_chance = np.where(weekday, min(chance * 7 / 5, 0.9), 0.0)
        spread = rng.uniform(0.3, 0.9)
        active = rng.random(rows) < active_chance
        values = active * level * rng.lognormal(-(spread**2) / 2, spread, rows)
        base = active_chance * level
        sigma = np.full(rows, level * max(np.sqrt(np.expm1(spread**2)), 0.3))
        plan = _Plan(
            kinds={"spike": 0.4, "burst": 0.3, "level_shift": 0.3},
            burst_rows=(3, 7),
            additive_shift=True,
            floor=np.full(rows, level),
        )
        labels += _inject(rng, name, values, base, sigma, index, plan)
        columns[name] = values
    return _assemble(columns, labels, index, 7, "D")


FLAT_SERIES = ("flat_zero", "flat_charge", "flat_weekly")


def smooth_storage(seed: int, n_series: int) -> LabelledSet:
    """Storage-like: near-constant, slow growth with trend breaks (0.1-1% noise); bulk loads, purges, surges.

    With ``n_series >= 4`` the last three series are exactly flat and have no incidents: all zeros, a flat daily
    charge and an exact weekly pattern. Magnitudes use a noise scale of at least 2% of the level.
    """
    _check(n_series)
    rng = _rng(seed, "smooth_storage")
    index = _daily_index()
    rows = len(index)
    flat = 3 if n_series >= 4 else 0
    plan = _Plan(kinds={"spike": 0.25, "burst": 0.2, "level_shift": 0.4, "drop": 0.15}, drop_outage_share=0.1)
    columns, labels = {}, []
    for number in range(n_series - flat):
        name = f"sto{number:03d}"
        level = np.exp(rng.uniform(np.log(10.0), np.log(20_000.0)))
        noise = np.exp(rng.uniform(np.log(0.001), np.log(0.01)))
        base = level * np.exp(_growth(rng, rows, -0.01, 0.05, int(rng.integers(1, 3)), 30.44))
        values = base * (1.0 + noise * rng.standard_normal(rows))
        sigma = base * max(noise, 0.02)
        labels += _inject(rng, name, values, base, sigma, index, plan)
        columns[name] = values
    if flat:
        columns["flat_zero"] = np.zeros(rows)
        columns["flat_charge"] = np.full(rows, round(float(rng.uniform(5.0, 500.0)), 2))
        weekly = np.round(np.r_[np.full(5, rng.uniform(20.0, 200.0)), np.full(2, rng.uniform(1.0, 15.0))], 2)
        columns["flat_weekly"] = weekly[index.day_of_week]
    return _assemble(columns, labels, index, 7, "D")


def batch_jobs(seed: int, n_series: int) -> LabelledSet:
    """A steady load plus recurring normal jobs: weekday batches, month-end (and quarter-end) runs, month starts."""
    _check(n_series)
    rng = _rng(seed, "batch_jobs")
    index = _daily_index()
    rows = len(index)
    dow = index.day_of_week.to_numpy()
    month_end = (index + pd.offsets.BMonthEnd(0)).normalize() == index
    quarter_end = month_end & np.isin(index.month, (3, 6, 9, 12))
    month_start = index.day == 1
    schedules = ((0, 1, 2, 3, 4), (0, 2, 4), (1, 3), (0,), (0, 1, 2, 3, 4, 5))
    plan = _Plan(kinds={"spike": 0.3, "burst": 0.25, "level_shift": 0.2, "drop": 0.25}, drop_rows=(1, 3))
    columns, labels = {}, []
    for number in range(n_series):
        name = f"bat{number:03d}"
        level = np.exp(rng.uniform(np.log(50.0), np.log(20_000.0)))
        trend = np.exp(_growth(rng, rows, -0.01, 0.05, 1, 30.44))
        parts = [(level * rng.uniform(0.2, 1.0) * np.ones(rows), rng.uniform(0.05, 0.15))]
        days = schedules[rng.integers(len(schedules))]
        parts.append((level * rng.uniform(0.3, 2.0) * np.isin(dow, days), 0.1))
        if rng.random() < 0.8:
            parts.append((level * rng.uniform(1.0, 5.0) * month_end, 0.1))
        if rng.random() < 0.4:
            parts.append((level * rng.uniform(0.5, 3.0) * month_start, 0.1))
        if rng.random() < 0.3:
            parts.append((level * rng.uniform(2.0, 6.0) * quarter_end, 0.1))
        values = np.zeros(rows)
        base = np.zeros(rows)
        variance = np.zeros(rows)
        for expected, noise in parts:
            values += expected * trend * rng.lognormal(-(noise**2) / 2, noise, rows)
            base += expected * trend
            variance += (expected * trend) ** 2 * np.expm1(noise**2)
        sigma = np.sqrt(variance)
        labels += _inject(rng, name, values, base, sigma, index, plan)
        columns[name] = values
    return _assemble(columns, labels, index, 7, "D")


def hourly_warehouse(seed: int, n_series: int) -> LabelledSet:
    """Hourly warehouse spend over 90 days (period 24): office-hours, nightly-ETL and always-on warehouses.

    Suspended hours are exactly zero (auto-suspend), and active hours are suspended at random now and then.
    Incidents: spikes of 1-3 hours, bursts of 4-36 hours, level shifts (first 24 hours labelled), outages of
    3-30 active hours, and runaways (left running over a night or a weekend, 10-60 hours).
    """
    _check(n_series)
    rng = _rng(seed, "hourly_warehouse")
    index = pd.date_range(HOURLY_START, periods=HOURLY_DAYS * 24, freq="h", name="usage_hour")
    rows = len(index)
    hour = index.hour.to_numpy()
    weekend = index.day_of_week.to_numpy() >= 5
    columns, labels = {}, []
    for number in range(n_series):
        name = f"wh{number:03d}"
        level = np.exp(rng.uniform(np.log(0.5), np.log(500.0)))  # per active hour
        style = rng.choice(["office", "office", "etl", "always_on"])
        if style == "office":
            opens, closes = int(rng.integers(7, 10)), int(rng.integers(17, 20))
            shape = ((hour >= opens) & (hour < closes)) * (1.0 - 0.3 * (hour == 12))
            shape = np.where(weekend, shape * (rng.random() < 0.3) * 0.2, shape)
        elif style == "etl":
            first = int(rng.integers(0, 4))
            shape = ((hour >= first) & (hour < first + int(rng.integers(1, 4)))).astype(float)
            shape = shape + 0.3 * ((hour >= 9) & (hour < 17) & ~weekend)
        else:
            shape = np.where((hour >= 8) & (hour < 19) & ~weekend, 1.0, rng.uniform(0.2, 0.4))
        suspend = rng.uniform(0.0, 0.12) if style != "always_on" else 0.0
        noise = rng.uniform(0.1, 0.35)
        trend = np.exp(_growth(rng, rows, -0.03, 0.08, 1, 30.44 * 24))
        running = (shape > 0) & (rng.random(rows) >= suspend)
        values = level * shape * trend * running * rng.lognormal(-(noise**2) / 2, noise, rows)
        base = level * shape * trend * (1.0 - suspend)
        sigma = level * shape * trend * np.sqrt(np.expm1(noise**2) + suspend)
        plan = _Plan(
            kinds={"spike": 0.25, "burst": 0.2, "level_shift": 0.15, "drop": 0.15, "runaway": 0.25},
            spike_rows=(1, 3),
            burst_rows=(4, 36),
            drop_rows=(3, 30),
            runaway_rows=(10, 60),
            shift_label_rows=24,
            slot_rows=5 * 24,
            warm_rows=7 * 24,
            active_only=True,
            drop_outage_share=0.6,
        )
        labels += _inject(rng, name, values, base, sigma, index, plan)
        columns[name] = values
    return _assemble(columns, labels, index, 24, "h")


def fleet_warehouses(seed: int, n_series: int, *, first_incident_row: int = 7 * 24) -> LabelledSet:
    """Hourly credits of warehouses woken by scheduled jobs over 120 days (period 24; written for
    ``benchmarks.hourly_delay``, where no default was chosen on it).

    Each warehouse runs 2-8 jobs (hourly, every 4 hours or nightly, some weekdays only) of log-normal length; an
    hour's credits are the size (1-32) times the share of the hour a job (plus a 5-minute auto-suspend delay) kept
    it up, so busy warehouses sit at their size and dip when jobs end early. Incidents, in fortnightly slots from
    ``first_incident_row`` on: ``runaway`` (a job that never finishes: 12-60 hours at the full size) and ``resized``
    (up one or two sizes for 6-72 hours). Credits are rounded to 4 decimals, not to cents.
    """
    _check(n_series)
    rng = np.random.default_rng([seed, 7071])
    index = pd.date_range(HOURLY_START, periods=FLEET_DAYS * 24, freq="h", name="usage_hour")
    hour, weekend = index.hour.to_numpy(), index.day_of_week.to_numpy() >= 5
    columns, labels = {}, []
    for number in range(n_series):
        name = f"FLEET_{number:03d}"
        size = float(2 ** rng.integers(0, 6))
        minutes = np.zeros(len(index))
        for _ in range(int(rng.integers(2, 9))):
            every = int(rng.choice([1, 4, 24]))
            at = hour % every == int(rng.integers(0, every))
            if rng.random() < 0.5:
                at &= ~weekend
            length = rng.lognormal(np.log(rng.uniform(3, 40)), 0.35, len(index)) * (
                rng.random(len(index)) > 0.03
            )
            minutes += at * (length + 5.0)
        values = size * np.clip(minutes / 60.0, 0.0, 1.0)
        for slot in range(first_incident_row, len(index) - 96, 14 * 24):
            if rng.random() > 0.6:
                continue
            start = int(slot + rng.integers(0, 10 * 24))
            if rng.random() < 0.6:
                length, kind = int(rng.integers(12, 61)), "runaway"
                values[start : start + length] = size
            else:
                length, kind = int(rng.integers(6, 73)), "resized"
                values[start : start + length] *= float(rng.choice([2.0, 4.0]))
            labels.append(
                {"series": name, "start": index[start], "end": index[start + length - 1], "kind": kind}
            )
        columns[name] = np.round(values, 4)
    frame = pd.DataFrame(labels, columns=list(LABEL_COLUMNS))
    return LabelledSet(values=pd.DataFrame(columns, index=index), labels=frame, period=24, freq="h")


def job_fleet(seed: int, n_series: int) -> LabelledSet:
    """``fleet_warehouses`` with incidents throughout, the training span included, as in every family here."""
    return fleet_warehouses(seed, n_series)


def minute_metrics(seed: int, n_series: int) -> LabelledSet:
    """NAB-like operational metrics every 5 minutes over 21 days (period 288 = one day).

    Four styles: a smooth daily cycle (sinusoid, amplitude 20-60% of the level) with Gaussian noise of 3-10%;
    request counts (Poisson with a daily-cycle rate of 5-2,000 per interval); a slowly wandering, mean-reverting
    level (AR(1), no daily cycle) with noise; and a bursty metric near a floor with brief natural bursts of 1-3
    intervals (about 1% of rows, normal and unlabelled). Incidents (3-30 noise scales): spikes of 1-6 intervals,
    bursts of 12-72, level shifts (first 36 intervals labelled), drops of 6-60 intervals to zero or a fraction.
    """
    _check(n_series)
    rng = _rng(seed, "minute_metrics")
    rows = MINUTE_DAYS * 288
    index = pd.date_range(MINUTE_START, periods=rows, freq="5min", name="metric_time")
    angle = 2.0 * np.pi * np.arange(rows) / 288
    plan = _Plan(
        kinds={"spike": 0.3, "burst": 0.25, "level_shift": 0.2, "drop": 0.25},
        spike_rows=(1, 6),
        burst_rows=(12, 72),
        drop_rows=(6, 60),
        shift_label_rows=36,
        slot_rows=288,
        warm_rows=288,
        scored_rate=3.0,
        train_rate=1.5,
        drop_outage_share=0.5,
        scales=(3.0, 30.0),
        gross_share=0.0,
    )
    columns, labels = {}, []
    for number in range(n_series):
        name = f"mm{number:03d}"
        style = rng.choice(["cycle", "counts", "wander", "bursty"])
        if style == "cycle":
            level = np.exp(rng.uniform(np.log(1.0), np.log(10_000.0)))
            base = level * (1.0 + rng.uniform(0.2, 0.6) * np.sin(angle + rng.uniform(0.0, 2.0 * np.pi)))
            sigma = np.full(rows, level * rng.uniform(0.03, 0.10))
            values = base + sigma * rng.standard_normal(rows)
        elif style == "counts":
            rate = np.exp(rng.uniform(np.log(5.0), np.log(2_000.0)))
            base = rate * (1.0 + rng.uniform(0.2, 0.8) * np.sin(angle + rng.uniform(0.0, 2.0 * np.pi)))
            values = rng.poisson(base).astype(float)
            sigma = np.maximum(np.sqrt(base), 1.0)
        elif style == "wander":
            level = np.exp(rng.uniform(np.log(1.0), np.log(10_000.0)))
            phi = rng.uniform(0.98, 0.998)
            spread = rng.uniform(0.05, 0.25)  # stationary standard deviation of the log level
            base = level * np.exp(_ar1(rng, rows, phi, spread))
            sigma = base * rng.uniform(0.02, 0.08)
            values = base + sigma * rng.standard_normal(rows)
        else:  # bursty: near a floor, with brief natural bursts (normal, unlabelled)
            floor = np.exp(rng.uniform(np.log(1.0), np.log(500.0)))
            noise = rng.uniform(0.03, 0.15)
            values = floor * np.abs(1.0 + noise * rng.standard_normal(rows))
            starts = rng.choice(rows - 3, size=int(rng.poisson(rows * 0.01 / 2.0)), replace=False)
            heights = floor * rng.uniform(1.0, 5.0, starts.size)
            for start, length, height in zip(starts, rng.integers(1, 4, starts.size), heights, strict=True):
                values[start : start + length] += height * rng.lognormal(0.0, 0.2, length)
            base = np.full(rows, floor)
            sigma = np.full(rows, floor * np.hypot(noise, 0.3))  # bursts count in the noise scale
        labels += _inject(rng, name, values, base, sigma, index, plan)
        columns[name] = values
    return _assemble(columns, labels, index, 288, "5min")


def service_metrics(seed: int, n_series: int) -> LabelledSet:
    """Service metrics every 30 minutes over 56 days (period 48 = one day), with a weekly rhythm the period does not
    know and noise that is not independent from row to row.

    Four styles: CPU utilisation in percent (an idle floor, a business-hours load on weekdays, AR(1) noise, clipped
    to 0-100); request counts (negative binomial, over-dispersed, a two-peak daily shape and quieter weekends);
    latency (log-normal noise of 15-40% around a level that rises with the daily load); and a sensor reading (a
    daily cycle and a slow linear drift, Gaussian noise). Incidents (3-25 noise scales, a few gross): spikes of 1-4
    rows, bursts of 6-48, level shifts (first 24 rows labelled), drops of 4-36 rows to zero or a fraction.
    """
    _check(n_series)
    rng = _rng(seed, "service_metrics")
    rows = SERVICE_DAYS * 48
    index = pd.date_range(SERVICE_START, periods=rows, freq="30min", name="metric_time")
    hour = (index.hour + index.minute / 60.0).to_numpy()
    weekend = index.day_of_week.to_numpy() >= 5
    plan = _Plan(
        kinds={"spike": 0.3, "burst": 0.25, "level_shift": 0.2, "drop": 0.25},
        spike_rows=(1, 4),
        burst_rows=(6, 48),
        drop_rows=(4, 36),
        shift_label_rows=24,
        slot_rows=3 * 48,
        warm_rows=2 * 48,
        scored_rate=3.0,
        train_rate=1.5,
        scales=(3.0, 25.0),
        gross_share=0.05,
    )
    columns, labels = {}, []
    for number in range(n_series):
        name = f"svc{number:03d}"
        style = rng.choice(["utilisation", "requests", "latency", "sensor"])
        if style == "utilisation":
            idle = rng.uniform(5.0, 30.0)
            opens, closes = rng.uniform(7.0, 10.0), rng.uniform(17.0, 20.0)
            busy = np.clip(np.minimum(hour - opens, closes - hour), 0.0, 1.0) * ~weekend
            base = idle + rng.uniform(15.0, 55.0) * busy
            phi, spread = rng.uniform(0.5, 0.9), rng.uniform(1.5, 6.0)  # spread: the noise's stationary sd
            values = base + _ar1(rng, rows, phi, spread)
            sigma = np.full(rows, spread)
        elif style == "requests":
            rate = np.exp(rng.uniform(np.log(20.0), np.log(5_000.0)))
            morning, evening = rng.uniform(7.0, 10.0), rng.uniform(16.0, 20.0)
            daily = (
                0.3
                + np.exp(-0.5 * ((hour - morning) / 1.5) ** 2)
                + 0.8 * np.exp(-0.5 * ((hour - evening) / 2.0) ** 2)
            )
            base = rate * daily * np.where(weekend, rng.uniform(0.5, 0.9), 1.0)
            dispersion = rng.uniform(5.0, 50.0)
            values = rng.negative_binomial(dispersion, dispersion / (dispersion + base)).astype(float)
            sigma = np.sqrt(base + base**2 / dispersion)
        elif style == "latency":
            level = np.exp(rng.uniform(np.log(20.0), np.log(2_000.0)))
            load = np.clip(np.minimum(hour - 8.0, 18.0 - hour), 0.0, 1.0) * ~weekend
            base = level * (1.0 + rng.uniform(0.1, 0.3) * load)
            spread = rng.uniform(0.15, 0.4)
            values = base * rng.lognormal(-(spread**2) / 2, spread, rows)
            sigma = base * np.sqrt(np.expm1(spread**2))
        else:  # sensor
            level = rng.uniform(20.0, 80.0)
            drift = rng.uniform(-0.1, 0.1) * np.arange(rows) / rows
            cycle = rng.uniform(1.0, 5.0) * np.sin(2.0 * np.pi * (hour - rng.uniform(0.0, 24.0)) / 24.0)
            base = level * (1.0 + drift) + cycle
            spread = rng.uniform(0.3, 1.0)
            values = base + spread * rng.standard_normal(rows)
            sigma = np.full(rows, spread)
        # Gauges (utilisation, a sensor) shift by an amount; counts and latency scale.
        gauge = style in ("utilisation", "sensor")
        labels += _inject(rng, name, values, base, sigma, index, replace(plan, additive_shift=gauge))
        columns[name] = np.minimum(values, 100.0) if style == "utilisation" else values
    return _assemble(columns, labels, index, 48, "30min")


def _ar1(rng: np.random.Generator, rows: int, phi: float, spread: float) -> np.ndarray:
    """An AR(1) series with coefficient ``phi`` and stationary standard deviation ``spread``."""
    shocks = spread * np.sqrt(1.0 - phi**2) * rng.standard_normal(rows)
    series = np.empty(rows)
    series[0] = spread * rng.standard_normal()
    for row in range(1, rows):
        series[row] = phi * series[row - 1] + shocks[row]
    return series


_PACKAGE_KINDS = {"runaway_spike": "spike", "outage": "drop"}


def package_generator(seed: int, n_series: int) -> LabelledSet:
    """The package's own ``generate_cost_series`` (540 days), labels renamed to this module's kinds."""
    from airflow_provider_snowstorm.datasets import generate_cost_series

    _check(n_series)
    data = generate_cost_series(n_series, DAILY_DAYS, seed=int(seed) + 7919, start=DAILY_START)
    labels = data.labels[list(LABEL_COLUMNS)].copy()
    labels["kind"] = labels["kind"].map(lambda kind: _PACKAGE_KINDS.get(kind, kind)).astype(str)
    labels["series"] = labels["series"].astype(str)
    values = data.values.copy()
    return LabelledSet(values=values, labels=labels.reset_index(drop=True), period=7, freq="D")


FAMILIES: dict[str, Callable[[int, int], LabelledSet]] = {
    "lognormal_weekly": lognormal_weekly,
    "heavy_tail": heavy_tail,
    "intermittent": intermittent,
    "smooth_storage": smooth_storage,
    "batch_jobs": batch_jobs,
    "hourly_warehouse": hourly_warehouse,
    "minute_metrics": minute_metrics,
    "service_metrics": service_metrics,
    "package_generator": package_generator,
    "job_fleet": job_fleet,
}
