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
