"""Turn batch-scoring output into an anomaly report: incidents, a markdown file and Slack messages.

Pure functions and dataclasses (no Airflow), so the report reads the same in a file, in Slack and in tests.

Input is what each scoring task returns (one JSON-safe dict per series)::

    {"series": "compute", "model_name": "...", "model_version": "v3", "run_url": "https://..." | None,
     "window_start": "2026-01-01", "window_end": "2026-01-31",
     "rows": [{prediction columns, dates as ISO strings}, ...], "anomalies": [rows with is_anomaly true]}

Slack rendering: Slack's mrkdwn has no tables, so the incident table is aligned plain text inside a ``` code
block (monospace, readable on desktop and mobile). A long report is split between table rows into several
section blocks and messages; every piece of the table repeats the header.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

import pandas as pd

from airflow_provider_snowstorm.core.schema import (
    CONTINUING,
    DATE,
    EXPECTED,
    IS_ANOMALY,
    MODEL_NAME,
    MODEL_VERSION,
    SCORED_AT,
    SERIES,
    TOTAL_USAGE,
    VALUE,
)

# Charts show at most this many affected series, largest impact first.
DEFAULT_MAX_PANELS = 8

DEFAULT_TITLE = "Snowflake spend anomalies"
# Root cause: each account and usage type's expected spend is the median of the same weekday over this many weeks
# before the incident; the report lists this many contributors per incident.
DEFAULT_BASELINE_WEEKS = 4
# Days just before an incident's first alarm belong to it when they deviate the same way by at least this share of
# the incident's mean daily deviation.
DEFAULT_ONSET_FRACTION = 0.5
DEFAULT_TOP_CONTRIBUTORS = 5
# Per-account usage rows (as USAGE_IN_CURRENCY_DAILY, any case): what the root cause reads.
USAGE_DATE_COLUMN = "usage_date"
ACCOUNT_COLUMN = "account_name"
USAGE_TYPE_COLUMN = "usage_type"
COST_COLUMN = "usage_in_currency"
CURRENCY_COLUMN = "currency"
REQUIRED_PREDICTION_COLUMNS: tuple[str, ...] = (DATE, SERIES, VALUE, EXPECTED, IS_ANOMALY)

Direction = Literal["spike", "drop"]

_TRUE_STRINGS = frozenset({"true", "t", "1", "yes", "y"})
_FALSE_STRINGS = frozenset({"false", "f", "0", "no", "n", ""})


@dataclass(frozen=True, slots=True)
class Incident:
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

    @property
    def delta_pct(self) -> float | None:
        """Delta in percent of the expected total; None when nothing was expected."""
        if self.expected == 0:
            return None
        return self.extra_cost / abs(self.expected) * 100.0

    @property
    def impact(self) -> float:
        return abs(self.extra_cost)


@dataclass(frozen=True, slots=True)
class SeriesModel:
    """Which model scored a series, for provenance links in the report."""

    series: str
    model_name: str | None
    model_version: str | None
    run_url: str | None
    """The scoring run."""
    training_run_url: str | None = None
    """The run that trained the model, when the scoring result carries it."""


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
class IncidentGroup:
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
    def delta_pct(self) -> float | None:
        if self.expected == 0:
            return None
        return self.extra_cost / abs(self.expected) * 100.0

    @property
    def impact(self) -> float:
        return abs(self.extra_cost)

    @property
    def peak_day(self) -> date:
        return self.lead.peak_day

    @property
    def label(self) -> str:
        """``compute`` alone, or ``total_usage (compute, storage)`` when categories explain the lead."""
        if not self.members:
            return self.lead.series
        return f"{self.lead.series} ({', '.join(self.categories)})"


@dataclass(frozen=True)
class AnomalyReport:
    """Everything a report renderer needs; build it with :func:`build_report`."""

    incidents: tuple[Incident, ...]
    models: tuple[SeriesModel, ...]
    window_start: date | None
    window_end: date | None
    series_count: int
    missing_results: int = 0
    """Scoring results that were absent (None), e.g. a failed mapped task."""
    title: str = DEFAULT_TITLE
    currency: str | None = None
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)
    groups: tuple[IncidentGroup, ...] = ()
    """The incidents as counted (nested series merged), largest impact first; see :func:`group_incidents`."""

    @property
    def has_anomalies(self) -> bool:
        return bool(self.incidents)

    @property
    def extra_cost(self) -> float:
        """Estimated extra cost of all spikes, each cost counted once (drops are reported separately)."""
        return math.fsum(g.extra_cost for g in self.groups if g.direction == "spike")

    @property
    def shortfall(self) -> float:
        """How far below expected all drops went together (a positive amount), each cost counted once."""
        return -math.fsum(g.extra_cost for g in self.groups if g.direction == "drop")

    @property
    def categories(self) -> tuple[str, ...]:
        """The cost categories that explain the incidents (inner categories rather than their total)."""
        return tuple(dict.fromkeys(c for g in self.groups for c in g.categories))

    @property
    def affected_series(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i.series for i in self.incidents))

    @property
    def affected_models(self) -> tuple[SeriesModel, ...]:
        affected = set(self.affected_series)
        return tuple(m for m in self.models if m.series in affected)

    @property
    def markdown(self) -> str:
        return render_markdown(self)


@dataclass(frozen=True, slots=True)
class SlackLimits:
    """Slack's message limits; smaller values are useful in tests."""

    max_blocks: int = 50
    max_section_chars: int = 3000
    max_message_chars: int = 40_000

    def __post_init__(self) -> None:
        if self.max_blocks < 2:
            raise ValueError(f"SlackLimits.max_blocks must be at least 2, got {self.max_blocks}")
        if self.max_section_chars < 200:
            raise ValueError(
                f"SlackLimits.max_section_chars must be at least 200, got {self.max_section_chars}"
            )
        if self.max_message_chars < self.max_section_chars:
            raise ValueError("SlackLimits.max_message_chars must be at least max_section_chars")


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """One ``chat.postMessage`` payload: ``text`` is the notification fallback, ``blocks`` are shown."""

    text: str
    blocks: tuple[dict[str, Any], ...]

    @property
    def chars(self) -> int:
        return sum(len(_block_text(b)) for b in self.blocks)


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
    account, separator, name = series.rpartition(":")
    if separator and name != TOTAL_USAGE:
        return f"{account}:{TOTAL_USAGE}"
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


def normalise_usage(usage: pd.DataFrame) -> pd.DataFrame:
    """Per-account usage rows (``USAGE_DATE, ACCOUNT_NAME, USAGE_TYPE, USAGE_IN_CURRENCY[, CURRENCY]``, any case)
    summed per day, account and usage type; usage types snake_cased as the feature columns are."""
    frame = usage.rename(columns=lambda column: str(column).lower())
    required = (USAGE_DATE_COLUMN, ACCOUNT_COLUMN, USAGE_TYPE_COLUMN, COST_COLUMN)
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(f"usage rows are missing column(s) {missing}; expected at least {list(required)}")
    frame = frame.assign(
        **{
            USAGE_DATE_COLUMN: pd.to_datetime(frame[USAGE_DATE_COLUMN]).dt.normalize(),
            ACCOUNT_COLUMN: frame[ACCOUNT_COLUMN].astype(str),
            USAGE_TYPE_COLUMN: frame[USAGE_TYPE_COLUMN]
            .astype(str)
            .str.strip()
            .str.lower()
            .str.replace(r"[\s-]+", "_", regex=True),
            COST_COLUMN: pd.to_numeric(frame[COST_COLUMN]).astype(float),
        }
    )
    keys = [USAGE_DATE_COLUMN, ACCOUNT_COLUMN, USAGE_TYPE_COLUMN]
    return frame.groupby(keys, as_index=False, sort=True)[COST_COLUMN].sum()


def usage_currency(usage: pd.DataFrame) -> str | None:
    """The one currency of the usage rows (their ``CURRENCY`` column), or None when absent or mixed."""
    columns = {str(column).lower(): column for column in usage.columns}
    if CURRENCY_COLUMN not in columns:
        return None
    values = {str(v) for v in usage[columns[CURRENCY_COLUMN]].dropna().unique() if str(v).strip()}
    return values.pop() if len(values) == 1 else None


def explain(
    usage: pd.DataFrame,
    start: date,
    end: date,
    direction: Direction,
    *,
    baseline_weeks: int = DEFAULT_BASELINE_WEEKS,
    top: int = DEFAULT_TOP_CONTRIBUTORS,
) -> tuple[tuple[float, float], tuple[Contributor, ...]] | None:
    """Which accounts and usage types drove the change from ``start`` to ``end``, and by how much.

    Each account and usage type is compared with its own expected spend: for every day, the median of the same
    weekday in the ``baseline_weeks`` weeks before ``start`` (so the incident itself never raises its baseline; a
    day without a row costs 0). Returns ((actual, expected) summed over everything, the ``top`` contributors in the
    incident's direction with their share of the net deviation), or None when ``usage`` has no day before ``start``.
    ``usage`` is :func:`normalise_usage` output.
    """
    if usage.empty:
        return None
    wide = usage.pivot_table(
        index=USAGE_DATE_COLUMN,
        columns=[ACCOUNT_COLUMN, USAGE_TYPE_COLUMN],
        values=COST_COLUMN,
        aggfunc="sum",
    )
    first = wide.index.min()
    days = pd.date_range(start, end, freq="D")
    wide = wide.reindex(pd.date_range(first, max(wide.index.max(), days[-1]), freq="D")).fillna(0.0)
    if first >= pd.Timestamp(start):
        return None
    expected_days = []
    for day in days:
        weeks_inside = (day - pd.Timestamp(start)).days // 7 + 1
        baseline = [day - pd.Timedelta(weeks=weeks_inside + k) for k in range(baseline_weeks)]
        baseline = [d for d in baseline if d >= first]
        if not baseline:
            return None
        expected_days.append(wide.loc[baseline].median())
    expected = pd.concat(expected_days, axis=1).sum(axis=1)
    observed = wide.reindex(days).fillna(0.0).sum()
    delta = observed - expected
    net = float(delta.sum())
    ordered = delta.sort_values(ascending=direction == "drop", kind="stable")
    contributors = tuple(
        Contributor(
            account=str(account),
            usage_type=str(usage_type),
            observed=float(observed[(account, usage_type)]),
            expected=float(expected[(account, usage_type)]),
            share=None if net == 0 else float(value) / net,
        )
        for rank, ((account, usage_type), value) in enumerate(ordered.head(top).items())
        # The largest mover always; the others when they carry at least 1% of the net deviation.
        if (value > 0) == (direction == "spike")
        and value != 0
        and (rank == 0 or abs(value) >= 0.01 * abs(net))
    )
    return (float(observed.sum()), float(expected.sum())), contributors


def explain_groups(
    groups: Sequence[IncidentGroup],
    usage: pd.DataFrame | None,
    *,
    baseline_weeks: int = DEFAULT_BASELINE_WEEKS,
    top: int = DEFAULT_TOP_CONTRIBUTORS,
) -> list[IncidentGroup]:
    """The groups with their root cause (and amounts from it) when per-account ``usage`` covers them.

    Only groups led by the organisation's ``total_usage`` or a category of it are explained this way: the usage
    rows are the organisation's, so they say nothing about one account's series.
    """
    if usage is None:
        return list(groups)
    rows = normalise_usage(usage)
    explained = []
    for group in groups:
        result = None
        if ":" not in group.lead.series:
            result = explain(
                _usage_for(rows, group),
                group.start,
                group.end,
                group.direction,
                baseline_weeks=baseline_weeks,
                top=top,
            )
        if result is None:
            explained.append(group)
            continue
        totals, contributors = result
        net = totals[0] - totals[1]
        if net == 0 or (net > 0) != (group.direction == "spike"):
            # The usage rows do not show the move the model saw (other rows, or a baseline that already had it):
            # keep the model's amounts rather than report a spike as a saving.
            explained.append(group)
            continue
        explained.append(
            IncidentGroup(
                lead=group.lead,
                members=group.members,
                contributors=contributors,
                breakdown=totals,
                baseline_weeks=baseline_weeks,
            )
        )
    explained.sort(key=lambda g: (-g.impact, g.start, g.series))
    return explained


def _usage_for(rows: pd.DataFrame, group: IncidentGroup) -> pd.DataFrame:
    """The rows inside the group's lead series: all of them for ``total_usage``, one usage type for a category."""
    if group.lead.series == TOTAL_USAGE:
        return rows
    return rows[rows[USAGE_TYPE_COLUMN] == group.lead.series]


# ------------------------------------------------------------------------------------------------------------
# Scoring results -> report


def build_report(
    results: Sequence[Mapping[str, Any] | None],
    *,
    title: str = DEFAULT_TITLE,
    currency: str | None = None,
    usage: pd.DataFrame | None = None,
    baseline_weeks: int = DEFAULT_BASELINE_WEEKS,
    top_contributors: int = DEFAULT_TOP_CONTRIBUTORS,
    onset_fraction: float = DEFAULT_ONSET_FRACTION,
) -> AnomalyReport:
    """Build the report from the scoring tasks' results (one dict per series; None for a missing result).

    Incidents of nested series are counted once (:func:`group_incidents`). With ``usage`` (per-account rows as in
    ``USAGE_IN_CURRENCY_DAILY``, covering ``baseline_weeks`` before the scored window), each incident names the
    accounts and usage types that drove it and its amounts are their sum (:func:`explain`); the currency is read
    from its ``CURRENCY`` column unless ``currency`` is given.
    """
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Sequence):
        raise TypeError(f"results must be a list of scoring result dicts, got {type(results).__name__}")
    frames: list[pd.DataFrame] = []
    models: list[SeriesModel] = []
    starts: list[date] = []
    ends: list[date] = []
    missing = 0
    for index, result in enumerate(results):
        if result is None:
            missing += 1
            continue
        if not isinstance(result, Mapping):
            raise TypeError(f"results[{index}] must be a dict, got {type(result).__name__}")
        series = result.get("series")
        if not series:
            raise ValueError(f"results[{index}] has no 'series'")
        models.append(
            SeriesModel(
                series=str(series),
                model_name=_optional_str(result.get("model_name")),
                model_version=_optional_str(result.get("model_version")),
                run_url=_optional_str(result.get("run_url")),
                training_run_url=_optional_str(result.get("training_run_url")),
            )
        )
        for key, bucket in (("window_start", starts), ("window_end", ends)):
            if result.get(key):
                bucket.append(_parse_date(result[key], f"results[{index}] ({series!r}) {key}"))
        frames.append(_result_rows(index, str(series), result))

    predictions = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=list(REQUIRED_PREDICTION_COLUMNS))
    )
    predictions = normalise_predictions(predictions)
    if not starts and not predictions.empty:
        starts.append(predictions[DATE].min().date())
    if not ends and not predictions.empty:
        ends.append(predictions[DATE].max().date())
    incidents = find_incidents(predictions, onset_fraction=onset_fraction)
    groups = explain_groups(
        group_incidents(incidents), usage, baseline_weeks=baseline_weeks, top=top_contributors
    )
    if currency is None and usage is not None:
        currency = usage_currency(usage)
    return AnomalyReport(
        incidents=tuple(incidents),
        groups=tuple(groups),
        models=tuple(models),
        window_start=min(starts) if starts else None,
        window_end=max(ends) if ends else None,
        series_count=len(models),
        missing_results=missing,
        title=title,
        currency=currency,
        predictions=predictions,
    )


def _result_rows(index: int, series: str, result: Mapping[str, Any]) -> pd.DataFrame:
    """The result's rows (or, when a producer sent only anomalies, those), tagged with series and model."""
    rows = result.get("rows") or result.get("anomalies")
    if rows is None:
        raise ValueError(f"results[{index}] ({series!r}) has neither 'rows' nor 'anomalies'")
    if not isinstance(rows, Sequence) or isinstance(rows, (str, bytes)):
        raise TypeError(f"results[{index}] ({series!r}) 'rows' must be a list of dicts")
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return pd.DataFrame(columns=list(REQUIRED_PREDICTION_COLUMNS))
    missing = [c for c in REQUIRED_PREDICTION_COLUMNS if c != SERIES and c not in frame.columns]
    if missing:
        raise ValueError(f"results[{index}] ({series!r}) rows are missing column(s) {missing}")
    frame[SERIES] = frame[SERIES].fillna(series) if SERIES in frame.columns else series
    for column, key in ((MODEL_NAME, "model_name"), (MODEL_VERSION, "model_version")):
        if column not in frame.columns:
            frame[column] = result.get(key)
    return frame


def _optional_str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _parse_date(value: object, where: str) -> date:
    try:
        return pd.Timestamp(value).date()
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where} is not a date: {value!r}") from err


ROOT_CAUSE_COLUMNS: tuple[str, ...] = (
    "incident_start",
    "incident_end",
    "first_alarm",
    "series",
    "categories",
    "direction",
    "account_name",
    "usage_type",
    "actual",
    "expected",
    "extra_cost",
    "share",
    "currency",
)


def root_cause_records(report: AnomalyReport) -> list[dict[str, Any]]:
    """One row per incident and contributor (the markdown's "What drove it" tables), for a table next to the
    predictions; incidents without a root cause are left out. Dates are ``datetime.date``; columns
    :data:`ROOT_CAUSE_COLUMNS`."""
    return [
        {
            "incident_start": group.start,
            "incident_end": group.end,
            "first_alarm": group.first_alarm,
            "series": group.series,
            "categories": ",".join(group.categories),
            "direction": group.direction,
            "account_name": contributor.account,
            "usage_type": contributor.usage_type,
            "actual": round(contributor.observed, 2),
            "expected": round(contributor.expected, 2),
            "extra_cost": round(contributor.extra_cost, 2),
            "share": None if contributor.share is None else round(contributor.share, 4),
            "currency": report.currency,
        }
        for group in report.groups
        for contributor in group.contributors
    ]


# ------------------------------------------------------------------------------------------------------------
# Formatting helpers


def _amount(value: float, currency: str | None, *, signed: bool = False) -> str:
    text = f"{value:+,.2f}" if signed else f"{value:,.2f}"
    return f"{text} {currency}" if currency else text


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def _when(incident: Incident | IncidentGroup) -> str:
    if incident.start == incident.end:
        return incident.start.isoformat()
    return f"{incident.start.isoformat()} → {incident.end.isoformat()}"


def _window(report: AnomalyReport) -> str:
    if report.window_start is None or report.window_end is None:
        return "unknown window"
    if report.window_start == report.window_end:
        return report.window_start.isoformat()
    return f"{report.window_start.isoformat()} to {report.window_end.isoformat()}"


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural or word + 's')}"


def headline(report: AnomalyReport) -> str:
    """One line that says what happened; used as the title and as Slack's notification text.

    Each cost is counted once: a burst in compute that also shows in ``total_usage`` is one incident.
    """
    if not report.has_anomalies:
        if report.series_count == 0:
            return f"{report.title}: no scoring results to report"
        return f"{report.title}: all clear"
    categories = _plural(len(report.categories), "cost category", "cost categories")
    text = f"{report.title}: {_plural(len(report.groups), 'incident')} in {categories}"
    if any(g.direction == "spike" for g in report.groups):
        text += f", est. extra cost {_amount(report.extra_cost, report.currency, signed=True)}"
    else:
        text += f", {_amount(report.shortfall, report.currency)} below expected"
    return text


def _summary_lines(report: AnomalyReport) -> list[str]:
    """Plain facts under the headline, shared by markdown and Slack."""
    scored = _plural(report.series_count, "cost category", "cost categories")
    lines = [f"Scored window {_window(report)} · {scored} scored"]
    if report.currency:
        lines[0] += f" · amounts in {report.currency}"
    drops = [g for g in report.groups if g.direction == "drop"]
    if drops and any(g.direction == "spike" for g in report.groups):
        lines.append(
            f"{_plural(len(drops), 'drop')}: "
            f"{_amount(report.shortfall, report.currency)} below expected in total"
        )
    if any(g.breakdown for g in report.groups):
        weeks = max(g.baseline_weeks for g in report.groups if g.breakdown)
        lines.append(
            "Actual and expected spend are summed over every account and usage type, each against its own "
            f"expected spend (median of the same weekday in the {weeks} weeks before the incident)"
        )
    if report.missing_results:
        lines.append(
            f"Warning: {_plural(report.missing_results, 'scoring result')} missing (failed or skipped)"
        )
    return lines


def _model_label(model: SeriesModel) -> str:
    name = model.model_name or "unknown model"
    return f"{name} {model.model_version}" if model.model_version else name


# ------------------------------------------------------------------------------------------------------------
# Markdown (the report file)


def render_markdown(report: AnomalyReport, *, chart_filename: str | None = None) -> str:
    """The full report as GitHub-flavoured markdown: every incident, no size limit."""
    lines = [f"# {headline(report)}", ""]
    if not report.has_anomalies:
        lines.append(
            f"No anomalies in the scored window {_window(report)} "
            f"({_plural(report.series_count, 'cost category', 'cost categories')} scored)."
        )
        if report.missing_results:
            lines += ["", _summary_lines(report)[-1] + "."]
        return "\n".join(lines) + "\n"

    currency = report.currency
    lines += [line + "." for line in _summary_lines(report)]
    lines += ["", "## Incidents (largest impact first)", ""]
    lines.append(
        "| # | Category | When | Days | Direction | Actual | Expected | Est. extra cost | vs expected "
        "| Peak day |"
    )
    lines.append("|--:|---|---|--:|---|--:|--:|--:|--:|---|")
    for number, group in enumerate(report.groups, start=1):
        lines.append(
            "| "
            + " | ".join(
                [
                    str(number),
                    _md_cell(group.label),
                    _when(group),
                    str(group.days),
                    group.direction,
                    _amount(group.observed, currency),
                    _amount(group.expected, currency),
                    _amount(group.extra_cost, currency, signed=True),
                    _pct(group.delta_pct),
                    group.peak_day.isoformat(),
                ]
            )
            + " |"
        )
    for number, group in enumerate(report.groups, start=1):
        late = group.first_alarm > group.start
        if not group.members and not group.contributors and not late:
            continue
        alarm = f" (first alarm {group.first_alarm.isoformat()})" if late else ""
        lines += ["", f"### {number}. {group.label}, {_when(group)}{alarm}", ""]
        if group.contributors:
            lines += [
                "What drove it (accounts and usage types against their own expected spend):",
                "",
                "| Account | Usage type | Actual | Expected | Extra | Share |",
                "|---|---|--:|--:|--:|--:|",
            ]
            lines += [
                f"| {_md_cell(c.account)} | {_md_cell(c.usage_type)} | {_amount(c.observed, currency)} "
                f"| {_amount(c.expected, currency)} | {_amount(c.extra_cost, currency, signed=True)} "
                f"| {_share(c.share)} |"
                for c in group.contributors
            ]
            lines.append("")
        lines += [
            "Detected by the models (each category's own model; counted once above):",
            "",
            "| Category | When | Actual | Expected | Extra | vs expected |",
            "|---|---|--:|--:|--:|--:|",
        ]
        lines += [
            f"| {_md_cell(i.series)} | {_when(i)} | {_amount(i.observed, currency)} "
            f"| {_amount(i.expected, currency)} | {_amount(i.extra_cost, currency, signed=True)} "
            f"| {_pct(i.delta_pct)} |"
            for i in group.incidents
        ]
    if chart_filename:
        lines += ["", f"![Anomalies]({chart_filename})"]
    lines += ["", "## Models", "", "| Category | Model | Training run | Scoring run |", "|---|---|---|---|"]
    for model in report.affected_models:
        lines.append(
            f"| {_md_cell(model.series)} | {_md_cell(_model_label(model))} "
            f"| {_md_link('training run', model.training_run_url)} | {_md_link('scoring run', model.run_url)} |"
        )
    others = report.series_count - len(report.affected_models)
    if others > 0:
        lines += [
            "",
            f"{_plural(others, 'other cost category', 'other cost categories')} scored without anomalies.",
        ]
    return "\n".join(lines) + "\n"


def _md_link(name: str, url: str | None) -> str:
    return f"[{name}]({url})" if url else "offline (no URL)"


def _share(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.0f}%"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# ------------------------------------------------------------------------------------------------------------
# Slack


_SLACK_CATEGORY_WIDTH = 24
_SLACK_MODEL_SERIES_WIDTH = 60
# Room kept in each message for the "part i/n" context block.
_CONTINUATION_RESERVE = 100


def slack_messages(
    report: AnomalyReport,
    *,
    limits: SlackLimits | None = None,
    max_incidents: int = 50,
    report_location: str | None = None,
) -> list[SlackMessage]:
    """The report as Slack ``chat.postMessage`` payloads within Slack's limits.

    The top ``max_incidents`` incidents are listed; the rest are summarised in one line pointing at the full
    report. Tables are split only between rows, and each piece repeats the header.
    """
    limits = limits or SlackLimits()
    if max_incidents < 1:
        raise ValueError(f"max_incidents must be at least 1, got {max_incidents}")
    section_limit = limits.max_section_chars
    sections: list[str] = []

    if not report.has_anomalies:
        text = f":white_check_mark: *{_escape(headline(report))}*\n" + _escape(
            f"No anomalies in the scored window {_window(report)} "
            f"({_plural(report.series_count, 'cost category', 'cost categories')} scored)."
        )
        if report.missing_results:
            text += "\n" + _escape(_summary_lines(report)[-1])
        if report_location:
            text += f"\nReport: `{_escape(report_location)}`"
        sections.append(_fit(text, section_limit))
    else:
        header = [f":rotating_light: *{_escape(headline(report))}*", *map(_escape, _summary_lines(report))]
        if report_location:
            header.append(f"Full report: `{_escape(report_location)}`")
        sections += _chunk_lines(header, [], section_limit)

        shown = report.groups[:max_incidents]
        table_header, table_rows = _slack_table(shown, report.currency)
        sections += _chunk_code_block(table_header, table_rows, section_limit)
        causes = [
            f"*#{number} drivers:* "
            + _escape(
                ", ".join(
                    f"{c.account} · {c.usage_type} {_amount(c.extra_cost, None, signed=True)} ({_share(c.share)})"
                    for c in group.contributors
                )
            )
            for number, group in enumerate(shown, start=1)
            if group.contributors
        ]
        if causes:
            sections += _chunk_lines(causes, [], section_limit)
        hidden = report.groups[max_incidents:]
        if hidden:
            hidden_cost = sum(i.extra_cost for i in hidden)
            where = "the full report" if not report_location else f"`{_escape(report_location)}`"
            sections.append(
                _fit(
                    f"…and {_plural(len(hidden), 'more incident')} "
                    f"(net {_escape(_amount(hidden_cost, report.currency, signed=True))} vs expected), "
                    f"see {where}.",
                    section_limit,
                )
            )
        model_lines = ["*Models*"] + [_slack_model_line(m) for m in report.affected_models]
        sections += _chunk_lines(model_lines, [], section_limit)

    return _pack(sections, headline(report), limits)


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (&, <, >) must be escaped in plain text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _slack_table(incidents: Sequence[IncidentGroup], currency: str | None) -> tuple[list[str], list[str]]:
    """Aligned monospace rows, narrow enough (~80 chars) not to wrap in a Slack code block.

    One width per column for the whole table, so every piece of a split table lines up the same way. The sign
    of "Extra" tells spikes from drops.
    """
    unit = f" ({currency})" if currency else ""
    columns = ["#", "Category", "When", "Days", f"Actual{unit}", "Expected", "Extra", "vs exp."]
    right_aligned = {0, 3, 4, 5, 6, 7}
    cells = [
        [
            str(number),
            _truncate(i.label, _SLACK_CATEGORY_WIDTH),
            _compact_when(i),
            str(i.days),
            _amount(i.observed, None),
            _amount(i.expected, None),
            _amount(i.extra_cost, None, signed=True),
            _pct(i.delta_pct),
        ]
        for number, i in enumerate(incidents, start=1)
    ]
    widths = [max(len(row[k]) for row in [columns, *cells]) for k in range(len(columns))]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(w) if k in right_aligned else cell.ljust(w)
            for k, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        return _escape("  ".join(parts).rstrip())

    header = [line(columns), "-" * len(line(columns))]
    return header, [line(row) for row in cells]


def _compact_when(incident: Incident | IncidentGroup) -> str:
    """``2026-01-03`` or ``2026-01-03→01-05`` (the end's year only when it differs)."""
    if incident.start == incident.end:
        return incident.start.isoformat()
    end = (
        incident.end.isoformat()
        if incident.end.year != incident.start.year
        else incident.end.strftime("%m-%d")
    )
    return f"{incident.start.isoformat()}→{end}"


def _slack_model_line(model: SeriesModel) -> str:
    label = (
        f"• {_escape(_truncate(model.series, _SLACK_MODEL_SERIES_WIDTH))}: `{_escape(_model_label(model))}`"
    )
    runs = [
        f"<{url}|{name}>" if url else f"{name} offline"
        for name, url in (("training run", model.training_run_url), ("scoring run", model.run_url))
    ]
    return f"{label} · " + " · ".join(runs)


def _chunk_code_block(header: list[str], rows: list[str], limit: int) -> list[str]:
    """Rows in ``` blocks of at most ``limit`` chars; each block starts with the header."""
    chunks: list[str] = []
    current: list[str] = []

    def render(body: list[str]) -> str:
        return "```\n" + "\n".join([*header, *body]) + "\n```"

    for row in rows:
        if current and len(render([*current, row])) > limit:
            chunks.append(render(current))
            current = []
        if not current and len(render([row])) > limit:
            overflow = len(render([row])) - limit
            row = _truncate(row, max(1, len(row) - overflow))
        current.append(row)
    if current:
        chunks.append(render(current))
    return chunks


def _chunk_lines(lines: list[str], header: list[str], limit: int) -> list[str]:
    """Whole lines joined into texts of at most ``limit`` chars (a too-long single line is shortened)."""
    chunks: list[str] = []
    current: list[str] = []
    for text in lines:
        if current and len("\n".join([*header, *current, text])) > limit:
            chunks.append("\n".join([*header, *current]))
            current = []
        if not current:
            text = _fit(text, limit - len("\n".join(header)) - (1 if header else 0))
        current.append(text)
    if current:
        chunks.append("\n".join([*header, *current]))
    return chunks


def _fit(text: str, limit: int) -> str:
    return _truncate(text, limit)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _block_text(block: Mapping[str, Any]) -> str:
    if "text" in block:
        return str(block["text"].get("text", ""))
    return "".join(str(e.get("text", "")) for e in block.get("elements", []))


def _pack(sections: list[str], notification: str, limits: SlackLimits) -> list[SlackMessage]:
    """Greedily fill messages with sections, keeping one block and some chars for a "part i/n" note."""
    groups: list[list[str]] = []
    current: list[str] = []
    chars = 0
    max_blocks = limits.max_blocks - 1
    max_chars = limits.max_message_chars - _CONTINUATION_RESERVE
    for text in sections:
        if current and (len(current) >= max_blocks or chars + len(text) > max_chars):
            groups.append(current)
            current, chars = [], 0
        current.append(text)
        chars += len(text)
    if current:
        groups.append(current)

    messages: list[SlackMessage] = []
    total = len(groups)
    for number, group in enumerate(groups, start=1):
        blocks: list[dict[str, Any]] = []
        text = _truncate(notification, 3000)
        if total > 1:
            text = f"{text} (part {number}/{total})"
            if number > 1:
                blocks.append(
                    {
                        "type": "context",
                        "elements": [{"type": "mrkdwn", "text": f"_continued, part {number}/{total}_"}],
                    }
                )
        blocks += [_section(s) for s in group]
        messages.append(SlackMessage(text=text, blocks=tuple(blocks)))
    return messages
