"""Deprecated: the synthetic data generators moved to :mod:`airflow_provider_snowstorm.datasets`.

Import ``generate_organization_usage`` and ``generate_cost_series`` (and their result types) from
``airflow_provider_snowstorm.datasets``; this module only re-exports the old names. It is the one module of ``core``
that imports ``datasets``, and nothing in ``core`` imports it.
"""

from __future__ import annotations

import warnings

from airflow_provider_snowstorm.datasets import (
    KINDS,
    USAGE_ROW_COLUMNS,
    SyntheticSeries,
    SyntheticUsage,
    generate_cost_series,
    generate_organization_usage,
)

__all__ = [
    "KINDS",
    "USAGE_ROW_COLUMNS",
    "SyntheticSeries",
    "SyntheticUsage",
    "generate_cost_series",
    "generate_organization_usage",
]

warnings.warn(
    "airflow_provider_snowstorm.core.synthetic is deprecated: import the generators from "
    "airflow_provider_snowstorm.datasets.",
    DeprecationWarning,
    stacklevel=2,
)
