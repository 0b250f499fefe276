"""Warehouse incidents from hourly detections: when one opens, what it has cost so far, what it will cost today.

An incident opens when a warehouse's credits are anomalous for ``min_hours`` hours in a row (an hour the detector
flags, or one that continues a flagged rise); it starts at the first of those hours and alarms at the
``min_hours``-th. It stays open while the hours keep coming anomalous and its id (warehouse series and start hour)
stays the same, so a report can be updated instead of posted again.

A warehouse that only runs part of the day (a nightly batch) and was resized runs anomalously again every night,
with normal (suspended) hours in between: that is one persisting change, not a new incident each night. Anomalous
hours that come back within ``rejoin_hours`` (default 24) of an incident's last one join it as a further episode
(same id: the report is updated, not posted again), and the report says how often it recurred and that retraining
the warehouse's model makes an intended new size its normal level. Only after ``rejoin_hours`` normal hours does a
new run open a new incident.

Its cost is the credits of its anomalous hours at the effective price of a credit; the projection assumes the
warehouse keeps burning its recent hourly credits until the end of the UTC day.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from airflow_provider_snowstorm.core.schema import CONTINUING, DATE, EXPECTED, IS_ANOMALY, SERIES, VALUE
from airflow_provider_snowstorm.core.warehouse import split_warehouse_series

__all__ = [
    "DEFAULT_MIN_HOURS",
    "DEFAULT_REJOIN_HOURS",
    "WarehouseIncident",
    "alarm_runs",
    "find_warehouse_incidents",
    "incident_spans",
    "render_warehouse_report",
    "warehouse_incident_message",
]

DEFAULT_MIN_HOURS = 2
# Anomalous hours this soon after an incident's last one continue it (a nightly warehouse's resize, night after night).
DEFAULT_REJOIN_HOURS = 24
# The projection's hourly burn: the mean of the incident's last few hours.
_RECENT_HOURS = 3
_FORMAT = "%Y-%m-%d %H:00"


@dataclass(frozen=True)
class WarehouseIncident:
    """One warehouse's anomalous hours: one run, or several (``episodes``) less than ``rejoin_hours`` apart.
    ``series`` is ``ACCOUNT:WAREHOUSE``. Times are hours (UTC, the hour's start); ``hours``, ``credits`` and
    ``expected_credits`` count the anomalous hours only; money is in ``currency`` (None when no credit price is
    known: then only credits are given)."""

    series: str
    start: pd.Timestamp
    first_alarm: pd.Timestamp
    last_hour: pd.Timestamp
    open: bool
    credits: float
    expected_credits: float
    recent_credits_per_hour: float
    rate: float | None
    currency: str | None
    hours: int
    episodes: int = 1

    @property
    def account(self) -> str:
        return split_warehouse_series(self.series)[0]

    @property
    def warehouse(self) -> str:
        return split_warehouse_series(self.series)[1]

    @property
    def incident_id(self) -> str:
        return f"{self.series}@{self.start:%Y-%m-%dT%H}"

    @property
    def named(self) -> str:
        """``ETL_WH (account PROD)``: both names, since a warehouse name may repeat across accounts."""
        return f"{self.warehouse} (account {self.account})"

    @property
    def extra_credits(self) -> float:
        return self.credits - self.expected_credits

    @property
    def cost(self) -> float | None:
        return None if self.rate is None else self.credits * self.rate

    @property
    def extra_cost(self) -> float | None:
        return None if self.rate is None else self.extra_credits * self.rate

    @property
    def hours_left_today(self) -> int:
        """Hours after the last one until midnight UTC (0 for a closed incident: it has stopped)."""
        return 23 - self.last_hour.hour if self.open else 0

    @property
    def projected_credits(self) -> float:
        """Credits by the end of the UTC day if it keeps running at its recent rate."""
        return self.credits + self.hours_left_today * self.recent_credits_per_hour

    @property
    def projected_cost(self) -> float | None:
        return None if self.rate is None else self.projected_credits * self.rate

    def as_record(self) -> dict[str, Any]:
        """JSON-safe fields (times as ISO strings) with the derived amounts, for XCom and the incidents table."""
        record = asdict(self)
        for key in ("start", "first_alarm", "last_hour"):
            record[key] = record[key].isoformat()
        record.update(
            incident_id=self.incident_id,
            account=self.account,
            warehouse=self.warehouse,
            extra_credits=self.extra_credits,
            cost=self.cost,
            extra_cost=self.extra_cost,
            projected_credits=self.projected_credits,
            projected_cost=self.projected_cost,
        )
        return record


def alarm_runs(abnormal: np.ndarray, min_hours: int) -> list[tuple[int, int, int]]:
    """``(start, alarm, end)`` row positions (end inclusive) of each run of at least ``min_hours`` True rows."""
    if min_hours < 1:
        raise ValueError(f"min_hours must be at least 1, got {min_hours}")
    flags = np.concatenate([[False], np.asarray(abnormal, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(flags.astype(np.int8)))
    return [
        (int(start), int(start) + min_hours - 1, int(stop) - 1)
        for start, stop in zip(edges[::2], edges[1::2], strict=True)
        if stop - start >= min_hours
    ]


def incident_spans(
    abnormal: np.ndarray, min_hours: int, rejoin_hours: int = DEFAULT_REJOIN_HOURS
) -> list[tuple[int, int, int, list[tuple[int, int]]]]:
    """``(start, alarm, end, episodes)`` row positions of each incident: a run of at least ``min_hours`` True rows
    opens one (alarm at its ``min_hours``-th row); any True rows starting at most ``rejoin_hours`` rows after its
    last True row join it. ``episodes`` are the ``(start, end)`` runs it holds (ends inclusive)."""
    if rejoin_hours < 0:
        raise ValueError(f"rejoin_hours must be at least 0, got {rejoin_hours}")
    spans: list[tuple[int, int, int, list[tuple[int, int]]]] = []
    for start, _, end in alarm_runs(abnormal, 1):
        if spans and start - spans[-1][2] - 1 <= rejoin_hours:
            first, alarm, _, runs = spans[-1]
            spans[-1] = (first, alarm, end, [*runs, (start, end)])
        elif end - start + 1 >= min_hours:
            spans.append((start, start + min_hours - 1, end, [(start, end)]))
    return spans


def find_warehouse_incidents(
    detections: pd.DataFrame,
    *,
    min_hours: int = DEFAULT_MIN_HOURS,
    rejoin_hours: int = DEFAULT_REJOIN_HOURS,
    rate: float | Callable[[pd.Timestamp], float | None] | None = None,
    currency: str | None = None,
) -> list[WarehouseIncident]:
    """Incidents in a detector's long-format hourly results (``usage_date`` the hour, ``series`` the warehouse).

    A run of anomalous hours (flagged or continuing) opens an incident once it is ``min_hours`` long; anomalous
    hours within ``rejoin_hours`` of its last one continue it (``incident_spans``). It is open if it reaches the
    warehouse's last scored hour. ``rate`` is the price of a credit, or a function of the incident's start hour
    giving it. Largest extra credits first.
    """
    missing = [
        c for c in (DATE, SERIES, VALUE, EXPECTED, IS_ANOMALY, CONTINUING) if c not in detections.columns
    ]
    if missing:
        raise ValueError(f"detections lack columns {missing}")
    incidents = []
    for warehouse, rows in detections.groupby(SERIES, observed=True, sort=True):
        rows = rows.sort_values(DATE)
        hours = pd.DatetimeIndex(rows[DATE])
        steps = np.diff(hours.to_numpy()) != np.timedelta64(1, "h")
        if steps.any():
            raise ValueError(f"detections of warehouse {warehouse!r} skip hours after {hours[:-1][steps][0]}")
        abnormal = (rows[IS_ANOMALY].to_numpy(bool) | rows[CONTINUING].to_numpy(bool)) & (
            rows[VALUE].to_numpy() > rows[EXPECTED].fillna(0.0).to_numpy()
        )
        values = rows[VALUE].to_numpy(float)
        expected = rows[EXPECTED].fillna(0.0).to_numpy(float)
        for start, alarm, end, episodes in incident_spans(abnormal, min_hours, rejoin_hours):
            price = rate(hours[start]) if callable(rate) else rate
            last_run = episodes[-1]
            recent = values[max(last_run[0], end - _RECENT_HOURS + 1) : end + 1]
            inside = np.concatenate([np.arange(first, last + 1) for first, last in episodes])
            incidents.append(
                WarehouseIncident(
                    series=str(warehouse),
                    start=hours[start],
                    first_alarm=hours[alarm],
                    last_hour=hours[end],
                    open=end == len(rows) - 1,
                    credits=float(values[inside].sum()),
                    expected_credits=float(expected[inside].sum()),
                    recent_credits_per_hour=float(recent.mean()),
                    rate=None if price is None else float(price),
                    currency=currency,
                    hours=len(inside),
                    episodes=len(episodes),
                )
            )
    return sorted(incidents, key=lambda incident: -incident.extra_credits)


def _money(amount: float | None, currency: str | None) -> str:
    return "n/a (no credit price)" if amount is None else f"{amount:,.2f} {currency or ''}".rstrip()


def warehouse_incident_message(incident: WarehouseIncident) -> str:
    """One incident as a short markdown paragraph (a Slack message; updated in place while it continues)."""
    state = (
        "still running" if incident.open else f"ended {incident.last_hour + pd.Timedelta(hours=1):{_FORMAT}}"
    )
    lines = [
        f"*Warehouse {incident.named}*: credits anomalous since {incident.start:{_FORMAT}} UTC "
        f"({incident.hours} h, {state}; first alarm {incident.first_alarm:{_FORMAT}})",
        f"Credits so far {incident.credits:,.1f} (expected {incident.expected_credits:,.1f}, "
        f"+{incident.extra_credits:,.1f}); cost so far {_money(incident.cost, incident.currency)} "
        f"(extra {_money(incident.extra_cost, incident.currency)})",
    ]
    if incident.open:
        lines.append(
            f"If it keeps running to the end of the day (UTC): {incident.projected_credits:,.1f} credits, "
            f"{_money(incident.projected_cost, incident.currency)}"
        )
    if incident.episodes > 1:
        lines.append(
            f"Recurring: {incident.episodes} episodes since {incident.start:{_FORMAT}} (a lasting change, such as a "
            "resize): if it is intended, retrain this warehouse's model so its new level becomes normal"
        )
    return "\n".join(lines)


def render_warehouse_report(
    incidents: Sequence[WarehouseIncident], *, scored_until: pd.Timestamp, title: str = "Warehouse runaways"
) -> str:
    """The hourly report: a headline, then one table row per incident (open first, largest extra credits first)."""
    ordered = sorted(incidents, key=lambda incident: (not incident.open, -incident.extra_credits))
    opened = sum(incident.open for incident in ordered)
    lines = [
        f"# {title}: {opened} open, {len(ordered) - opened} ended",
        "",
        f"Hourly warehouse metering scored up to {scored_until:{_FORMAT}} UTC.",
        "",
    ]
    if not ordered:
        return "\n".join([*lines, "No warehouse is running anomalously."]) + "\n"
    lines += [
        "| Warehouse | Account | Started (UTC) | First alarm | Hours | Episodes | State | Credits | Expected | "
        "Cost so far | Projected to end of day |",
        "|---|---|---|---|--:|--:|---|--:|--:|--:|--:|",
    ]
    for incident in ordered:
        projected = _money(incident.projected_cost, incident.currency) if incident.open else "-"
        lines.append(
            f"| {incident.warehouse} | {incident.account} | {incident.start:{_FORMAT}} | "
            f"{incident.first_alarm:{_FORMAT}} | {incident.hours} | {incident.episodes} | "
            f"{'open' if incident.open else 'ended'} | {incident.credits:,.1f} | "
            f"{incident.expected_credits:,.1f} | {_money(incident.cost, incident.currency)} | {projected} |"
        )
    return "\n".join(lines) + "\n"
