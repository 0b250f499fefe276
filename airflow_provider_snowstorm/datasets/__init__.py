"""Synthetic Snowflake spend with exactly labelled anomalies: ``organization`` (the demo) and ``series`` (the
benchmarks), with their shared pieces in ``_common``.

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

from airflow_provider_snowstorm.datasets._common import KINDS
from airflow_provider_snowstorm.datasets.organization import (
    USAGE_ROW_COLUMNS,
    SyntheticUsage,
    generate_organization_usage,
)
from airflow_provider_snowstorm.datasets.series import SyntheticSeries, generate_cost_series

__all__ = [
    "KINDS",
    "USAGE_ROW_COLUMNS",
    "SyntheticSeries",
    "SyntheticUsage",
    "generate_cost_series",
    "generate_organization_usage",
]
