from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from airflow_provider_snowstorm.core.hourly_incidents import WarehouseIncident
from airflow_provider_snowstorm.notifications.warehouse_slack import WarehouseIncidentSlack
from tests.notifications import slack_api_server as fake_slack
from tests.notifications.slack_api_server import FakeSlackApi

slack_api_server = fake_slack.slack_api_server
slack_connection = fake_slack.slack_connection


@pytest.fixture
def incident() -> WarehouseIncident:
    hour = pd.Timestamp("2026-11-27 11:00")
    return WarehouseIncident(
        "PROD:ETL_WH",
        hour,
        hour + pd.Timedelta(hours=1),
        hour + pd.Timedelta(hours=2),
        True,
        24.0,
        3.0,
        8.0,
        3.0,
        "USD",
        3,
    )


def test_posted_once_then_updated_in_place(
    tmp_path: Path, incident: WarehouseIncident, slack_api_server: FakeSlackApi, slack_connection: str
) -> None:
    slack = WarehouseIncidentSlack(slack_conn_id=slack_connection, channel="#snowflake-costs")
    report = tmp_path / "warehouse_report.md"
    assert slack.deliver_incidents([incident], report)["posted"] == [incident.incident_id]
    later = replace(incident, last_hour=incident.last_hour + pd.Timedelta(hours=1), credits=32.0)
    # A new scoring run (or a retry) with the same incident a hour later: chat.update at the stored ts.
    again = WarehouseIncidentSlack(slack_conn_id=slack_connection, channel="#snowflake-costs")
    assert again.deliver_incidents([later], report)["updated"] == [incident.incident_id]
    assert again.deliver_incidents([later], report)["unchanged"] == [incident.incident_id]
    methods = [method for method, _ in slack_api_server.delivered]
    assert methods == ["chat.postMessage", "chat.update"]
    (post,) = slack_api_server.messages()
    update = slack_api_server.delivered[1][1]
    assert (update["channel"], update["ts"]) == (post["channel"], post["ts"])
    assert "32.0" in update["text"]
    assert "ETL_WH (account PROD)" in update["text"]


def test_without_slack_nothing_is_called(tmp_path: Path, incident: WarehouseIncident) -> None:
    slack = WarehouseIncidentSlack(slack_conn_id=None, channel=None)
    assert slack.deliver_incidents([incident], tmp_path / "warehouse_report.md") == {
        "posted": [],
        "updated": [],
        "unchanged": [],
    }
