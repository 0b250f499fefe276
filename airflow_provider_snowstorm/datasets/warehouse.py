"""Synthetic hourly warehouse metering (``ACCOUNT_USAGE.WAREHOUSE_METERING_HISTORY``) with labelled runaways.

A warehouse bills its size in credits per hour for every second it runs (60 s minimum), and auto-suspends after a
few idle minutes: an hour's credits are ``size * share of the hour it ran``, exactly zero while it is suspended.
Each warehouse follows one usage style:

- ``office``: BI and ad-hoc queries in working hours (opening and closing hours per warehouse, a lunch dip, busy
  Mondays), idle at night and nearly idle at weekends, with suspended hours at random inside working hours;
- ``etl``: a nightly batch window every day, plus a few daytime loads on weekdays;
- ``task``: a scheduled task waking the warehouse for a few minutes every hour on weekdays (and some weekend hours).

Cloud-services credits are a small, noisy share of compute. Runaways (``RUNAWAY_KINDS``) are added on top:

- ``left_running``: the warehouse runs all hour, every hour (auto-suspend off, or a session holding it), at its
  size, typically from a Friday evening;
- ``resized``: the warehouse is resized up two sizes (4x credits) and keeps its usual pattern;
- ``stuck_task``: a task looping every minute keeps the warehouse awake around the clock (its share of each hour
  goes to 100%).

Labels give each runaway's warehouse, kind, first and last hour (inclusive, UTC) and the credits it added (data
with the runaway minus the same data without it). Deterministic per seed.

A warehouse named ``ACCOUNT:WAREHOUSE`` belongs to that account: its metering rows carry ``ACCOUNT_NAME``, as the
``ORGANIZATION_USAGE`` twin of the view does across accounts (where two accounts may each have an ``ETL_WH``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

from airflow_provider_snowstorm.core.schema import METERING_COLUMNS

__all__ = [
    "RUNAWAY_KINDS",
    "Runaway",
    "WarehouseMetering",
    "generate_warehouse_metering",
    "metering_rows",
]

RUNAWAY_KINDS: tuple[str, ...] = ("left_running", "resized", "stuck_task")
_STYLES: tuple[str, ...] = ("office", "etl", "task")
_SIZES = {"XS": 1.0, "S": 2.0, "M": 4.0, "L": 8.0, "XL": 16.0}
_LABEL_COLUMNS = ["warehouse", "kind", "start", "end", "extra_credits"]


@dataclass(frozen=True)
class Runaway:
    """One runaway to inject: ``hours`` hours of ``kind`` on ``warehouse`` from ``start`` (an hour, UTC)."""

    warehouse: str
    kind: str
    start: datetime | str
    hours: int


@dataclass(frozen=True)
class WarehouseMetering:
    """Hourly credits per warehouse (``credits``: one column per warehouse, every hour), the same as metering rows
    (``rows``, the view's columns), the runaways' ``labels`` and each warehouse's style and size."""

    credits: pd.DataFrame
    cloud_services: pd.DataFrame
    labels: pd.DataFrame
    warehouses: pd.DataFrame

    @property
    def rows(self) -> pd.DataFrame:
        return metering_rows(self.credits, self.cloud_services)


def metering_rows(compute: pd.DataFrame, cloud_services: pd.DataFrame) -> pd.DataFrame:
    """``WAREHOUSE_METERING_HISTORY`` rows (``core.schema.METERING_COLUMNS``) for the hours a warehouse ran, with
    ``ACCOUNT_NAME`` (the ``ORGANIZATION_USAGE`` twin) when the warehouses are named ``ACCOUNT:WAREHOUSE``."""
    long = compute.stack().rename("CREDITS_USED_COMPUTE").to_frame()
    long["CREDITS_USED_CLOUD_SERVICES"] = cloud_services.stack()
    long = long[long["CREDITS_USED_COMPUTE"] > 0].reset_index()
    long.columns = ["START_TIME", "SERIES", "CREDITS_USED_COMPUTE", "CREDITS_USED_CLOUD_SERVICES"]
    ids = {name: number + 1 for number, name in enumerate(compute.columns)}
    with_accounts = any(":" in str(name) for name in compute.columns)
    names = long["SERIES"].astype(str).str.rpartition(":")
    long["ACCOUNT_NAME"], long["WAREHOUSE_NAME"] = names[0], names[2]
    long["END_TIME"] = long["START_TIME"] + pd.Timedelta(hours=1)
    long["WAREHOUSE_ID"] = long["SERIES"].map(ids)
    long["CREDITS_USED"] = (long["CREDITS_USED_COMPUTE"] + long["CREDITS_USED_CLOUD_SERVICES"]).round(9)
    long["CREDITS_ATTRIBUTED_COMPUTE_QUERIES"] = (long["CREDITS_USED_COMPUTE"] * 0.85).round(9)
    columns = [*METERING_COLUMNS, "ACCOUNT_NAME"] if with_accounts else list(METERING_COLUMNS)
    order = (
        ["START_TIME", "ACCOUNT_NAME", "WAREHOUSE_NAME"]
        if with_accounts
        else ["START_TIME", "WAREHOUSE_NAME"]
    )
    return long[columns].sort_values(order, ignore_index=True)


def _shape(rng: np.random.Generator, style: str, index: pd.DatetimeIndex) -> np.ndarray:
    """The share of each hour a warehouse of ``style`` usually runs (0..1), before random suspensions."""
    hour = index.hour.to_numpy()
    weekday = index.day_of_week.to_numpy()
    weekend = weekday >= 5
    if style == "office":
        opens, closes = int(rng.integers(7, 10)), int(rng.integers(17, 20))
        busy = ((hour >= opens) & (hour < closes)) * rng.uniform(0.55, 0.9)
        busy = busy * np.where(hour == 12, 0.6, 1.0) * np.where(weekday == 0, 1.15, 1.0)
        return np.clip(np.where(weekend, busy * rng.uniform(0.0, 0.15), busy), 0.0, 1.0)
    if style == "etl":
        first, length = int(rng.integers(0, 4)), int(rng.integers(2, 5))
        batch = ((hour >= first) & (hour < first + length)) * rng.uniform(0.7, 1.0)
        loads = ((hour % 4 == 2) & (hour >= 9) & (hour < 19) & ~weekend) * rng.uniform(0.2, 0.4)
        return np.clip(batch + loads, 0.0, 1.0)
    minutes = rng.uniform(4.0, 12.0) / 60.0  # a few minutes of work and the auto-suspend delay, every hour
    active = ((hour >= 6) & (hour < 22) & ~weekend) | (weekend & (hour % 6 == 0))
    return active * minutes


def _draw_runaways(
    rng: np.random.Generator, names: Sequence[str], styles: Sequence[str], index: pd.DatetimeIndex, per: float
) -> list[Runaway]:
    """About ``per`` runaways per warehouse, at least a week apart, none in the first four weeks."""
    runaways = []
    first = 28 * 24
    for name, style in zip(names, styles, strict=True):
        count = int(rng.poisson(per))
        if not count or len(index) < first + 7 * 24:
            continue
        slots = np.sort(rng.choice(np.arange(first, len(index) - 24, 7 * 24), size=count, replace=False))
        for slot in slots:
            kind = str(rng.choice(RUNAWAY_KINDS, p=[0.45, 0.25, 0.3] if style != "task" else [0.2, 0.2, 0.6]))
            start = int(slot + rng.integers(0, 5 * 24))
            if kind == "left_running":  # left running at the end of a working day, usually
                start = start - start % 24 + int(rng.integers(17, 21))
            hours = int(rng.integers(6, 73))
            start = min(start, len(index) - 2)
            runaways.append(Runaway(name, kind, index[start], min(hours, len(index) - start)))
    return runaways


def generate_warehouse_metering(
    start: date | str,
    days: int,
    *,
    warehouses: Sequence[tuple[str, str, str]] | int = 6,
    runaways: Sequence[Runaway] | float = (),
    seed: int = 0,
) -> WarehouseMetering:
    """Hourly metering of ``warehouses`` over ``days`` days from ``start`` (00:00 UTC).

    ``warehouses`` is a list of ``(name, style, size)`` (styles ``office``, ``etl``, ``task``; sizes ``XS``..``XL``)
    or a number of warehouses drawn at random. ``runaways`` is a list of :class:`Runaway` to inject, or a number of
    runaways per warehouse to draw at random (a Poisson mean).
    """
    if not isinstance(days, int) or days < 1:
        raise ValueError(f"days must be a positive whole number, got {days!r}")
    rng = np.random.default_rng(seed)
    index = pd.date_range(pd.Timestamp(start).normalize(), periods=days * 24, freq="h", name="usage_hour")
    if isinstance(warehouses, int):
        if warehouses < 1:
            raise ValueError(f"warehouses must be at least 1, got {warehouses}")
        warehouses = [
            (f"WH_{number:03d}", str(rng.choice(_STYLES)), str(rng.choice(list(_SIZES))))
            for number in range(warehouses)
        ]
    names = [name for name, _, _ in warehouses]
    for name, style, size in warehouses:
        if style not in _STYLES or size not in _SIZES:
            raise ValueError(
                f"warehouse {name!r}: style must be one of {_STYLES} and size one of {list(_SIZES)}, "
                f"got {style!r} and {size!r}"
            )
    if len(set(names)) != len(names):
        raise ValueError(f"warehouse names repeat: {names}")
    normal, running_share, sizes = {}, {}, {}
    for name, style, size in warehouses:
        share = _shape(rng, style, index)
        busy = share > 0
        wobble = (
            rng.lognormal(-0.02, 0.2, len(index)) if style != "task" else rng.lognormal(0.0, 0.08, len(index))
        )
        suspended = rng.random(len(index)) < (0.08 if style == "office" else 0.02)
        share = np.clip(share * wobble, 0.0, 1.0) * busy * ~suspended
        running_share[name] = share
        sizes[name] = _SIZES[size]
        normal[name] = np.round(share * _SIZES[size], 6)
    compute = pd.DataFrame(normal, index=index)
    if not isinstance(runaways, Sequence):
        runaways = _draw_runaways(rng, names, [style for _, style, _ in warehouses], index, float(runaways))
    injected = compute.copy()
    labels = []
    for runaway in runaways:
        if runaway.warehouse not in compute.columns:
            raise ValueError(f"runaway on unknown warehouse {runaway.warehouse!r} (warehouses: {names})")
        if runaway.kind not in RUNAWAY_KINDS:
            raise ValueError(f"runaway kind must be one of {RUNAWAY_KINDS}, got {runaway.kind!r}")
        first = pd.Timestamp(runaway.start)
        if first not in index or runaway.hours < 1:
            raise ValueError(f"runaway {runaway}: start must be an hour of the span and hours at least 1")
        window = (index >= first) & (index < first + pd.Timedelta(hours=runaway.hours))
        size = sizes[runaway.warehouse]
        column = injected[runaway.warehouse].to_numpy().copy()
        if runaway.kind == "resized":
            column[window] = np.round(column[window] * 4.0, 6)
        else:  # left running, or kept awake by a task looping every minute: the whole hour, every hour
            column[window] = size
        extra = float(column[window].sum() - compute[runaway.warehouse].to_numpy()[window].sum())
        injected[runaway.warehouse] = column
        last = index[window][-1]
        labels.append((runaway.warehouse, runaway.kind, first, last, round(extra, 6)))
    cloud = injected * rng.uniform(0.03, 0.09, size=injected.shape) * (injected > 0)
    return WarehouseMetering(
        credits=injected,
        cloud_services=cloud.round(6),
        labels=pd.DataFrame(labels, columns=_LABEL_COLUMNS),
        warehouses=pd.DataFrame(warehouses, columns=["warehouse", "style", "size"]),
    )
