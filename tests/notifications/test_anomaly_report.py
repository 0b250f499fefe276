"""AnomalyReportNotifier: writes the report, and talks to Slack through the real slack_sdk over local HTTP."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_snowstorm.notifications.anomaly_report import (
    AnomalyReportError,
    AnomalyReportNotifier,
    SlackDeliveryError,
    send_anomaly_report,
)
from airflow_provider_snowstorm.notifications.slack_layout import SlackLimits
from tests.notifications import slack_api_server as fake_slack
from tests.notifications.slack_api_server import FakeSlackApi, set_slack_connection
from tests.scoring_results import make_result as build_result

# The reusable fake Slack Web API fixtures, made available to this module's tests.
slack_api_server = fake_slack.slack_api_server
slack_connection = fake_slack.slack_connection

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNEL = "#finops-alerts"


def make_result(series: str, values: list[float], expected: float, flags: list[int]) -> dict[str, Any]:
    """One scoring task's XCom, rows carrying the model and scoring time as the predictions table does."""
    return build_result(
        series,
        values,
        expected,
        flags,
        model_version="v2",
        model_name=f"snowstorm-{series}",
        scored_at="2026-01-08T06:00:00+00:00",
    )


@pytest.fixture
def results() -> list[dict[str, Any]]:
    return [
        make_result("compute", [100, 100, 400, 300, 100], 100, [0, 0, 1, 1, 0]),
        make_result("storage", [20, 20, 20, 20, 20], 20, [0, 0, 0, 0, 0]),
    ]


@pytest.fixture
def clean_results() -> list[dict[str, Any]]:
    return [make_result("storage", [20, 20, 20], 20, [0, 0, 0])]


class FakeTaskInstance:
    """Just ``xcom_pull``, as a plain object: Jinja's sandbox refuses to call mocks."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.pulls: list[dict[str, Any]] = []

    def xcom_pull(self, **kwargs: Any) -> object:
        self.pulls.append(kwargs)
        return self.value


@pytest.fixture
def context(results) -> dict[str, Any]:
    """The parts of a task context the notifier uses: ti (for XCom pulls), ds and run_id for templates."""
    return {
        "ti": FakeTaskInstance(results),
        "ds": "2026-01-08",
        "run_id": "scheduled__2026-01-08T06:00:00+00:00",
    }


def notifier(tmp_path, **kwargs: Any) -> AnomalyReportNotifier:
    kwargs.setdefault("report_path", str(tmp_path / "reports" / "{{ ds }}"))
    return AnomalyReportNotifier(**kwargs)


# -- the report file ----------------------------------------------------------------------------------------


def test_as_a_callback_it_writes_report_and_chart_to_the_templated_path(tmp_path, context, results) -> None:
    report_notifier = notifier(tmp_path, results=results)
    report_notifier(context)  # how Airflow invokes an on_success_callback

    folder = tmp_path / "reports" / "2026-01-08"
    markdown = (folder / "anomaly_report.md").read_text()
    assert markdown.startswith(
        "# Snowflake spend anomalies: 1 incident in 1 cost category, est. extra cost +500.00"
    )
    assert "![Anomalies](anomaly_chart.png)" in markdown
    assert (folder / "anomaly_chart.png").read_bytes().startswith(PNG_SIGNATURE)
    assert report_notifier.delivery.markdown_path == str(folder / "anomaly_report.md")
    assert report_notifier.delivery.slack_messages == 0


def test_a_markdown_report_path_puts_the_chart_beside_it(tmp_path, context, results) -> None:
    delivery = notifier(tmp_path, results=results, report_path=str(tmp_path / "r" / "{{ ds }}.md")).send(
        context
    )
    assert delivery.markdown_path == str(tmp_path / "r" / "2026-01-08.md")
    assert delivery.chart_path == str(tmp_path / "r" / "2026-01-08.png")
    assert (tmp_path / "r" / "2026-01-08.png").exists()


def test_report_path_can_be_an_object_storage_path(tmp_path, context, results) -> None:
    target = ObjectStoragePath(f"file://{tmp_path}/store")
    delivery = notifier(tmp_path, results=results, report_path=target).send(context)
    assert delivery.markdown_path.startswith("file://")
    assert (tmp_path / "store" / "anomaly_report.md").read_text().startswith("# Snowflake spend anomalies")


def test_results_template_is_rendered_and_parsed(tmp_path, context) -> None:
    delivery = notifier(tmp_path, results="{{ ti.xcom_pull(task_ids='score', key='return_value') }}").send(
        context
    )
    assert delivery.incidents == 1
    assert context["ti"].pulls == [{"task_ids": "score", "key": "return_value"}]


def test_score_task_id_pulls_mapped_results_and_accepts_a_single_one(tmp_path, context, results) -> None:
    context["ti"].value = results[0]  # one map index arrives as a dict, not a list
    delivery = send_anomaly_report(context, score_task_id="score", report_path=str(tmp_path))
    assert delivery.incidents == 1
    assert context["ti"].pulls == [{"task_ids": "score", "key": "return_value"}]


def test_missing_xcom_is_a_clear_error(tmp_path, context) -> None:
    context["ti"].value = None
    with pytest.raises(AnomalyReportError, match="XCom\\) of task 'score' is empty"):
        notifier(tmp_path, score_task_id="score").send(context)


def test_results_or_score_task_id_is_required() -> None:
    with pytest.raises(ValueError, match="needs `results` or `score_task_id`"):
        AnomalyReportNotifier(report_path="/tmp/x")


def test_slack_needs_a_channel() -> None:
    with pytest.raises(ValueError, match="needs a `channel`"):
        AnomalyReportNotifier(results=[], slack_conn_id="slack_api_default")


# -- Slack --------------------------------------------------------------------------------------------------


def test_posts_the_report_and_uploads_the_chart(
    tmp_path, context, results, slack_api_server: FakeSlackApi, slack_connection: str
) -> None:
    delivery = notifier(tmp_path, results=results, slack_conn_id=slack_connection, channel=CHANNEL).send(
        context
    )

    assert [r.method for r in slack_api_server.requests] == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    (post,) = slack_api_server.calls("chat.postMessage")
    assert post.headers["authorization"] == "Bearer xoxb-snowstorm-test-token"
    assert post.params["channel"] == CHANNEL
    assert post.params["text"].startswith("Snowflake spend anomalies: 1 incident")
    assert any(
        "compute" in b["text"]["text"] and "+500.00" in b["text"]["text"] for b in post.params["blocks"]
    )
    (upload,) = slack_api_server.calls("upload")
    assert upload.body == (tmp_path / "reports" / "2026-01-08" / "anomaly_chart.png").read_bytes()
    (complete,) = slack_api_server.calls("files.completeUploadExternal")
    assert complete.params["channel_id"] == "C0FINOPS01"
    assert (delivery.slack_channel, delivery.slack_messages, delivery.chart_uploaded) == (
        "C0FINOPS01",
        1,
        True,
    )


def test_a_long_report_is_posted_as_several_messages(
    tmp_path, context, slack_api_server: FakeSlackApi, slack_connection: str
) -> None:
    many = [make_result(f"warehouse_{n:02d}", [10, 50 + n, 10], 10, [0, 1, 0]) for n in range(30)]
    limits = SlackLimits(max_blocks=3, max_section_chars=500, max_message_chars=1000)
    delivery = notifier(
        tmp_path,
        results=many,
        slack_conn_id=slack_connection,
        channel=CHANNEL,
        slack_limits=limits,
        chart_max_panels=1,
    ).send(context)

    posts = slack_api_server.calls("chat.postMessage")
    assert delivery.slack_messages == len(posts) > 1
    assert [p.params["text"].rsplit(" ", 1)[-1] for p in posts][-1] == f"{len(posts)}/{len(posts)})"


def test_rate_limit_is_retried_after_retry_after(
    tmp_path, context, results, slack_api_server: FakeSlackApi, slack_connection: str
) -> None:
    slack_api_server.fail_next("chat.postMessage", status=429, headers={"Retry-After": "0"})
    started = time.monotonic()
    delivery = notifier(tmp_path, results=results, slack_conn_id=slack_connection, channel=CHANNEL).send(
        context
    )

    assert len(slack_api_server.calls("chat.postMessage")) == 2
    assert delivery.slack_messages == 1
    assert time.monotonic() - started < 5


def test_invalid_token_fails_clearly_without_leaking_it(
    tmp_path, context, results, slack_api_server: FakeSlackApi, monkeypatch, caplog, capfd
) -> None:
    secret = "xoxb-revoked-0123456789-secret"
    set_slack_connection(monkeypatch, slack_api_server, token=secret, conn_id="slack_finops")
    caplog.set_level(logging.DEBUG)

    with pytest.raises(SlackDeliveryError) as failure:
        notifier(tmp_path, results=results, slack_conn_id="slack_finops", channel=CHANNEL).send(context)

    message = str(failure.value)
    assert "'slack_finops'" in message
    assert "invalid_auth" in message
    assert secret not in message
    assert failure.value.__cause__ is None
    assert failure.value.__context__ is None
    # Airflow logs through structlog to stdout, slack_sdk through stdlib logging: check both.
    output = capfd.readouterr()
    assert "Report written to" in output.out + caplog.text, "the notifier's own log line should be captured"
    assert secret not in caplog.text
    assert secret not in output.out + output.err
    assert (tmp_path / "reports" / "2026-01-08" / "anomaly_report.md").exists()


def test_no_anomalies_sends_nothing(
    tmp_path, context, clean_results, slack_api_server: FakeSlackApi, slack_connection: str
) -> None:
    delivery = notifier(
        tmp_path, results=clean_results, slack_conn_id=slack_connection, channel=CHANNEL
    ).send(context)

    assert slack_api_server.requests == []
    assert delivery.slack_messages == 0
    assert delivery.chart_path is None
    assert "all clear" in (tmp_path / "reports" / "2026-01-08" / "anomaly_report.md").read_text()


def test_no_anomalies_sends_an_all_clear_when_asked(
    tmp_path, context, clean_results, slack_api_server: FakeSlackApi, slack_connection: str
) -> None:
    notifier(
        tmp_path, results=clean_results, slack_conn_id=slack_connection, channel=CHANNEL, send_all_clear=True
    ).send(context)

    assert [r.method for r in slack_api_server.requests] == ["chat.postMessage"]
    assert "all clear" in slack_api_server.requests[0].params["text"]


def test_undefined_slack_connection_only_writes_the_report(
    tmp_path, context, results, monkeypatch, capfd
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_NOWHERE", raising=False)

    delivery = notifier(tmp_path, results=results, slack_conn_id="slack_nowhere", channel=CHANNEL).send(
        context
    )

    assert delivery.slack_messages == 0
    assert (tmp_path / "reports" / "2026-01-08" / "anomaly_report.md").exists()
    assert "Slack connection 'slack_nowhere' is not defined" in capfd.readouterr().out


# -- idempotent delivery across task retries ----------------------------------------------------------------

LONG_REPORT_LIMITS = SlackLimits(max_blocks=3, max_section_chars=500, max_message_chars=1000)


def long_results() -> list[dict[str, Any]]:
    return [make_result(f"warehouse_{n:02d}", [10, 50 + n, 10], 10, [0, 1, 0]) for n in range(12)]


def delivered_parts(api: FakeSlackApi) -> list[str]:
    """What users see in Slack: every accepted message's text, then ``chart`` for each completed upload."""
    return [params["text"] if method == "chat.postMessage" else "chart" for method, params in api.delivered]


def expected_parts(tmp_path, context) -> list[str]:
    """The parts of one clean delivery of the long report (on a separate fake server)."""
    api = FakeSlackApi().start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            set_slack_connection(patch, api, token=fake_slack.VALID_TOKEN, conn_id="slack_clean")
            notifier(
                tmp_path / "clean",
                results=long_results(),
                slack_conn_id="slack_clean",
                channel=CHANNEL,
                slack_limits=LONG_REPORT_LIMITS,
                chart_max_panels=1,
            ).send(context)
        return delivered_parts(api)
    finally:
        api.stop()


def test_a_clean_long_delivery_has_several_messages_and_the_chart(tmp_path, context) -> None:
    parts = expected_parts(tmp_path, context)
    assert len(parts) == 5  # the parametrisation below fails each of them in turn
    assert parts[-1] == "chart"


@pytest.mark.parametrize("failing_part", range(1, 6))  # 4 messages, then the chart
def test_a_retry_after_a_failure_on_any_part_posts_no_duplicates(
    tmp_path, context, slack_api_server: FakeSlackApi, slack_connection: str, failing_part: int
) -> None:
    expected = expected_parts(tmp_path, context)
    messages = len(expected) - 1
    if failing_part > messages + 1:
        pytest.fail(f"the long report has only {messages} messages + chart; lower the parametrisation")
    if failing_part <= messages:
        slack_api_server.fail_call("chat.postMessage", failing_part)
    else:
        slack_api_server.fail_call("files.completeUploadExternal", 1)

    def attempt() -> Any:
        return notifier(
            tmp_path,
            results=long_results(),
            slack_conn_id=slack_connection,
            channel=CHANNEL,
            slack_limits=LONG_REPORT_LIMITS,
            chart_max_panels=1,
        ).send(context)

    with pytest.raises(SlackDeliveryError, match="fatal_error"):
        attempt()
    assert delivered_parts(slack_api_server) == expected[: failing_part - 1]

    retry = attempt()  # the task's retry: a fresh notifier, same run

    assert delivered_parts(slack_api_server) == expected
    assert retry.slack_already_posted == failing_part - 1
    again = attempt()  # a third try after success posts nothing at all
    assert delivered_parts(slack_api_server) == expected
    assert again.slack_already_posted == len(expected)


def test_another_dag_run_posts_its_report_again(
    tmp_path, context, results, slack_api_server: FakeSlackApi, slack_connection: str
) -> None:
    kwargs = {"results": results, "slack_conn_id": slack_connection, "channel": CHANNEL}
    notifier(tmp_path, report_path=str(tmp_path / "shared"), **kwargs).send(context)
    next_run = {**context, "run_id": "scheduled__2026-01-09T06:00:00+00:00"}
    notifier(tmp_path, report_path=str(tmp_path / "shared"), **kwargs).send(next_run)

    assert len(slack_api_server.calls("chat.postMessage")) == 2


def test_retry_after_beyond_the_cap_fails_fast_and_clearly(
    tmp_path, context, results, slack_api_server: FakeSlackApi, slack_connection: str
) -> None:
    slack_api_server.fail_next("chat.postMessage", status=429, headers={"Retry-After": "20"})
    started = time.monotonic()

    with pytest.raises(SlackDeliveryError, match=r"wait 20 s, more than max_retry_after=2 s"):
        notifier(
            tmp_path, results=results, slack_conn_id=slack_connection, channel=CHANNEL, max_retry_after=2
        ).send(context)

    assert time.monotonic() - started < 2
    assert len(slack_api_server.calls("chat.postMessage")) == 1


def test_retry_after_within_the_cap_is_waited_for(
    tmp_path, context, results, slack_api_server: FakeSlackApi, slack_connection: str
) -> None:
    slack_api_server.fail_next("chat.postMessage", status=429, headers={"Retry-After": "1"})
    started = time.monotonic()

    delivery = notifier(
        tmp_path, results=results, slack_conn_id=slack_connection, channel=CHANNEL, max_retry_after=2
    ).send(context)

    assert time.monotonic() - started >= 1
    assert (delivery.slack_messages, len(slack_api_server.calls("chat.postMessage"))) == (1, 2)
