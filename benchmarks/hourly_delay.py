"""Detection delay on hourly warehouse metering: how many hours after a runaway starts the first alarm comes, and
how many false alarms per warehouse per week, for the hourly path against the daily pipeline on the same events.

``python -m benchmarks.hourly_delay`` (about a minute). Families:

- ``metering`` (``datasets.warehouse``, the generator of the main job's seed): the hourly defaults
  (``core.warehouse.DEFAULT_HOURLY_PARAMS``, ``DEFAULT_MIN_HOURS``) were chosen on it, so it is shown but not
  pooled;
- ``hourly_warehouse`` (``benchmarks.families``, written for the detector benchmark) and ``job_fleet`` (below:
  warehouses woken by scheduled jobs of random lengths, runaways as jobs that never finish or resized warehouses):
  held out, pooled, and the worst of them shown beside the pool.

Each warehouse's model trains on the first 40% of its hours and scores the rest. **Hourly**: an alarm is the hour an
incident opens (``min_hours`` anomalous hours in a row; anomalous hours within ``DEFAULT_REJOIN_HOURS`` of an incident's
last one continue it and raise no new alarm, as in the scoring DAG); its delay is the hours from the runaway's first
hour to the end of the alarm hour. **Daily**: the same detector with the daily defaults on each warehouse's daily
credits (a kinder test than the daily pipeline, which sums every warehouse into an organisation-wide total); a day's
alarm comes at the end of that day. Neither counts the data's own latency: up to 3 hours for metering, 72 hours of
settling for daily billing (the daily pipeline's ``settle_days``). A runaway no alarm reaches before it ends is missed
(its delay is not counted). A false alarm is an alarm outside every labelled incident.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest
from airflow_provider_snowstorm.core.hourly_incidents import (
    DEFAULT_MIN_HOURS,
    DEFAULT_REJOIN_HOURS,
    incident_spans,
)
from airflow_provider_snowstorm.core.schema import CONTINUING, EXPECTED, IS_ANOMALY, VALUE
from airflow_provider_snowstorm.core.warehouse import DEFAULT_HOURLY_PARAMS
from airflow_provider_snowstorm.datasets.warehouse import RUNAWAY_KINDS, generate_warehouse_metering
from benchmarks.families import FLEET_DAYS, TRAIN_SHARE, LabelledSet, fleet_warehouses, hourly_warehouse

__all__ = [
    "FAMILIES",
    "Outcome",
    "evaluate_daily",
    "evaluate_hourly",
    "extra_small",
    "job_fleet",
    "main",
    "metering",
]

RUNAWAYS = frozenset({*RUNAWAY_KINDS, "runaway"})
HOURS_PER_WEEK = 168
# An XS warehouse bills at most 1 credit an hour (plus a few percent of cloud services).
XS_CREDITS = 1.1
DAYS = FLEET_DAYS


def metering(seed: int, n_series: int) -> LabelledSet:
    """``datasets.warehouse`` over 120 days, about 1.5 runaways per warehouse (the tuning family)."""
    data = generate_warehouse_metering("2024-03-04", DAYS, warehouses=n_series, runaways=1.5, seed=seed)
    labels = data.labels.rename(columns={"warehouse": "series"})[["series", "start", "end", "kind"]]
    return LabelledSet(values=data.credits, labels=labels, period=168, freq="h")


def job_fleet(seed: int, n_series: int) -> LabelledSet:
    """``benchmarks.families.job_fleet`` (warehouses woken by scheduled jobs) with runaways only from two weeks
    before the end of training, at the warehouse path's weekly period."""
    first = round(TRAIN_SHARE * DAYS * 24) - 14 * 24
    return replace(fleet_warehouses(seed, n_series, first_incident_row=first), period=168)


FAMILIES: dict[str, Callable[[int, int], LabelledSet]] = {
    "metering": metering,
    "hourly_warehouse": hourly_warehouse,
    "job_fleet": job_fleet,
}
TUNING = ("metering",)


@dataclass
class Outcome:
    """Runaways found (with each delay in hours) and missed, false alarms, and warehouse-weeks scored."""

    delays: list[float]
    missed: int
    false_alarms: int
    warehouse_weeks: float

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(
            self.delays + other.delays,
            self.missed + other.missed,
            self.false_alarms + other.false_alarms,
            self.warehouse_weeks + other.warehouse_weeks,
        )

    @property
    def median_delay(self) -> float:
        return float(np.median(self.delays)) if self.delays else float("nan")

    @property
    def detected(self) -> float:
        total = len(self.delays) + self.missed
        return len(self.delays) / total if total else float("nan")

    @property
    def false_alarms_per_week(self) -> float:
        return self.false_alarms / self.warehouse_weeks if self.warehouse_weeks else 0.0


def _score(
    data: LabelledSet, alarms: dict[str, list[pd.Timestamp]], step: pd.Timedelta, weeks: float
) -> Outcome:
    """Match alarms (the end of each alarm's period is when it is known) to the scored runaways."""
    first_scored = data.values.index[data.train_rows]
    labels = data.labels[pd.to_datetime(data.labels["end"]) >= first_scored]
    delays, missed, false_alarms = [], 0, 0
    for series, times in alarms.items():
        own = labels[labels["series"] == series]
        for alarm in times:
            inside = (own["start"] <= alarm + step - pd.Timedelta(hours=1)) & (alarm <= own["end"])
            false_alarms += not inside.any()
    for label in labels[labels["kind"].isin(RUNAWAYS) & (labels["start"] >= first_scored)].itertuples():
        known = [
            alarm + step
            for alarm in alarms.get(label.series, [])
            if label.start <= alarm + step - pd.Timedelta(hours=1) and alarm <= label.end
        ]
        if known:
            delays.append((min(known) - label.start) / pd.Timedelta(hours=1))
        else:
            missed += 1
    return Outcome(delays, missed, false_alarms, weeks)


def evaluate_hourly(
    data: LabelledSet,
    *,
    min_hours: int = DEFAULT_MIN_HOURS,
    rejoin_hours: int = DEFAULT_REJOIN_HOURS,
    **params: object,
) -> Outcome:
    """The hourly path: one model per warehouse (fitted together: the detector is per column), incidents opened
    after ``min_hours`` anomalous hours and continued by anomalous hours within ``rejoin_hours``."""
    train = data.train_rows
    detector = DecomposeIsolationForest(**{**DEFAULT_HOURLY_PARAMS, "random_state": 0, **params})
    detector.fit(data.values.iloc[:train])
    result = detector.detect(data.values, start=data.values.index[train])
    alarms = {}
    for series, rows in result.groupby("series", observed=True):
        abnormal = (rows[IS_ANOMALY].to_numpy(bool) | rows[CONTINUING].to_numpy(bool)) & (
            rows[VALUE].to_numpy() > rows[EXPECTED].fillna(0.0).to_numpy()
        )
        hours = pd.DatetimeIndex(rows["usage_date"])
        spans = incident_spans(abnormal, min_hours, rejoin_hours)
        alarms[str(series)] = [hours[alarm] for _, alarm, _, _ in spans]
    weeks = (len(data.values) - train) * data.values.shape[1] / HOURS_PER_WEEK
    return _score(data, alarms, pd.Timedelta(hours=1), weeks)


def evaluate_daily(data: LabelledSet) -> Outcome:
    """The daily detector (its defaults, up-only like a runaway) on each warehouse's daily credits."""
    daily = data.values.resample("D").sum()
    train = round(TRAIN_SHARE * len(daily))
    detector = DecomposeIsolationForest(period=7, direction="up", random_state=0).fit(daily.iloc[:train])
    result = detector.detect(daily, start=daily.index[train])
    flagged = result[result[IS_ANOMALY]]
    alarms = {
        str(series): list(pd.DatetimeIndex(rows["usage_date"]))
        for series, rows in flagged.groupby("series", observed=True)
    }
    weeks = (len(data.values) - data.train_rows) * data.values.shape[1] / HOURS_PER_WEEK
    return _score(data, alarms, pd.Timedelta(days=1), weeks)


def _cells(outcome: Outcome) -> list[str]:
    return [
        f"{outcome.median_delay:.1f}",
        f"{np.percentile(outcome.delays, 90):.1f}" if outcome.delays else "nan",
        f"{outcome.detected:.2f} ({len(outcome.delays)}/{len(outcome.delays) + outcome.missed})",
        f"{outcome.false_alarms_per_week:.3f}",
        f"{outcome.false_alarms_per_week * 30.44 / 7:.2f}",
    ]


def extra_small(data: LabelledSet) -> LabelledSet | None:
    """The warehouses of ``data`` whose busiest training hour bills at most ``XS_CREDITS`` (an XS warehouse: 1
    credit an hour and its cloud services), with their labels; None without any."""
    busiest = data.values.iloc[: data.train_rows].max()
    names = list(busiest.index[busiest <= XS_CREDITS])
    if not names:
        return None
    labels = data.labels[data.labels["series"].isin(names)].reset_index(drop=True)
    return LabelledSet(values=data.values[names], labels=labels, period=data.period, freq=data.freq)


def _share(value: str) -> float | None:
    return None if value.lower() == "none" else float(value)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hourly_delay", description=__doc__)
    parser.add_argument("--warehouses", type=int, default=40, help="warehouses per family (default 40)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--min-deviation-share",
        type=_share,
        default=DEFAULT_HOURLY_PARAMS["min_deviation_share"],
        help="the relative materiality floor ('none': the absolute floor only, as before it existed)",
    )
    parser.add_argument(
        "--rejoin-hours",
        type=int,
        default=DEFAULT_REJOIN_HOURS,
        help="anomalous hours this soon after an incident continue it (0: every run is an incident)",
    )
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    settings = {"min_deviation_share": arguments.min_deviation_share, "rejoin_hours": arguments.rejoin_hours}
    outcomes: dict[tuple[str, str], Outcome] = {}
    small: dict[str, Outcome] = {}
    for family, generate in FAMILIES.items():
        data = generate(arguments.seed, arguments.warehouses)
        outcomes[family, "hourly"] = evaluate_hourly(data, **settings)
        outcomes[family, "daily"] = evaluate_daily(data)
        subset = extra_small(data)
        if subset is not None and family not in TUNING:
            small[family] = evaluate_hourly(subset, **settings)
    held_out = [family for family in FAMILIES if family not in TUNING]
    header = (
        "| Family | Path | Median delay (h) | 90th pct delay (h) | Runaways detected | False alarms / warehouse / week "
        "| ... / month |"
    )
    lines = [header, "|---|---|--:|--:|--:|--:|--:|"]
    for path in ("hourly", "daily"):
        pooled = sum((outcomes[family, path] for family in held_out[1:]), outcomes[held_out[0], path])
        worst = max(held_out, key=lambda family: outcomes[family, path].median_delay)
        rows = [(f"held out, pooled ({', '.join(held_out)})", pooled)]
        rows += [
            (f"{family}{' (worst held out)' if family == worst else ''}", outcomes[family, path])
            for family in held_out
        ]
        rows += [(f"{family} (tuning, not pooled)", outcomes[family, path]) for family in TUNING]
        if path == "hourly" and small:
            pooled_small = sum(list(small.values())[1:], next(iter(small.values())))
            rows.append((f"held out, XS warehouses only ({', '.join(small)})", pooled_small))
        lines += [f"| {name} | {path} | {' | '.join(_cells(outcome))} |" for name, outcome in rows]
    print("\n".join(lines))
    print(
        f"\n{arguments.warehouses} warehouses per family, seed {arguments.seed}, hourly params "
        f"{ {**DEFAULT_HOURLY_PARAMS, 'min_deviation_share': arguments.min_deviation_share} }, min_hours "
        f"{DEFAULT_MIN_HOURS}, rejoin_hours {arguments.rejoin_hours}; XS: busiest training hour at most "
        f"{XS_CREDITS} credits; {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
