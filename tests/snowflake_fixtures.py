"""Session fixtures: one local Snowflake emulator (fakesnow over TLS) and an Airflow connection to it.

Registered as a pytest plugin from tests/conftest.py; any test can ask for ``snowflake_hook`` (the stock
``SnowflakeHook``) or ``snowflake_conn_id`` (for operators). The emulator starts once, on first use, and is
stopped at the end of the session even when tests fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from airflow_provider_snowstorm.local.snowflake import (
    DEFAULT_CONN_ID,
    EmulatorHandle,
    airflow_environment,
    start_emulator,
    stop_emulator,
)

if TYPE_CHECKING:
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook


@pytest.fixture(scope="session")
def snowflake_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorHandle]:
    """A running emulator with its own state directory, stopped (process group killed) at session end."""
    pytest.importorskip("fakesnow", reason="needs the 'local' extra")
    state_dir = tmp_path_factory.mktemp("snowstorm-home")
    handle = start_emulator(state_dir, timeout=90.0)
    try:
        yield handle
    finally:
        stop_emulator(state_dir)


@pytest.fixture(scope="session")
def snowflake_conn_id(snowflake_emulator: EmulatorHandle) -> Iterator[str]:
    """``snowflake_default`` pointing at the emulator (``AIRFLOW_CONN_*`` and ``REQUESTS_CA_BUNDLE`` set)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in airflow_environment(snowflake_emulator, conn_id=DEFAULT_CONN_ID).items():
            patch.setenv(name, value)
        yield DEFAULT_CONN_ID


@pytest.fixture
def snowflake_hook(snowflake_conn_id: str) -> SnowflakeHook:
    """A fresh stock ``SnowflakeHook`` on the emulator (fresh: the hook caches its connection settings)."""
    from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook

    return SnowflakeHook(snowflake_conn_id=snowflake_conn_id)
