"""Bulk replace on the Snowflake emulator: JSON multi-row inserts inside the delete-and-insert transaction."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from airflow_provider_snowstorm.utils.sql import BULK_BATCH_ROWS, replace_rows

TABLE = "BULK_PREDICTIONS"
COLUMNS = ["USAGE_DATE", "SERIES", "SCORE", "IS_ANOMALY", "SCORED_AT"]
TYPES = {
    "USAGE_DATE": "DATE NOT NULL",
    "SERIES": "VARCHAR NOT NULL",
    "SCORE": "FLOAT",
    "IS_ANOMALY": "BOOLEAN",
    "SCORED_AT": "TIMESTAMP",
}
ROWS = 2 * BULK_BATCH_ROWS + 17  # three statements, the last one short


def _rows(score: float, *, bad_row: int | None = None) -> list[tuple]:
    stamp = datetime(2025, 7, 2, 3, 4, 5)
    rows = [
        (date(2025, 7, 1), f"s{i:05d}", score + i if i % 100 else float("nan"), i % 7 == 0, stamp)
        for i in range(ROWS)
    ]
    if bad_row is not None:
        rows[bad_row] = ("not a date", *rows[bad_row][1:])
    return rows


@pytest.fixture
def hook(snowflake_hook):
    snowflake_hook.run(f"DROP TABLE IF EXISTS {TABLE}")
    snowflake_hook.run(
        f"CREATE TABLE {TABLE} ({', '.join(f'{name} {kind}' for name, kind in TYPES.items())})"
    )
    return snowflake_hook


def _replace(hook, rows: list[tuple]) -> int:
    return replace_rows(
        hook, TABLE, COLUMNS, rows, where="USAGE_DATE = %s", where_parameters=(date(2025, 7, 1),), types=TYPES
    )


def test_bulk_rows_arrive_whole_and_typed(hook) -> None:
    assert _replace(hook, _rows(1.0)) == ROWS
    count, nulls, anomalies, first, stamp, total = hook.get_first(
        f"SELECT COUNT(*), COUNT(*) - COUNT(SCORE), SUM(IFF(IS_ANOMALY, 1, 0)), MIN(USAGE_DATE), MAX(SCORED_AT), "
        f"SUM(SCORE) FROM {TABLE}"
    )
    assert (count, nulls, anomalies) == (ROWS, len(range(0, ROWS, 100)), len(range(0, ROWS, 7)))
    assert first == date(2025, 7, 1)
    assert stamp == datetime(2025, 7, 2, 3, 4, 5)
    assert total == pytest.approx(sum(1.0 + i for i in range(ROWS) if i % 100))


def test_rewriting_replaces_rows_and_a_failed_write_leaves_them(hook) -> None:
    _replace(hook, _rows(1.0))
    _replace(hook, _rows(2.0))
    assert hook.get_first(f"SELECT COUNT(*), COUNT(DISTINCT SERIES), MIN(SCORE) FROM {TABLE}") == (
        ROWS,
        ROWS,
        3.0,
    )
    # The last statement fails (a value that is no date) after the delete and two batches have run.
    with pytest.raises(Exception, match=r"(?i)date|conversion|cast"):
        _replace(hook, _rows(5.0, bad_row=ROWS - 1))
    assert hook.get_first(f"SELECT COUNT(*), MIN(SCORE) FROM {TABLE}") == (ROWS, 3.0)


def test_a_type_that_is_not_plain_is_refused_before_writing(hook) -> None:
    with pytest.raises(ValueError, match="not a plain SQL type"):
        replace_rows(
            hook,
            TABLE,
            COLUMNS,
            _rows(1.0),
            where="1 = 1",
            types={**TYPES, "SCORE": "FLOAT); DROP TABLE X; --"},
        )
    assert hook.get_first(f"SELECT COUNT(*) FROM {TABLE}") == (0,)
