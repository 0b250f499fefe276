"""Synthetic organisation usage (``USAGE_IN_CURRENCY_DAILY`` rows) with exactly labelled anomalies: seeds the local
Snowflake emulation and checks the example pipeline's report. Model and labels: see the package docstring."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from airflow_provider_snowstorm.core.schema import DATE
from airflow_provider_snowstorm.datasets._common import (
    _DAYS_PER_MONTH,
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
    _snake_case,
    _streams,
    _to_date,
    _windows,
)

__all__ = ["USAGE_ROW_COLUMNS", "SyntheticUsage", "generate_organization_usage"]

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
