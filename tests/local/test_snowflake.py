"""The emulator through the stock SnowflakeHook: what later operators rely on, and what does not work."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import ssl
import time
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from airflow_provider_snowstorm.local.__main__ import main as cli_main
from airflow_provider_snowstorm.local.seed import USAGE_TABLE, seed_usage
from airflow_provider_snowstorm.local.snowflake import (
    LOCAL_PASSWORD,
    EmulatorError,
    EmulatorHandle,
    airflow_connection_json,
    emulator_status,
    start_emulator,
    stop_emulator,
)
from tests.local.conftest import make_usage_rows

pytest.importorskip("fakesnow")
from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook
from snowflake.connector.errors import ProgrammingError

TABLE = "SNOWSTORM.ANALYTICS.EMULATOR_CHECKS"


@pytest.fixture
def checks_table(snowflake_hook: SnowflakeHook) -> str:
    """A fresh project table (a second database next to SNOWFLAKE) with three rows."""
    snowflake_hook.run(
        [
            f"CREATE OR REPLACE TABLE {TABLE} (USAGE_DATE DATE, SERIES VARCHAR, VALUE NUMBER(38,2))",
            f"INSERT INTO {TABLE} VALUES ('2024-01-01', 'a', 1), ('2024-01-02', 'a', 2), ('2024-01-01', 'b', 3)",
        ]
    )
    return TABLE


def _rows(hook: SnowflakeHook, table: str) -> list[tuple]:
    return hook.get_records(f"SELECT USAGE_DATE, SERIES, VALUE FROM {table} ORDER BY SERIES, USAGE_DATE")


# --- lifecycle -------------------------------------------------------------------------------------------------


def test_status_reports_the_running_emulator(snowflake_emulator: EmulatorHandle) -> None:
    assert emulator_status(snowflake_emulator.state_dir) == snowflake_emulator


def test_start_again_returns_the_running_emulator(snowflake_emulator: EmulatorHandle) -> None:
    assert start_emulator(snowflake_emulator.state_dir) == snowflake_emulator


def test_start_on_another_port_while_running_is_refused(snowflake_emulator: EmulatorHandle) -> None:
    with pytest.raises(EmulatorError, match=f"already runs on port {snowflake_emulator.port}"):
        start_emulator(snowflake_emulator.state_dir, port=snowflake_emulator.port + 1)


def test_plain_http_is_refused(snowflake_emulator: EmulatorHandle) -> None:
    connection = http.client.HTTPConnection(snowflake_emulator.host, snowflake_emulator.port, timeout=5)
    connection.request("POST", "/queries/v1/abort-request", body=b"{}")
    try:
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            connection.getresponse()
    finally:
        connection.close()


def test_tls_needs_the_local_ca(snowflake_emulator: EmulatorHandle) -> None:
    without_ca = ssl.create_default_context(cafile=None, capath=None, cadata=None)
    without_ca.load_verify_locations(cadata=_public_only_bundle())
    connection = http.client.HTTPSConnection(
        snowflake_emulator.host, snowflake_emulator.port, timeout=5, context=without_ca
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        connection.request("POST", "/queries/v1/abort-request", body=b"{}")
    connection.close()


def _public_only_bundle() -> str:
    import certifi

    return Path(certifi.where()).read_text()


# The stock hook's own get_df is what these tests prove works; pandas warns on every such read (see read_dataframe).
STOCK_GET_DF_WARNING = "ignore:pandas only supports SQLAlchemy connectable:UserWarning"


@pytest.mark.filterwarnings(STOCK_GET_DF_WARNING)
def test_connection_points_the_stock_hook_at_the_emulator(snowflake_hook: SnowflakeHook) -> None:
    frame = snowflake_hook.get_df("SELECT CURRENT_DATABASE() AS DB, CURRENT_SCHEMA() AS SCH, 1 + 1 AS TWO")

    assert frame.to_dict("records") == [{"DB": "SNOWSTORM", "SCH": "ANALYTICS", "TWO": 2}]


def test_connection_json_is_https_to_the_emulator(snowflake_emulator: EmulatorHandle) -> None:
    connection = json.loads(airflow_connection_json(snowflake_emulator, database="D", schema="S"))

    assert connection["conn_type"] == "snowflake"
    assert connection["schema"] == "S"
    assert connection["extra"]["database"] == "D"
    assert (connection["extra"]["host"], connection["extra"]["port"]) == (
        "127.0.0.1",
        snowflake_emulator.port,
    )
    assert "session_parameters" not in connection["extra"]


def test_cli_status_and_env_never_print_the_password_outside_the_connection(
    snowflake_emulator: EmulatorHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(snowflake_emulator.state_dir)

    assert cli_main(["snowflake", "status", "--home", home]) == 0
    assert cli_main(["snowflake", "start", "--home", home]) == 0
    status_output = capsys.readouterr().out
    assert cli_main(["snowflake", "env", "--home", home, "--conn-id", "local_sf"]) == 0
    env_lines = capsys.readouterr().out.splitlines()

    assert f":{snowflake_emulator.port}" in status_output
    assert "Already running" in status_output
    assert LOCAL_PASSWORD not in status_output
    assert env_lines[0] == f"export REQUESTS_CA_BUNDLE={snowflake_emulator.ca_bundle}"
    assert env_lines[1].startswith("export AIRFLOW_CONN_LOCAL_SF='{")
    assert len(env_lines) == 2


# --- seeding ---------------------------------------------------------------------------------------------------


def test_seed_loads_rows_with_the_view_types(snowflake_hook: SnowflakeHook, usage_rows: pd.DataFrame) -> None:
    assert seed_usage(snowflake_hook, usage_rows) == 16

    first = snowflake_hook.get_records(
        f"SELECT ORGANIZATION_NAME, USAGE_DATE, USAGE, USAGE_IN_CURRENCY, IS_ADJUSTMENT, BALANCE_SOURCE "
        f"FROM {USAGE_TABLE} WHERE ACCOUNT_NAME = 'PROD' AND USAGE_TYPE = 'compute' ORDER BY USAGE_DATE LIMIT 1"
    )
    assert first == [("O'Brien & Co", dt.date(2024, 2, 27), Decimal("12.346"), Decimal("49.38"), False, None)]


def test_seed_twice_replaces_the_rows(snowflake_hook: SnowflakeHook) -> None:
    seed_usage(snowflake_hook, make_usage_rows(days=5))
    seed_usage(snowflake_hook, make_usage_rows(days=3))

    count, days = snowflake_hook.get_first(f"SELECT COUNT(*), COUNT(DISTINCT USAGE_DATE) FROM {USAGE_TABLE}")
    assert (count, days) == (12, 3)


def test_seed_of_two_synthetic_years_is_fast_and_exact(snowflake_hook: SnowflakeHook) -> None:
    from airflow_provider_snowstorm.datasets import generate_organization_usage

    rows = generate_organization_usage("2024-01-01", 730, accounts=3, seed=0).rows
    started = time.perf_counter()
    seed_usage(snowflake_hook, rows)
    elapsed = time.perf_counter() - started

    count, total, last = snowflake_hook.get_first(
        f"SELECT COUNT(*), SUM(USAGE_IN_CURRENCY), MAX(USAGE_DATE) FROM {USAGE_TABLE}"
    )
    assert count == len(rows)
    # SUM over NUMBER(38,2) comes back as a float from the emulator (Snowflake returns NUMBER)
    assert total == pytest.approx(rows["USAGE_IN_CURRENCY"].sum(), abs=0.005)
    assert last == dt.date(2025, 12, 30)
    assert elapsed < 15, f"seeding {len(rows)} rows took {elapsed:.1f} s"


def test_seed_refuses_rows_without_the_view_columns(snowflake_hook: SnowflakeHook) -> None:
    with pytest.raises(ValueError, match=r"missing \['USAGE_DATE'\]"):
        seed_usage(snowflake_hook, make_usage_rows(days=1).drop(columns=["USAGE_DATE"]))


# --- what the stock hook can do against the emulator ----------------------------------------------------------


@pytest.mark.filterwarnings(STOCK_GET_DF_WARNING)
def test_get_df_and_get_pandas_df_read_dates_as_dates(
    snowflake_hook: SnowflakeHook, checks_table: str
) -> None:
    query = f"SELECT USAGE_DATE, VALUE FROM {checks_table} ORDER BY SERIES, USAGE_DATE"

    for frame in (snowflake_hook.get_df(query), snowflake_hook.get_pandas_df(query)):
        assert frame["USAGE_DATE"].tolist() == [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 1)]
        assert frame["VALUE"].tolist() == [1.0, 2.0, 3.0]


def test_pyformat_parameters_named_and_positional(snowflake_hook: SnowflakeHook, checks_table: str) -> None:
    named = snowflake_hook.get_records(
        f"SELECT VALUE FROM {checks_table} WHERE SERIES = %(series)s AND USAGE_DATE = %(day)s",
        parameters={"series": "a", "day": dt.date(2024, 1, 2)},
    )
    positional = snowflake_hook.get_records(
        f"SELECT VALUE FROM {checks_table} WHERE SERIES = %s ORDER BY USAGE_DATE",
        parameters=["a"],
    )

    assert named == [(Decimal("2.00"),)]
    assert positional == [(Decimal("1.00"),), (Decimal("2.00"),)]


def test_qmark_parameters_do_not_work_with_the_default_paramstyle(snowflake_hook: SnowflakeHook) -> None:
    with pytest.raises(TypeError, match="not all arguments converted"):
        snowflake_hook.get_records("SELECT ?", parameters=[1])


def test_create_table_if_not_exists_keeps_the_rows(snowflake_hook: SnowflakeHook, checks_table: str) -> None:
    snowflake_hook.run(
        f"CREATE TABLE IF NOT EXISTS {checks_table} (USAGE_DATE DATE, SERIES VARCHAR, VALUE FLOAT)"
    )

    assert len(_rows(snowflake_hook, checks_table)) == 3


def test_merge_updates_and_inserts_from_another_database(
    snowflake_hook: SnowflakeHook, checks_table: str
) -> None:
    seed_usage(snowflake_hook, make_usage_rows(days=1, accounts=("PROD",)))

    counts = snowflake_hook.run(
        f"""MERGE INTO {checks_table} AS target
            USING (SELECT %(day)s::DATE AS USAGE_DATE, USAGE_TYPE AS SERIES, SUM(USAGE_IN_CURRENCY) AS VALUE
                   FROM {USAGE_TABLE} GROUP BY USAGE_TYPE) AS source
            ON target.USAGE_DATE = source.USAGE_DATE AND target.SERIES = source.SERIES
            WHEN MATCHED THEN UPDATE SET VALUE = source.VALUE
            WHEN NOT MATCHED THEN INSERT (USAGE_DATE, SERIES, VALUE)
                VALUES (source.USAGE_DATE, source.SERIES, source.VALUE)
        """,
        parameters={"day": "2024-01-01"},
        handler=lambda cursor: cursor.fetchall(),
    )

    assert counts == [(2, 0)]  # (rows inserted, rows updated)
    assert snowflake_hook.get_records(
        f"SELECT SERIES, VALUE FROM {checks_table} WHERE SERIES IN ('compute', 'storage') ORDER BY SERIES"
    ) == [("compute", Decimal("49.38")), ("storage", Decimal("0.05"))]


def test_delete_and_insert_commit_together(snowflake_hook: SnowflakeHook, checks_table: str) -> None:
    snowflake_hook.run(
        [
            "BEGIN",
            f"DELETE FROM {checks_table} WHERE SERIES = 'a'",
            f"INSERT INTO {checks_table} VALUES ('2024-01-05', 'a', 9)",
            "COMMIT",
        ]
    )

    assert _rows(snowflake_hook, checks_table) == [
        (dt.date(2024, 1, 5), "a", Decimal("9.00")),
        (dt.date(2024, 1, 1), "b", Decimal("3.00")),
    ]


@pytest.mark.parametrize("explicit_begin", [True, False], ids=["begin-commit", "autocommit-false"])
def test_failure_mid_transaction_keeps_the_prior_rows(
    snowflake_hook: SnowflakeHook, checks_table: str, explicit_begin: bool
) -> None:
    statements = [
        f"DELETE FROM {checks_table}",
        f"INSERT INTO {checks_table} VALUES ('2024-01-05', 'a', 'not a number')",
    ]
    if explicit_begin:
        statements = ["BEGIN", *statements, "COMMIT"]
    before = _rows(snowflake_hook, checks_table)

    with pytest.raises(ProgrammingError, match="Conversion Error"):
        snowflake_hook.run(statements)

    assert _rows(snowflake_hook, checks_table) == before
    # the rolled-back session holds no lock: the same rows can be deleted right away
    snowflake_hook.run(f"DELETE FROM {checks_table}")
    assert _rows(snowflake_hook, checks_table) == []


def test_rollback_undoes_a_delete(snowflake_hook: SnowflakeHook, checks_table: str) -> None:
    snowflake_hook.run(["BEGIN", f"DELETE FROM {checks_table}", "ROLLBACK"], autocommit=True)

    assert len(_rows(snowflake_hook, checks_table)) == 3


def test_multi_statement_string_is_not_supported(snowflake_hook: SnowflakeHook, checks_table: str) -> None:
    # fakesnow parses one statement per request: split_statements=False fails (and may have run a part)
    with pytest.raises(ProgrammingError):
        snowflake_hook.run(f"BEGIN; DELETE FROM {checks_table}; COMMIT;", split_statements=False)


def test_insert_rows_writes_python_dates(snowflake_hook: SnowflakeHook, checks_table: str) -> None:
    snowflake_hook.insert_rows(
        checks_table,
        [(dt.date(2024, 2, 29), "c", 1.5), (dt.date(2024, 3, 1), "c", 2.5)],
        target_fields=["USAGE_DATE", "SERIES", "VALUE"],
    )

    assert snowflake_hook.get_records(
        f"SELECT USAGE_DATE, VALUE FROM {checks_table} WHERE SERIES = 'c' ORDER BY USAGE_DATE"
    ) == [(dt.date(2024, 2, 29), Decimal("1.50")), (dt.date(2024, 3, 1), Decimal("2.50"))]


def test_date_functions_on_date_columns_return_timestamps(
    snowflake_hook: SnowflakeHook, checks_table: str
) -> None:
    row = snowflake_hook.get_first(
        "SELECT DATEADD(day, 1, USAGE_DATE), DATE_TRUNC('month', USAGE_DATE), USAGE_DATE - 1, "
        f"DATEDIFF(day, USAGE_DATE, '2024-03-01'), DATEADD(day, 1, USAGE_DATE)::DATE FROM {checks_table} "
        "WHERE SERIES = 'b'"
    )

    # Snowflake returns DATE for the first two; fakesnow returns TIMESTAMP: cast with ::DATE in shared SQL
    assert row == (
        dt.datetime(2024, 1, 2),
        dt.datetime(2024, 1, 1),
        dt.date(2023, 12, 31),
        60,
        dt.date(2024, 1, 2),
    )


def test_temporary_tables_with_a_qualified_name_do_not_work(snowflake_hook: SnowflakeHook) -> None:
    with pytest.raises(ProgrammingError, match="TEMPORARY table names"):
        snowflake_hook.run("CREATE TEMPORARY TABLE SNOWSTORM.ANALYTICS.SCRATCH AS SELECT 1 AS A")


# --- persistence and stop (own emulator, restarted) -----------------------------------------------------------


@pytest.mark.slow
def test_data_survives_a_restart_and_stop_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, usage_rows: pd.DataFrame
) -> None:
    from airflow_provider_snowstorm.local.snowflake import airflow_environment

    def hook_for(handle: EmulatorHandle) -> SnowflakeHook:
        for name, value in airflow_environment(handle, conn_id="restart_check").items():
            monkeypatch.setenv(name, value)
        return SnowflakeHook(snowflake_conn_id="restart_check")

    first = start_emulator(tmp_path)
    try:
        seed_usage(hook_for(first), usage_rows)
    finally:
        assert stop_emulator(tmp_path)

    assert emulator_status(tmp_path) is None
    assert not (tmp_path / "snowflake" / "server.json").exists()
    assert not _process_exists(first.pid)
    assert not stop_emulator(tmp_path)

    # No port given: the restart reuses the last one, so connections written for it (env.sh) keep working.
    second = start_emulator(tmp_path)
    try:
        assert second.port == first.port
        assert hook_for(second).get_first(f"SELECT COUNT(*) FROM {USAGE_TABLE}") == (16,)
    finally:
        stop_emulator(second)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
