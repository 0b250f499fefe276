"""The Slack channel on its own: a lazily built, cached SlackHook, and its parameters checked up front."""

from __future__ import annotations

import pytest

from airflow_provider_snowstorm.notifications.slack import SlackChannel
from tests.notifications import slack_api_server as fake_slack

slack_api_server = fake_slack.slack_api_server
slack_connection = fake_slack.slack_connection


def test_the_hook_is_built_lazily_and_cached(slack_connection: str) -> None:
    channel = SlackChannel(slack_conn_id=slack_connection, channel="#finops-alerts", timeout=5)
    assert "hook" not in vars(channel)
    hook = channel.hook
    assert hook is channel.hook
    assert hook.slack_conn_id == slack_connection
    assert hook.client is hook.client  # the provider caches its WebClient too


def test_parameters_are_checked_when_built() -> None:
    with pytest.raises(ValueError, match="needs a `channel`"):
        SlackChannel(slack_conn_id="slack_api_default", channel=None)
    with pytest.raises(ValueError, match="max_incidents"):
        SlackChannel(slack_conn_id=None, channel=None, max_incidents=0)
