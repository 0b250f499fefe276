"""``AnomalyReportNotifier``: write the anomaly report (markdown + chart), post it to Slack, and email it.

The report file is always written (``notifications.base.ReportNotifier``), so the embedded default (no Slack) and
production run the same code; Slack (``notifications.slack``) is one more destination when a ``slack`` connection
(the Slack provider's own type, token as password, optional ``base_url``/``timeout`` extras) exists, and email
(``notifications.email``) when ``email_to`` is given. Other channels go in ``channels=[...]``.

Use it as a task callback on a task downstream of the (mapped) scoring task::

    report = EmptyOperator(
        task_id="report",
        on_success_callback=AnomalyReportNotifier(
            score_task_id="score",
            report_path="/data/snowstorm/reports/{{ ds }}",
            slack_conn_id="slack_api_default",
            channel="#finops-alerts",
        ),
    )

or from inside a task: ``AnomalyReportNotifier(results=results, ...).send(context)`` (returns a
:class:`ReportDelivery`), or the shortcut :func:`send_anomaly_report`.

Slack delivery is idempotent per report and DAG run: every part that Slack accepted (each message of a long report,
then the chart) is recorded in a small ledger file beside the report (``slack_delivery.json``, keyed by DAG, run,
task, map index and channel, with each part's digest and Slack ``ts``). A task retry after a failure on part *k*
posts only the parts not yet accepted, so nobody sees part 1 twice. Keep ``report_path`` on storage the retry can
read (the default, per run, is; use an ``ObjectStoragePath`` when workers do not share a disk).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_snowstorm.core.report import DEFAULT_MAX_PANELS, DEFAULT_TITLE
from airflow_provider_snowstorm.notifications.base import (
    CHART_FILENAME,
    DEFAULT_REPORT_DIR,
    MARKDOWN_FILENAME,
    AnomalyReportError,
    ReportChannel,
    ReportDelivery,
    ReportNotifier,
)
from airflow_provider_snowstorm.notifications.slack import (
    DEFAULT_MAX_RETRY_AFTER,
    LEDGER_FILENAME,
    SlackChannel,
    SlackDeliveryError,
    default_retry_handlers,
    retry_after_seconds,
)

if TYPE_CHECKING:
    import os

    import pandas as pd
    from airflow.sdk import Context, ObjectStoragePath
    from slack_sdk.http_retry import RetryHandler

    from airflow_provider_snowstorm.notifications.slack_layout import SlackLimits

__all__ = [
    "CHART_FILENAME",
    "DEFAULT_MAX_RETRY_AFTER",
    "DEFAULT_REPORT_DIR",
    "LEDGER_FILENAME",
    "MARKDOWN_FILENAME",
    "AnomalyReportError",
    "AnomalyReportNotifier",
    "ReportDelivery",
    "SlackDeliveryError",
    "default_retry_handlers",
    "retry_after_seconds",
    "send_anomaly_report",
]


class AnomalyReportNotifier(ReportNotifier):
    """Render the anomaly report from scoring results, write it to ``report_path``, post it to Slack and email it.

    Takes every parameter of :class:`~airflow_provider_snowstorm.notifications.base.ReportNotifier` (``results``
    or ``score_task_id``, ``report_path``, ``usage``, ``channels``, ...), and:

    :param slack_conn_id: A Slack API connection (type ``slack``). Without it, or when the connection is not
        defined, nothing is posted to Slack.
    :param channel: Slack channel name or id to post to; required with ``slack_conn_id``.
    :param send_all_clear: Post (and email) a short all-clear when there are no anomalies (default: nothing).
    :param max_incidents: Incidents listed in Slack; the rest are summarised (the file lists all).
    :param retry_handlers: ``slack_sdk`` retry handlers; default :func:`default_retry_handlers`.
    :param max_retry_after: Longest ``Retry-After`` (seconds) to wait for on a rate limit; a longer one fails the
        delivery with a clear error instead of holding the worker (the task's own retry comes back later).
    :param email_to: Recipients of the report by email (through ``smtp_conn_id``); sent after Slack.
    :param smtp_conn_id: The SMTP provider's connection for ``email_to`` (default ``smtp_default``).
    """

    template_fields: Sequence[str] = (
        "results",
        "score_task_id",
        "report_path",
        "slack_conn_id",
        "channel",
        "title",
        "notes",
        "feedback_table",
        "email_to",
        "smtp_conn_id",
    )

    def __init__(
        self,
        *,
        results: Sequence[Any] | Any | str | None = None,
        score_task_id: str | None = None,
        report_path: str | os.PathLike[str] | ObjectStoragePath | None = None,
        slack_conn_id: str | None = None,
        channel: str | None = None,
        send_all_clear: bool = False,
        title: str = DEFAULT_TITLE,
        currency: str | None = None,
        max_incidents: int = 50,
        usage: pd.DataFrame | None = None,
        chart_max_panels: int = DEFAULT_MAX_PANELS,
        slack_limits: SlackLimits | None = None,
        timeout: int | None = None,
        retry_handlers: list[RetryHandler] | None = None,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        email_to: str | Sequence[str] | None = None,
        smtp_conn_id: str = "smtp_default",
        channels: Sequence[ReportChannel] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            results=results,
            score_task_id=score_task_id,
            report_path=report_path,
            channels=channels,
            title=title,
            currency=currency,
            usage=usage,
            chart_max_panels=chart_max_panels,
            **kwargs,
        )
        if slack_conn_id and not channel:
            raise ValueError(
                f"AnomalyReportNotifier needs a `channel` to post with slack_conn_id={slack_conn_id!r}"
            )
        self.slack_conn_id = slack_conn_id
        self.channel = channel
        self.send_all_clear = send_all_clear
        self.max_incidents = max_incidents
        self.slack_limits = slack_limits
        self.timeout = timeout
        self.retry_handlers = retry_handlers
        self.max_retry_after = max_retry_after
        self.email_to = email_to
        self.smtp_conn_id = smtp_conn_id
        self.delivery_channels()  # parameters checked now, not when the task ends

    def delivery_channels(self) -> list[ReportChannel]:
        """Slack (when ``slack_conn_id``), then email (when ``email_to``), then ``channels``; after templating."""
        from airflow_provider_snowstorm.notifications.email import EmailChannel

        built: list[ReportChannel] = [
            SlackChannel(
                slack_conn_id=self.slack_conn_id,
                channel=self.channel,
                send_all_clear=self.send_all_clear,
                max_incidents=self.max_incidents,
                limits=self.slack_limits,
                timeout=self.timeout,
                retry_handlers=self.retry_handlers,
                max_retry_after=self.max_retry_after,
            )
        ]
        if self.email_to:
            built.append(
                EmailChannel(
                    to=self.email_to, smtp_conn_id=self.smtp_conn_id, send_all_clear=self.send_all_clear
                )
            )
        return built + super().delivery_channels()


def send_anomaly_report(context: Context, **kwargs: Any) -> ReportDelivery:
    """Write and send the report from inside a task: ``send_anomaly_report(get_current_context(), ...)``."""
    return AnomalyReportNotifier(**kwargs).send(context)
