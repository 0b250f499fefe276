"""Incidents from batch-scoring predictions: consecutive flagged days merged, nested cost series counted once.

Pure functions and dataclasses (no Airflow). ``find_incidents`` turns long-format predictions into incidents per
series; ``group_incidents`` merges an incident in a category with the one in its total (``total_usage`` holds every
usage type; ``ACCOUNT:compute`` is inside ``ACCOUNT:total_usage``), so each cost is counted once. The report
(``core.report``) renders them; root-cause ``Contributor`` rows are filled in there from per-account usage.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import pandas as pd

from airflow_provider_snowstorm.core.features import series_name, series_parts
from airflow_provider_snowstorm.core.schema import (
    CONTINUING,
    DATE,
    EXPECTED,
    IS_ANOMALY,
    SCORED_AT,
    SERIES,
    TOTAL_USAGE,
    VALUE,
)

# Root cause: each account and usage type's expected spend is the median of the same weekday over this many weeks
# before the incident; the report lists this many contributors per incident.
DEFAULT_BASELINE_WEEKS = 4
# Days just before an incident's first alarm belong to it when they deviate the same way by at least this share of
# the incident's mean daily deviation.
DEFAULT_ONSET_FRACTION = 0.5
REQUIRED_PREDICTION_COLUMNS: tuple[str, ...] = (DATE, SERIES, VALUE, EXPECTED, IS_ANOMALY)

Direction = Literal["spike", "drop"]

_TRUE_STRINGS = frozenset({"true", "t", "1", "yes", "y"})
_FALSE_STRINGS = frozenset({"false", "f", "0", "no", "n", ""})


class _Deviation:
    """Relative deviation and impact of anything with ``expected`` and ``extra_cost`` (an incident, a group)."""

    __slots__ = ()
    expected: float
    extra_cost: float

    @property
    def delta_pct(self) -> float | None:
        """Extra cost in percent of the expected total; None when nothing was expected."""
        if self.expected == 0:
            return None
        return self.extra_cost / abs(self.expected) * 100.0

    @property
    def impact(self) -> float:
        return abs(self.extra_cost)


@dataclass(frozen=True, slots=True)
class Incident(_Deviation):
    """Consecutive flagged days of one cost category that moved in the same direction."""

    series: str
    start: date
    end: date
    direction: Direction
    observed: float
    """Actual spend summed over the incident's days."""
    expected: float
    """Expected spend summed over the incident's days."""
    extra_cost: float
    """Sum of (value - expected) over the incident's days; negative for drops."""
    peak_day: date
    """The day furthest from expected."""
    peak_delta: float
    first_alarm: date | None = None
    """The first alarmed day; later than ``start`` when the excursion began before the alarm (see
    :func:`find_incidents`). None means ``start``."""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def alarm_day(self) -> date:
        return self.first_alarm or self.start

    @property
    def delta(self) -> float:
        """Observed minus expected total: the same amount as ``extra_cost``."""
        return self.extra_cost


@dataclass(frozen=True, slots=True)
class Contributor:
    """One account and usage type inside an incident, against its own expected spend over the incident's days."""

    account: str
    usage_type: str
    observed: float
    expected: float
    share: float | None
    """This contributor's part of the incident's net deviation (0.9 = 90%); None when the net is zero."""

    @property
    def extra_cost(self) -> float:
        return self.observed - self.expected


@dataclass(frozen=True, slots=True)
class IncidentGroup(_Deviation):
    """One incident as it is counted: the highest-level series that alarmed, and the categories inside it.

    Costs nest (``total_usage`` is the sum of every usage type; ``ACCOUNT:compute`` is inside ``ACCOUNT:total_usage``),
    so a burst in compute also alarms in the total. The group counts that cost once: its amounts are the lead
    incident's (the outermost series), or, with per-account usage, the sum over the accounts and usage types of
    actual minus their own expected spend (``contributors`` then say which ones drove it).
    """

    lead: Incident
    members: tuple[Incident, ...] = ()
    """Incidents of series inside the lead's, overlapping it in time, in the same direction."""
    contributors: tuple[Contributor, ...] = ()
    breakdown: tuple[float, float] | None = None
    """(actual, expected) summed over every account and usage type on the group's days, when usage was given."""
    baseline_weeks: int = DEFAULT_BASELINE_WEEKS

    @property
    def incidents(self) -> tuple[Incident, ...]:
        return (self.lead, *self.members)

    @property
    def start(self) -> date:
        return min(i.start for i in self.incidents)

    @property
    def end(self) -> date:
        return max(i.end for i in self.incidents)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def direction(self) -> Direction:
        return self.lead.direction

    @property
    def series(self) -> str:
        return self.lead.series

    @property
    def first_alarm(self) -> date:
        """The first day any of its series alarmed (the incident can start earlier, where the excursion did)."""
        return min(i.alarm_day for i in self.incidents)

    @property
    def categories(self) -> tuple[str, ...]:
        """What explains it: the categories inside the lead that alarmed too, else the lead itself."""
        return tuple(dict.fromkeys(m.series for m in self.members)) or (self.lead.series,)

    @property
    def observed(self) -> float:
        return self.breakdown[0] if self.breakdown else self.lead.observed

    @property
    def expected(self) -> float:
        return self.breakdown[1] if self.breakdown else self.lead.expected

    @property
    def extra_cost(self) -> float:
        return self.observed - self.expected if self.breakdown else self.lead.extra_cost

    @property
    def peak_day(self) -> date:
        return self.lead.peak_day

    @property
    def label(self) -> str:
        """``compute`` alone, or ``total_usage (compute, storage)`` when categories explain the lead."""
        if not self.members:
            return self.lead.series
        return f"{self.lead.series} ({', '.join(self.categories)})"


# ------------------------------------------------------------------------------------------------------------
# Predictions -> incidents


def normalise_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    """Validate and coerce a long-format predictions frame (dates, floats, booleans), one row per series/date.

    Shared by the report and the chart so both read scoring output the same way.
    """
    missing = [c for c in REQUIRED_PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(
            f"predictions are missing column(s) {missing}; "
            f"expected at least {list(REQUIRED_PREDICTION_COLUMNS)}"
        )
    frame = predictions.copy()
    if frame.empty:
        frame[DATE] = pd.Series(dtype="datetime64[ns]")
        frame[IS_ANOMALY] = frame[IS_ANOMALY].astype(bool)
        frame[CONTINUING] = frame[CONTINUING].astype(bool) if CONTINUING in frame.columns else False
        return frame.reset_index(drop=True)
    try:
        frame[DATE] = pd.to_datetime(frame[DATE]).dt.normalize()
    except (ValueError, TypeError) as err:
        raise ValueError(f"predictions column {DATE!r} has values that are not dates: {err}") from err
    frame[SERIES] = frame[SERIES].astype(str)
    for column in (VALUE, EXPECTED):
        try:
            frame[column] = pd.to_numeric(frame[column]).astype(float)
        except (ValueError, TypeError) as err:
            raise ValueError(f"predictions column {column!r} has values that are not numbers: {err}") from err
    frame[IS_ANOMALY] = _as_bool(frame[IS_ANOMALY])
    # Results written before the detector marked continuing days have no such column: nothing continues.
    frame[CONTINUING] = _as_bool(frame[CONTINUING]) if CONTINUING in frame.columns else False

    flagged = frame[frame[IS_ANOMALY]]
    bad = flagged[flagged[VALUE].isna() | flagged[EXPECTED].isna()]
    if not bad.empty:
        first = bad.iloc[0]
        raise ValueError(
            f"anomaly rows need both {VALUE!r} and {EXPECTED!r}: series {first[SERIES]!r} on "
            f"{first[DATE].date()} has value={first[VALUE]} expected={first[EXPECTED]}"
        )

    duplicated = frame.duplicated([SERIES, DATE], keep=False)
    if duplicated.any():
        if SCORED_AT not in frame.columns:
            first = frame[duplicated].iloc[0]
            raise ValueError(
                f"predictions have several rows for series {first[SERIES]!r} on {first[DATE].date()}; "
                f"give one row per series and date (or a {SCORED_AT!r} column to keep the latest)"
            )
        frame = frame.sort_values(SCORED_AT, kind="stable").drop_duplicates([SERIES, DATE], keep="last")
    return frame.sort_values([SERIES, DATE], kind="stable").reset_index(drop=True)


def _as_bool(column: pd.Series) -> pd.Series:
    """Booleans from bools, 0/1 or 'true'/'false' strings; ``astype(bool)`` would read 'false' as True."""
    if pd.api.types.is_bool_dtype(column):
        return column.fillna(False).astype(bool)
    if pd.api.types.is_numeric_dtype(column):
        return column.fillna(0).astype(float) != 0

    def convert(value: object) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        if isinstance(value, (bool, int, float)):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE_STRINGS:
            return True
        if text in _FALSE_STRINGS:
            return False
        raise ValueError(f"predictions column {IS_ANOMALY!r} has a value that is not a boolean: {value!r}")

    return column.map(convert).astype(bool)


def find_incidents(
    predictions: pd.DataFrame, *, onset_fraction: float = DEFAULT_ONSET_FRACTION
) -> list[Incident]:
    """Group flagged days per cost category into incidents, largest impact first.

    Flagged days on consecutive calendar days merge into one incident as long as they move in the same
    direction (a spike followed directly by a drop is two incidents). Days marked ``continuing`` extend the
    incident they follow (its length and cost), but never start one: their alarm was raised before.

    An alarm can come a day or two into an excursion (the first days of a burst may score just under the
    threshold). The days right before the first alarm that already deviate in the same direction by at least
    ``onset_fraction`` of the incident's mean daily deviation belong to it too, so its cost starts where the
    excursion did; ``first_alarm`` keeps the alarm's day. ``onset_fraction=0`` turns this off.
    """
    if onset_fraction < 0:
        raise ValueError(f"onset_fraction must be >= 0, got {onset_fraction}")
    frame = normalise_predictions(predictions)
    incidents: list[Incident] = []
    for series, rows in frame.groupby(SERIES, sort=True):
        incidents.extend(_series_incidents(str(series), rows, onset_fraction))
    incidents.sort(key=lambda i: (-i.impact, i.start, i.series))
    return incidents


def _series_incidents(series: str, rows: pd.DataFrame, onset_fraction: float) -> Iterable[Incident]:
    runs: list[list[tuple[date, float, float]]] = []
    run: list[tuple[date, float, float]] = []
    flagged = rows[rows[IS_ANOMALY] | rows[CONTINUING]]
    days = zip(flagged[DATE], flagged[VALUE], flagged[EXPECTED], flagged[IS_ANOMALY], strict=True)
    for day, value, expected, alarmed in days:
        current = (day.date(), float(value), float(expected))
        if run and not _continues(run[-1], current):
            runs.append(run)
            run = []
        if run or alarmed:
            run.append(current)
    if run:
        runs.append(run)
    if not runs or onset_fraction <= 0:
        yield from (_incident(series, r) for r in runs)
        return

    scored = {
        day.date(): (float(value), float(expected))
        for day, value, expected in zip(rows[DATE], rows[VALUE], rows[EXPECTED], strict=True)
        if not (pd.isna(value) or pd.isna(expected))
    }
    taken = {day for r in runs for day, _, _ in r}
    for r in runs:
        spike = r[0][1] >= r[0][2]
        floor = onset_fraction * math.fsum(abs(v - e) for _, v, e in r) / len(r)
        lead: list[tuple[date, float, float]] = []
        day = r[0][0] - timedelta(days=1)
        while day in scored and day not in taken:
            value, expected = scored[day]
            deviation = value - expected
            if deviation == 0 or (deviation > 0) != spike or abs(deviation) < floor:
                break
            lead.insert(0, (day, value, expected))
            taken.add(day)
            day -= timedelta(days=1)
        yield _incident(series, [*lead, *r], first_alarm=r[0][0] if lead else None)


def _continues(previous: tuple[date, float, float], current: tuple[date, float, float]) -> bool:
    next_day = current[0] - previous[0] == timedelta(days=1)
    same_direction = (previous[1] >= previous[2]) == (current[1] >= current[2])
    return next_day and same_direction


def _incident(series: str, run: list[tuple[date, float, float]], first_alarm: date | None = None) -> Incident:
    deltas = [value - expected for _, value, expected in run]
    peak_index = max(range(len(run)), key=lambda i: abs(deltas[i]))
    extra_cost = math.fsum(deltas)
    return Incident(
        series=series,
        start=run[0][0],
        end=run[-1][0],
        direction="spike" if run[0][1] >= run[0][2] else "drop",
        observed=math.fsum(value for _, value, _ in run),
        expected=math.fsum(expected for _, _, expected in run),
        extra_cost=extra_cost,
        peak_day=run[peak_index][0],
        peak_delta=deltas[peak_index],
        first_alarm=first_alarm,
    )


# ------------------------------------------------------------------------------------------------------------
# The hierarchy of costs: incidents -> groups counted once; root cause from per-account usage


def parent_series(series: str) -> str | None:
    """The series a cost series is part of: a category is inside ``total_usage``, ``ACCOUNT:compute`` inside
    ``ACCOUNT:total_usage``, which is inside ``total_usage``; ``total_usage`` is the top."""
    if series == TOTAL_USAGE:
        return None
    account, name = series_parts(series)
    if account is not None and name != TOTAL_USAGE:
        return series_name(TOTAL_USAGE, account)
    return TOTAL_USAGE


def _ancestors(series: str) -> list[str]:
    chain = []
    parent = parent_series(series)
    while parent is not None:
        chain.append(parent)
        parent = parent_series(parent)
    return chain


def _overlap(a: Incident, b: Incident) -> bool:
    return a.start <= b.end and b.start <= a.end


def group_incidents(incidents: Sequence[Incident]) -> list[IncidentGroup]:
    """Nest incidents by the hierarchy of costs so each cost is counted once, largest impact first.

    An incident joins the group of an incident in one of its enclosing series (see :func:`parent_series`) that
    overlaps it in time and moves in the same direction; otherwise it leads a group of its own. Only series that were
    scored can nest: a compute incident alone (``total_usage`` not scored or not alarming) is its own group.
    """
    leads: list[Incident] = []
    members: dict[int, list[Incident]] = {}
    for incident in sorted(
        incidents, key=lambda i: (len(_ancestors(i.series)), -i.impact, i.start, i.series)
    ):
        ancestors = _ancestors(incident.series)
        home = next(
            (
                index
                for index, lead in enumerate(leads)
                if lead.series in ancestors
                and lead.direction == incident.direction
                and _overlap(lead, incident)
            ),
            None,
        )
        if home is None:
            leads.append(incident)
            members[len(leads) - 1] = []
        else:
            members[home].append(incident)
    groups = [IncidentGroup(lead=lead, members=tuple(members[index])) for index, lead in enumerate(leads)]
    groups.sort(key=lambda g: (-g.impact, g.start, g.series))
    return groups
