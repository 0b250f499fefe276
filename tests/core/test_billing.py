"""The billing rules' Python and SQL forms give the same answers (the SQL runs on the fakesnow engine)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_snowstorm.core.billing import (
    CONTRACT_ACCOUNT,
    BillingError,
    account_name_sql,
    billing_type,
    billing_type_sql,
    billing_types_filter_sql,
    cost_category,
    cost_category_sql,
    normalise_billing_types,
)

# fakesnow's cursor copies DuckDB's Arrow output and says so: its code, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Arrow output on a DB-API result:UserWarning")

USAGE_TYPES = {
    "compute": "compute",
    "COMPUTE": "compute",
    " data transfer ": "data_transfer",
    "overage-compute": "compute",
    "OVERAGE-DATA TRANSFER": "data_transfer",
    "adj for incl cloud services": "cloud_services",
    "overage-adj for incl cloud services": "cloud_services",
    "cloud services": "cloud_services",
    "snowpipe streaming": "snowpipe_streaming",
    "priority support": "priority_support",
}


@pytest.fixture(scope="module")
def cursor() -> Iterator[Any]:
    import fakesnow
    import snowflake.connector

    with fakesnow.patch():
        connection = snowflake.connector.connect(database="BILLING_TEST", schema="RULES")
        yield connection.cursor()
        connection.close()


@pytest.mark.parametrize(("usage_type", "category"), USAGE_TYPES.items())
def test_cost_category_python_and_sql_agree(cursor: Any, usage_type: str, category: str) -> None:
    assert cost_category(usage_type) == category
    cursor.execute(f"SELECT {cost_category_sql('USAGE_TYPE')} FROM (SELECT %s AS USAGE_TYPE)", (usage_type,))
    assert cursor.fetchone()[0] == category


@pytest.mark.parametrize(
    ("billing", "usage_type", "expected"),
    [
        ("CONSUMPTION", "compute", "consumption"),
        (" Priority Support ", "priority support", "priority support"),
        (None, "priority support", "priority support"),
        (None, "SUPPORT CREDIT", "support credit"),
        (None, "overage-compute", "consumption"),
    ],
)
def test_billing_type_python_and_sql_agree(
    cursor: Any, billing: str | None, usage_type: str, expected: str
) -> None:
    assert billing_type(billing, usage_type) == expected
    legacy = billing is None
    cursor.execute(
        f"SELECT {billing_type_sql(has_billing_type=not legacy)} "
        "FROM (SELECT %s AS BILLING_TYPE, %s AS USAGE_TYPE)",
        (billing, usage_type),
    )
    assert cursor.fetchone()[0] == expected


def test_the_filter_keeps_the_listed_billing_types(cursor: Any) -> None:
    rows = (
        "SELECT * FROM (VALUES ('CONSUMPTION', 'compute'), ('priority support', 'priority support')) "
        "AS t(BILLING_TYPE, USAGE_TYPE)"
    )
    condition = billing_types_filter_sql(["consumption"], has_billing_type=True)
    cursor.execute(f"SELECT USAGE_TYPE FROM ({rows}) WHERE {condition}")
    assert cursor.fetchall() == [("compute",)]
    condition = billing_types_filter_sql(["consumption", "priority support"], has_billing_type=False)
    cursor.execute(f"SELECT COUNT(*) FROM ({rows}) WHERE {condition}")
    assert cursor.fetchone()[0] == 2


def test_contract_level_lines_get_the_contract_account(cursor: Any) -> None:
    cursor.execute(f"SELECT {account_name_sql()} FROM (SELECT NULL AS ACCOUNT_NAME)")
    assert cursor.fetchone()[0] == CONTRACT_ACCOUNT


@pytest.mark.parametrize("value", ["consumption'; drop table x --", "", "1rebate"])
def test_billing_types_that_are_not_names_are_refused(value: str) -> None:
    with pytest.raises(BillingError, match="billing_types"):
        normalise_billing_types(["consumption", value])


def test_billing_types_are_lower_cased_without_repeats() -> None:
    assert normalise_billing_types(["Consumption", "consumption", "PRIORITY SUPPORT"]) == (
        "consumption",
        "priority support",
    )
    assert normalise_billing_types("consumption") == ("consumption",)


def test_sql_forms_refuse_columns_that_are_not_identifiers() -> None:
    with pytest.raises(BillingError, match="not a plain SQL identifier"):
        cost_category_sql("USAGE_TYPE); DROP TABLE x; --")
