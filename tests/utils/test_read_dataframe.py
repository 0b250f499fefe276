from __future__ import annotations

import warnings
from typing import Any

import pandas as pd
import pytest

from airflow_provider_snowstorm.utils.sql import read_dataframe

PANDAS_DBAPI_WARNING = (
    "pandas only supports SQLAlchemy connectable (engine/connection) or database string URI or sqlite3 DBAPI2 "
    "connection. Other DBAPI2 objects are not tested. Please consider using SQLAlchemy."
)


class WarningHook:
    """Stands in for common.sql's get_df on a non-sqlite DBAPI connection: pandas warns, the frame is fine."""

    def __init__(self, message: str = PANDAS_DBAPI_WARNING) -> None:
        self.message = message
        self.calls: list[tuple[str, Any, str]] = []

    def get_df(self, sql: str, parameters: Any = None, df_type: str = "pandas") -> pd.DataFrame:
        self.calls.append((sql, parameters, df_type))
        warnings.warn(self.message, UserWarning, stacklevel=2)
        return pd.DataFrame({"A": [1]})


def test_read_dataframe_silences_only_pandas_dbapi_warning() -> None:
    hook = WarningHook()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame = read_dataframe(hook, "SELECT 1 AS A", ["x"])  # type: ignore[arg-type]
    assert frame["A"].tolist() == [1]
    assert hook.calls == [("SELECT 1 AS A", ["x"], "pandas")]


def test_read_dataframe_keeps_other_warnings() -> None:
    with pytest.warns(UserWarning, match="something else"):
        read_dataframe(WarningHook("something else"), "SELECT 1")  # type: ignore[arg-type]
