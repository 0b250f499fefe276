from __future__ import annotations

import pytest

from airflow_provider_snowstorm.utils.sql import IdentifierError, validate_identifier, validate_table_name


@pytest.mark.parametrize("name", ["USAGE_DATE", "total_usage", "_x1", "COL$", '"Mixed Case"'])
def test_valid_identifiers_pass_unchanged(name: str) -> None:
    assert validate_identifier(name) == name


@pytest.mark.parametrize("name", ["1abc", "a b", "a;drop table t", '"a"b"', "", "a-b", "x'--"])
def test_invalid_identifiers_are_refused(name: str) -> None:
    with pytest.raises(IdentifierError, match="not a valid SQL identifier"):
        validate_identifier(name, what="column")


@pytest.mark.parametrize("name", ["T", "S.T", "DB.S.T", 'DB."my schema".T'])
def test_valid_table_names(name: str) -> None:
    assert validate_table_name(name) == name


@pytest.mark.parametrize("name", ["DB.S.T.X", "DB..T", "T; DELETE FROM X", "DB.S.", ".T"])
def test_invalid_table_names(name: str) -> None:
    with pytest.raises(IdentifierError):
        validate_table_name(name)


@pytest.mark.parametrize("name", ["USAGE_DATE\n", '"quoted"\n', "T\n"])
def test_a_trailing_newline_is_not_an_identifier(name: str) -> None:
    with pytest.raises(IdentifierError):
        validate_identifier(name)
    with pytest.raises(IdentifierError):
        validate_table_name(f"DB.S.{name}")


def test_split_table_name_gives_the_validated_parts() -> None:
    from airflow_provider_snowstorm.utils.sql import split_table_name

    assert split_table_name('DB."my schema".T') == ("DB", '"my schema"', "T")
    with pytest.raises(IdentifierError):
        split_table_name("A.B.C.D")


def test_a_transaction_commits_together_or_rolls_back(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from airflow.providers.sqlite.hooks.sqlite import SqliteHook

    from airflow_provider_snowstorm.utils.sql import replace_rows, transaction

    monkeypatch.setenv(
        "AIRFLOW_CONN_TX_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "t.db")})
    )
    hook = SqliteHook(sqlite_conn_id="tx_db")
    hook.run("CREATE TABLE T (A INTEGER)")
    replace_rows(hook, "T", ["A"], [(1,), (2,)], where="1 = 1")

    def failing_write() -> None:
        with transaction(hook, lock_table="T") as cursor:
            cursor.execute("DELETE FROM T")
            raise RuntimeError("mid-write")

    with pytest.raises(RuntimeError, match="mid-write"):
        failing_write()
    assert sorted(row[0] for row in hook.get_records("SELECT A FROM T")) == [1, 2]
