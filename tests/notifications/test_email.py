"""The email channel: the report sent through Airflow's SmtpHook to a real (local) SMTP server."""

from __future__ import annotations

import email
import email.policy
import html
import json
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from airflow_provider_snowstorm.notifications.anomaly_report import AnomalyReportNotifier
from airflow_provider_snowstorm.notifications.email import EmailChannel
from tests.notifications import slack_api_server as fake_slack
from tests.notifications.test_anomaly_report import CHANNEL, PNG_SIGNATURE, make_result

slack_api_server = fake_slack.slack_api_server
slack_connection = fake_slack.slack_connection

SENDER = "snowstorm@example.com"
RECIPIENTS = ["finops@example.com", "oncall@example.com"]


class Inbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """A local SMTP server on a free port, reachable as Airflow connection ``smtp_test`` (plain SMTP, no login)."""
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        connection = {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": port,
            "extra": {"from_email": SENDER, "disable_ssl": True, "disable_tls": True, "retry_limit": 0},
        }
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", json.dumps(connection))
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def context() -> dict[str, Any]:
    return {"ds": "2026-01-08", "run_id": "scheduled__2026-01-08T06:00:00+00:00"}


def spike_results() -> list[dict[str, Any]]:
    return [
        make_result("compute", [100, 100, 400, 300, 100], 100, [0, 0, 1, 1, 0]),
        make_result("storage", [20, 20, 20, 20, 20], 20, [0, 0, 0, 0, 0]),
    ]


def body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html", "plain"))
    assert part is not None
    return part.get_content()


def test_the_report_is_emailed_with_its_headline_as_subject(tmp_path, context, smtp_server: Inbox) -> None:
    notifier = AnomalyReportNotifier(
        results=spike_results(),
        report_path=str(tmp_path / "reports"),
        email_to=RECIPIENTS,
        smtp_conn_id="smtp_test",
    )
    delivery = notifier.send(context)

    ((recipients, message),) = smtp_server.messages
    assert recipients == RECIPIENTS
    assert message["From"] == SENDER
    assert (
        message["Subject"]
        == "Snowflake spend anomalies: 1 incident in 1 cost category, est. extra cost +500.00"
    )
    body = body_text(message)
    markdown = (tmp_path / "reports" / "anomaly_report.md").read_text()
    assert body.startswith("<pre")
    assert "# Snowflake spend anomalies: 1 incident in 1 cost category" in body
    assert "| 1 | compute | 2026-01-03 → 2026-01-04 | 2 | spike |" in body
    (chart,) = [part for part in message.iter_attachments() if part.get_filename() == "anomaly_chart.png"]
    assert chart.get_content().startswith(PNG_SIGNATURE)
    assert delivery.channels["email"] == {"to": RECIPIENTS, "attachments": 1}
    assert html.unescape(body) == f"{body[: body.index('>') + 1]}{markdown}</pre>"


def test_the_body_is_the_report_file(tmp_path, context, smtp_server: Inbox) -> None:
    channel = EmailChannel(to="finops@example.com", smtp_conn_id="smtp_test")
    AnomalyReportNotifier(results=spike_results(), report_path=str(tmp_path), channels=[channel]).send(
        context
    )
    ((_, message),) = smtp_server.messages
    body = html.unescape(body_text(message))
    assert (tmp_path / "anomaly_report.md").read_text() in body


def test_no_email_without_anomalies_unless_all_clear_is_asked(tmp_path, context, smtp_server: Inbox) -> None:
    clean = [make_result("storage", [20, 20, 20], 20, [0, 0, 0])]
    channel = EmailChannel(to="finops@example.com", smtp_conn_id="smtp_test")
    AnomalyReportNotifier(results=clean, report_path=str(tmp_path / "a"), channels=[channel]).send(context)
    assert smtp_server.messages == []

    channel = EmailChannel(to="finops@example.com", smtp_conn_id="smtp_test", send_all_clear=True)
    AnomalyReportNotifier(results=clean, report_path=str(tmp_path / "b"), channels=[channel]).send(context)
    ((_, message),) = smtp_server.messages
    assert message["Subject"] == "Snowflake spend anomalies: all clear"
    assert list(message.iter_attachments()) == []


def test_email_goes_after_slack_and_both_are_recorded(
    tmp_path, context, smtp_server: Inbox, slack_api_server, slack_connection
) -> None:
    delivery = AnomalyReportNotifier(
        results=spike_results(),
        report_path=str(tmp_path / "reports"),
        slack_conn_id=slack_connection,
        channel=CHANNEL,
        email_to="finops@example.com",
        smtp_conn_id="smtp_test",
    ).send(context)
    assert list(delivery.channels) == ["slack", "email"]
    assert delivery.slack_messages == 1
    assert delivery.chart_uploaded
    assert len(smtp_server.messages) == 1


def test_a_recipient_is_required() -> None:
    with pytest.raises(ValueError, match="at least one recipient"):
        EmailChannel(to=[])


def test_the_hook_is_built_lazily_and_cached() -> None:
    channel = EmailChannel(to="a@example.com", smtp_conn_id="smtp_test")
    assert "hook" not in vars(channel)
    assert channel.hook is channel.hook
