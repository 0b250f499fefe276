"""What a real organisation's ``USAGE_IN_CURRENCY_DAILY`` holds besides consumption, on top of a synthetic one.

The generator's rows are clean consumption. Real rows also have: the negative cloud-services allowance as its own
adjustment line, ``overage-`` usage types once the capacity contract runs out, contract-level support charges and
support credits, values in upper case, days that are still loading, and days restated before the month closes.
:func:`billing_statement` adds all of these without changing any account's net consumption per day and cost category
on complete days, so the features built from the statement must equal ``SyntheticUsage.org_series()`` there: that is
what the tests hold the pipeline to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from airflow_provider_snowstorm.core.schema import DATE
from airflow_provider_snowstorm.datasets._common import _to_date
from airflow_provider_snowstorm.datasets.organization import USAGE_ROW_COLUMNS, SyntheticUsage

__all__ = ["BillingStatement", "billing_statement"]

ADJUSTMENT_USAGE_TYPE = "adj for incl cloud services"
OVERAGE_PREFIX = "overage-"


@dataclass(frozen=True)
class BillingStatement:
    """The statement as the view shows it on ``as_of``, and as it showed it before the restatement.

    ``rows``: what a load on ``as_of`` reads (the last days only partly loaded). ``preliminary_rows``: the same
    before ``restated_day`` was corrected (a load before the correction reads these). ``settling_days``: the days
    of ``rows`` still loading. ``currency_by_account``: the billing currency of each account.
    """

    rows: pd.DataFrame
    preliminary_rows: pd.DataFrame
    restated_day: date | None
    settling_days: tuple[date, ...]
    overage_start: date | None
    currency_by_account: dict[str, str]

    def consumption(self, currency: str | None = None) -> pd.DataFrame:
        """Daily net consumption per snake_case category and ``total_usage`` (every account, or one currency's)."""
        from airflow_provider_snowstorm.core.features import build_usage_features

        return build_usage_features(self.rows, currency=currency)


def billing_statement(
    usage: SyntheticUsage,
    *,
    seed: int = 0,
    overage_days: int = 45,
    settling_days: int = 2,
    restated_day: date | str | None = None,
    support_per_month: float = 1_500.0,
    support_credit: float = 800.0,
    other_currency: tuple[str, float] | None = None,
) -> BillingStatement:
    """``usage``'s rows as a real organisation's statement (see the module docstring).

    - every cloud-services line is split into a larger gross line and a negative ``adj for incl cloud services``
      adjustment (``IS_ADJUSTMENT``) with the same net;
    - the last ``overage_days`` days are paid at on-demand prices: usage types ``overage-...`` (upper case in the
      last month), balance source ``overage``;
    - the first day of each month has a contract-level ``priority support`` line (no account) and, every third
      month, a negative ``support credit`` line for the first account;
    - ``BILLING_TYPE`` is upper case (``CONSUMPTION``) from the second year on;
    - the last ``settling_days`` days are partly loaded (some lines missing, the rest at 40-90%);
    - ``restated_day`` (default: 45 days before the last day) differs in ``preliminary_rows``: the first account's
      compute was 15% lower before the correction;
    - with ``other_currency=(code, rate)``, the accounts after the first two are billed in ``code`` (amounts times
      ``rate``).
    """
    if overage_days < 0 or settling_days < 0:
        raise ValueError(
            f"overage_days and settling_days must be 0 or more, got {overage_days}, {settling_days}"
        )
    rng = np.random.default_rng([seed, 16])
    rows = usage.rows.copy()
    days = pd.to_datetime(rows["USAGE_DATE"])
    first_day, last_day = days.min().date(), days.max().date()

    currency_by_account = {name: str(rows["CURRENCY"].iloc[0]) for name in rows["ACCOUNT_NAME"].unique()}
    if other_currency is not None:
        code, rate = other_currency
        for name in sorted(currency_by_account, key=list(rows["ACCOUNT_NAME"].unique()).index)[2:]:
            currency_by_account[name] = code
            billed = rows["ACCOUNT_NAME"] == name
            rows.loc[billed, "CURRENCY"] = code
            rows.loc[billed, "USAGE_IN_CURRENCY"] = (rows.loc[billed, "USAGE_IN_CURRENCY"] * rate).round(2)

    rows = _with_adjustments(rows, rng)
    rows = pd.concat([rows, _support_lines(rows, first_day, last_day, support_per_month, support_credit)])

    overage_start = last_day - timedelta(days=overage_days - 1) if overage_days else None
    rows = _with_overage(rows, overage_start, last_day)
    days = pd.to_datetime(rows["USAGE_DATE"])
    second_year = days >= pd.Timestamp(first_day + timedelta(days=365))
    rows.loc[second_year, "BILLING_TYPE"] = rows.loc[second_year, "BILLING_TYPE"].str.upper()

    restated = _to_date(restated_day, "restated_day") if restated_day else last_day - timedelta(days=45)
    preliminary = rows.copy()
    corrected = (
        (days == pd.Timestamp(restated))
        & (preliminary["ACCOUNT_NAME"] == rows["ACCOUNT_NAME"].iloc[0])
        & preliminary["USAGE_TYPE"].str.lower().str.endswith("compute")
    )
    preliminary.loc[corrected, "USAGE_IN_CURRENCY"] = (
        preliminary.loc[corrected, "USAGE_IN_CURRENCY"] * 0.85
    ).round(2)

    # Both loads see the same half-loaded days: only the restated day differs between them.
    settling = tuple(last_day - timedelta(days=offset) for offset in reversed(range(settling_days)))
    rows = _partly_loaded(rows, settling, np.random.default_rng([seed, 17]))
    preliminary = _partly_loaded(preliminary, settling, np.random.default_rng([seed, 17]))
    return BillingStatement(
        rows=_ordered(rows),
        preliminary_rows=_ordered(preliminary),
        restated_day=restated,
        settling_days=settling,
        overage_start=overage_start,
        currency_by_account=currency_by_account,
    )


def _with_adjustments(rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Each cloud-services line grossed up, plus the negative allowance line that brings it back to the same net."""
    cloud = (rows["USAGE_TYPE"] == "cloud services").to_numpy()
    net = rows.loc[cloud, "USAGE_IN_CURRENCY"].to_numpy()
    allowance = np.round(net * rng.uniform(0.3, 0.9, net.shape[0]), 2)
    gross = rows.copy()
    gross.loc[cloud, "USAGE_IN_CURRENCY"] = np.round(net + allowance, 2)
    adjustment = rows.loc[cloud].assign(
        USAGE_TYPE=ADJUSTMENT_USAGE_TYPE,
        USAGE_IN_CURRENCY=-allowance,
        USAGE=-np.round(rows.loc[cloud, "USAGE"].to_numpy() * allowance / np.maximum(net, 0.01), 3),
        IS_ADJUSTMENT=True,
    )
    return pd.concat([gross, adjustment], ignore_index=True)


def _with_overage(rows: pd.DataFrame, overage_start: date | None, last_day: date) -> pd.DataFrame:
    """From ``overage_start`` on, the contract's capacity is used up: consumption is paid at on-demand prices.

    Every overage line's usage type gets the ``overage-`` prefix, as in the view (upper case in the last month, as
    some loads deliver it); a day's second balance source in the overage period is rollover credit.
    """
    rows = rows.copy()
    days = pd.to_datetime(rows["USAGE_DATE"])
    consumption = rows["BILLING_TYPE"].str.lower() == "consumption"
    if overage_start is not None:
        in_overage = (days >= pd.Timestamp(overage_start)) & consumption
        rows.loc[in_overage & (rows["BALANCE_SOURCE"] == "overage"), "BALANCE_SOURCE"] = "rollover"
        rows.loc[in_overage & (rows["BALANCE_SOURCE"] == "capacity"), "BALANCE_SOURCE"] = "overage"
    overage = (rows["BALANCE_SOURCE"] == "overage") & consumption
    rows.loc[overage, "USAGE_TYPE"] = OVERAGE_PREFIX + rows.loc[overage, "USAGE_TYPE"]
    upper = overage & (days >= pd.Timestamp(last_day.replace(day=1)))
    rows.loc[upper, "USAGE_TYPE"] = rows.loc[upper, "USAGE_TYPE"].str.upper()
    return rows


def _support_lines(
    rows: pd.DataFrame, first_day: date, last_day: date, per_month: float, credit: float
) -> pd.DataFrame:
    """Monthly contract-level priority support (no account) and a support credit every third month."""
    template = rows.iloc[0]
    months = pd.date_range(
        pd.Timestamp(first_day) + pd.offsets.MonthBegin(0), pd.Timestamp(last_day), freq="MS"
    )
    lines = []
    for index, month in enumerate(months):
        lines.append(_line(template, month.date(), "priority support", per_month, account=None))
        if index % 3 == 2:
            lines.append(
                _line(template, month.date(), "support credit", -credit, account=template["ACCOUNT_NAME"])
            )
    return pd.DataFrame(lines, columns=list(USAGE_ROW_COLUMNS))


def _line(
    template: pd.Series, day: date, kind: str, amount: float, *, account: str | None
) -> dict[str, object]:
    line = template.to_dict()
    line.update(
        {
            "ACCOUNT_NAME": account,
            "ACCOUNT_LOCATOR": None if account is None else template["ACCOUNT_LOCATOR"],
            "REGION": None if account is None else template["REGION"],
            "SERVICE_LEVEL": None if account is None else template["SERVICE_LEVEL"],
            "USAGE_DATE": day,
            "USAGE_TYPE": kind,
            "USAGE": 0.0,
            "USAGE_IN_CURRENCY": amount,
            "BALANCE_SOURCE": "capacity",
            "BILLING_TYPE": kind,
            "RATING_TYPE": kind,
            "SERVICE_TYPE": kind.upper().replace(" ", "_"),
            "IS_ADJUSTMENT": False,
        }
    )
    return line


def _partly_loaded(rows: pd.DataFrame, settling: Sequence[date], rng: np.random.Generator) -> pd.DataFrame:
    """The settling days as a load sees them: the latest day has fewer lines than the one before."""
    days = pd.to_datetime(rows["USAGE_DATE"])
    keep = np.ones(len(rows), dtype=bool)
    amounts = rows["USAGE_IN_CURRENCY"].to_numpy(dtype="float64").copy()
    for age, day in enumerate(reversed(settling)):  # age 0: the last day
        on_day = np.flatnonzero((days == pd.Timestamp(day)).to_numpy())
        loaded = rng.random(on_day.shape[0]) < (0.6 if age == 0 else 0.9)
        keep[on_day[~loaded]] = False
        amounts[on_day] = np.round(amounts[on_day] * rng.uniform(0.4, 0.9, on_day.shape[0]), 2)
    return rows.assign(USAGE_IN_CURRENCY=amounts)[keep]


def _ordered(rows: pd.DataFrame) -> pd.DataFrame:
    ordered = rows.assign(**{DATE: pd.to_datetime(rows["USAGE_DATE"])}).sort_values(
        [DATE, "ACCOUNT_NAME", "USAGE_TYPE"], kind="stable", na_position="first"
    )
    return ordered.drop(columns=DATE).reset_index(drop=True)[list(USAGE_ROW_COLUMNS)]
