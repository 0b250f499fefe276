"""The local pipeline's ``env.sh``: a fresh shell that sources it gets the set-up the main job ran with."""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path

import pytest

from airflow_provider_snowstorm.local.pipeline import (
    JWT_SECRET_BYTES,
    LOGGING_LEVEL_VARIABLE,
    SLACK_CONNECTION_VARIABLE,
    LocalSetup,
    shell_settings,
    strengthen_jwt_secret,
    write_env_file,
)


def _sourced(env_file: Path, name: str) -> str:
    """``$name`` in a fresh, minimal shell after ``source env_file``."""
    script = f'source {env_file} && printf "%s" "${{{name}-unset}}"'
    done = subprocess.run(
        ["bash", "-c", script], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True
    )
    return done.stdout


@pytest.mark.parametrize("level", ["organization", "account"])
def test_env_file_gives_the_ui_the_series_level_and_no_slack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, level: str
) -> None:
    """The UI's DAGs must model what the main job trained: at account level there are no organisation models."""
    monkeypatch.setenv("SNOWSTORM_SERIES_LEVEL", level)
    monkeypatch.delenv(SLACK_CONNECTION_VARIABLE, raising=False)
    setup = LocalSetup(home=tmp_path, dags_folder=tmp_path / "dags")
    monkeypatch.setenv(LOGGING_LEVEL_VARIABLE, "WARNING")  # the main job's quiet terminal
    write_env_file(setup, shell_settings(setup))
    assert _sourced(setup.env_file, "SNOWSTORM_SERIES_LEVEL") == level
    assert _sourced(setup.env_file, "SNOWSTORM_SLACK_CONN_ID") == ""
    # Task logs in the UI and `airflow dags test` keep Airflow's level: WARNING left 151 of 152 log files empty.
    assert _sourced(setup.env_file, LOGGING_LEVEL_VARIABLE) == "unset"
    # A CLI command beside the UI's scheduler waits for the SQLite file instead of failing "database is locked".
    path = _sourced(setup.env_file, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS")
    module, name = path.rsplit(".", 1)
    assert getattr(importlib.import_module(module), name)["timeout"] >= 30


def test_a_configured_slack_connection_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SLACK_CONNECTION_VARIABLE, '{"conn_type": "slack", "password": "xoxb-test"}')
    monkeypatch.delenv("SNOWSTORM_SERIES_LEVEL", raising=False)
    settings = shell_settings(LocalSetup(home=tmp_path, dags_folder=tmp_path))
    assert settings["SNOWSTORM_SERIES_LEVEL"] == "organization"
    assert "SNOWSTORM_SLACK_CONN_ID" not in settings


def test_a_short_jwt_secret_is_replaced_once_by_a_long_one(tmp_path: Path) -> None:
    config = tmp_path / "airflow.cfg"
    config.write_text("[api_auth]\n# the secret\njwt_secret = C8Lq5aI5i/Xj3e2ad9Ie7g==\njwt_leeway = 10\n")
    assert strengthen_jwt_secret(config)
    lines = config.read_text().splitlines()
    secret = lines[2].removeprefix("jwt_secret = ")
    assert len(secret.encode()) >= JWT_SECRET_BYTES
    assert lines[:2] + lines[3:] == ["[api_auth]", "# the secret", "jwt_leeway = 10"]
    assert not strengthen_jwt_secret(config)
    assert config.read_text().splitlines()[2] == f"jwt_secret = {secret}"
