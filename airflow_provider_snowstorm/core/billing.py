"""Billing lines to cost categories: the rules that make ``USAGE_IN_CURRENCY_DAILY`` rows of a real organisation
one clean daily series per category.

A billing statement is not a list of consumption. It has adjustment lines (``adj for incl cloud services``: the
negative cloud-services allowance), lines paid at on-demand prices once a capacity contract runs out
(``overage-compute``), and lines that are not consumption at all (``priority support``, ``support credit``, often
contract-level with no account). Values may come in upper case. Each rule here has one Python form (for frames and
tests) and one SQL form (the extraction runs it in Snowflake); the tests hold the two to the same answers.

- **Category**: lower case, trimmed, ``overage-`` dropped (the balance source, not a new kind of spend), and an
  ``adj for incl X`` adjustment netted into ``X``; then snake_case (``core.features.snake_case_usage_type``).
- **Billing type**: ``BILLING_TYPE`` lower-cased where the view has the column; the legacy view lacks it, so there
  the known non-consumption usage types are their own billing type and everything else is ``consumption``.
- **Kept by default**: consumption only (``DEFAULT_BILLING_TYPES``); a deployment can add others.
- **Account**: contract-level lines have none; they are attributed to ``CONTRACT_ACCOUNT``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "CONTRACT_ACCOUNT",
    "DEFAULT_BILLING_TYPES",
    "NON_CONSUMPTION_USAGE_TYPES",
    "BillingError",
    "account_name_sql",
    "billing_type",
    "billing_type_sql",
    "billing_types_filter_sql",
    "cost_category",
    "cost_category_sql",
    "normalise_billing_types",
]

DEFAULT_BILLING_TYPES: tuple[str, ...] = ("consumption",)
# Usage types that are their own billing type in the legacy view (which has no BILLING_TYPE column).
NON_CONSUMPTION_USAGE_TYPES: tuple[str, ...] = ("priority support", "support credit", "rebate")
CONTRACT_ACCOUNT = "CONTRACT_LEVEL"

# The prefixes a category loses, in this order: the balance source, then the adjustment's wording.
_PREFIXES = r"^(overage-)?(adj for incl )?"
_BILLING_TYPE_PATTERN = re.compile(r"[a-z][a-z0-9 _\-]*")
_COLUMN_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


class BillingError(ValueError):
    """A billing setting that cannot be applied; the message names the setting and the value."""


def _column(name: str) -> str:
    if not _COLUMN_PATTERN.fullmatch(name):
        raise BillingError(f"column {name!r} is not a plain SQL identifier")
    return name


def cost_category(usage_type: str) -> str:
    """``'OVERAGE-adj for incl cloud services'`` -> ``'cloud_services'``: the category a billing line belongs to."""
    from airflow_provider_snowstorm.core.features import snake_case_usage_type

    return snake_case_usage_type(re.sub(_PREFIXES, "", str(usage_type).strip().lower()))


def cost_category_sql(column: str = "USAGE_TYPE") -> str:
    """:func:`cost_category` in SQL (Snowflake, and the local emulator)."""
    stripped = f"REGEXP_REPLACE(LOWER(TRIM({_column(column)})), '{_PREFIXES}', '')"
    return f"REPLACE(REPLACE(TRIM({stripped}), ' ', '_'), '-', '_')"


def billing_type(billing_type_value: str | None, usage_type: str) -> str:
    """The line's billing type, lower case; from the usage type when the view has no ``BILLING_TYPE``."""
    if billing_type_value is not None:
        return str(billing_type_value).strip().lower()
    usage = str(usage_type).strip().lower()
    return usage if usage in NON_CONSUMPTION_USAGE_TYPES else "consumption"


def billing_type_sql(*, has_billing_type: bool, usage_type_column: str = "USAGE_TYPE") -> str:
    """:func:`billing_type` in SQL, for a view with or without the ``BILLING_TYPE`` column."""
    if has_billing_type:
        return "LOWER(TRIM(BILLING_TYPE))"
    usage = f"LOWER(TRIM({_column(usage_type_column)}))"
    listed = ", ".join(f"'{name}'" for name in NON_CONSUMPTION_USAGE_TYPES)
    return f"CASE WHEN {usage} IN ({listed}) THEN {usage} ELSE 'consumption' END"


def normalise_billing_types(
    billing_types: Iterable[str] | str, *, what: str = "billing_types"
) -> tuple[str, ...]:
    """The billing types to keep, lower case, checked (they are written into SQL as literals)."""
    values = [billing_types] if isinstance(billing_types, str) else list(billing_types)
    if not values:
        raise BillingError(f"{what} is empty: keep at least 'consumption'")
    normalised = []
    for value in values:
        text = str(value).strip().lower()
        if not _BILLING_TYPE_PATTERN.fullmatch(text):
            raise BillingError(f"{what} has {value!r}, which is not a billing type name (e.g. 'consumption')")
        normalised.append(text)
    return tuple(dict.fromkeys(normalised))


def billing_types_filter_sql(billing_types: Iterable[str], *, has_billing_type: bool) -> str:
    """``<billing type> IN ('consumption', ...)``: the extraction's filter on lines."""
    listed = ", ".join(f"'{value}'" for value in normalise_billing_types(billing_types))
    return f"{billing_type_sql(has_billing_type=has_billing_type)} IN ({listed})"


def account_name_sql(column: str = "ACCOUNT_NAME") -> str:
    """The account of a line; contract-level lines (no account) go to :data:`CONTRACT_ACCOUNT`."""
    return f"COALESCE({_column(column)}, '{CONTRACT_ACCOUNT}')"
