"""``AnomalyReportNotifier``: write the anomaly report (markdown + chart) and post it to Slack.

The report file is always written, so the embedded default (no Slack) and production run the same code;
Slack is one more destination when a ``slack`` connection (the Slack provider's own type, token as password,
optional ``base_url``/``timeout`` extras) exists.

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
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseHook, BaseNotifier, ObjectStoragePath
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_snowstorm.core.report import (
    DEFAULT_MAX_PANELS,
    DEFAULT_TITLE,
    AnomalyReport,
    SlackLimits,
    build_report,
    headline,
    render_markdown,
    slack_messages,
)

if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context
    from slack_sdk.http_retry import RetryHandler

MARKDOWN_FILENAME = "anomaly_report.md"
CHART_FILENAME = "anomaly_chart.png"
DEFAULT_REPORT_DIR = os.path.join("snowstorm", "reports", "{{ ti.dag_id }}", "{{ run_id }}")

_AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"})

T = TypeVar("T")


class AnomalyReportError(RuntimeError):
    """The scoring results could not be turned into a report."""


class SlackDeliveryError(RuntimeError):
    """Slack refused or could not take the report; names the connection and Slack's error, never the token."""


@dataclass(frozen=True)
class ReportDelivery:
    """Where the report went."""

    markdown_path: str
    chart_path: str | None
    incidents: int
    slack_channel: str | None = None
    """The channel id Slack posted to, or None when nothing was sent."""
    slack_messages: int = 0
    chart_uploaded: bool = False


def default_retry_handlers() -> list[RetryHandler]:
    """Retry rate limits (honouring ``Retry-After``), dropped connections and Slack's 500/503 answers."""
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )

    return [
        RateLimitErrorRetryHandler(max_retry_count=3),
        ConnectionErrorRetryHandler(max_retry_count=2),
        ServerErrorRetryHandler(max_retry_count=2),
    ]


class AnomalyReportNotifier(BaseNotifier):
    """Render the anomaly report from scoring results, write it to ``report_path`` and post it to Slack.

    :param results: The scoring tasks' results (one dict per series), or a Jinja string that renders to
        them, e.g. ``"{{ ti.xcom_pull(task_ids='score', key='return_value') }}"`` (the rendered string is
        parsed back).
    :param score_task_id: Instead of ``results``: pull the return values of this (mapped) task from the
        context's task instance.
    :param report_path: Folder for ``anomaly_report.md`` and ``anomaly_chart.png``, or a ``.md`` file path
        (the chart goes beside it). Local path, URL string or ``ObjectStoragePath``; templated. Default:
        ``$AIRFLOW_HOME/snowstorm/reports/<dag_id>/<run_id>``.
    :param slack_conn_id: A Slack API connection (type ``slack``). Without it, or when the connection is not
        defined, only the file is written.
    :param channel: Slack channel name or id to post to; required with ``slack_conn_id``.
    :param send_all_clear: Post a short all-clear message when there are no anomalies (default: post nothing).
    :param max_incidents: Incidents listed in Slack; the rest are summarised (the file lists all).
    :param retry_handlers: ``slack_sdk`` retry handlers; default :func:`default_retry_handlers`.
    """

    template_fields: Sequence[str] = (
        "results",
        "score_task_id",
        "report_path",
        "slack_conn_id",
        "channel",
        "title",
    )

    def __init__(
        self,
        *,
        results: Sequence[Mapping[str, Any] | None] | Mapping[str, Any] | str | None = None,
        score_task_id: str | None = None,
        report_path: str | os.PathLike[str] | ObjectStoragePath | None = None,
        slack_conn_id: str | None = None,
        channel: str | None = None,
        send_all_clear: bool = False,
        title: str = DEFAULT_TITLE,
        currency: str | None = None,
        max_incidents: int = 50,
        chart_max_panels: int = DEFAULT_MAX_PANELS,
        slack_limits: SlackLimits | None = None,
        timeout: int | None = None,
        retry_handlers: list[RetryHandler] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if results is None and not score_task_id:
            raise ValueError(
                "AnomalyReportNotifier needs `results` or `score_task_id` to know what to report"
            )
        if results is not None and score_task_id:
            raise ValueError("AnomalyReportNotifier takes `results` or `score_task_id`, not both")
        if slack_conn_id and not channel:
            raise ValueError(
                f"AnomalyReportNotifier needs a `channel` to post with slack_conn_id={slack_conn_id!r}"
            )
        if max_incidents < 1:
            raise ValueError(f"max_incidents must be at least 1, got {max_incidents}")
        self.results = results
        self.score_task_id = score_task_id
        if report_path is None:
            airflow_home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
            report_path = os.path.join(airflow_home, DEFAULT_REPORT_DIR)
        self.report_path = report_path
        self.slack_conn_id = slack_conn_id
        self.channel = channel
        self.send_all_clear = send_all_clear
        self.title = title
        self.currency = currency
        self.max_incidents = max_incidents
        self.chart_max_panels = chart_max_panels
        self.slack_limits = slack_limits or SlackLimits()
        self.timeout = timeout
        self.retry_handlers = retry_handlers
        self.delivery: ReportDelivery | None = None
        self._rendered = False

    # -- templating -----------------------------------------------------------------------------------------

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """Render templates, leaving already materialised ``results`` alone (no Jinja pass over every row)."""
        materialised = None if isinstance(self.results, str) else self.results
        if materialised is not None:
            self.results = None
        try:
            super().render_template_fields(context, jinja_env)
        finally:
            if materialised is not None:
                self.results = materialised
        self._rendered = True

    def send(self, context: Context) -> ReportDelivery:
        """Render the templated fields, write and send the report; return where it went."""
        self._update_context(context)
        self.render_template_fields(context)
        self.notify(context)
        assert self.delivery is not None
        return self.delivery

    # -- the notification -----------------------------------------------------------------------------------

    def notify(self, context: Context) -> None:
        """Write the report file (always) and post it to Slack (when configured); sets ``self.delivery``."""
        if not self._rendered:
            self._update_context(context)
            self.render_template_fields(context)
        report = build_report(self._collect_results(context), title=self.title, currency=self.currency)
        markdown_path, chart_path = self._report_paths()

        chart_png = None
        if report.has_anomalies:
            from airflow_provider_snowstorm.core.charts import (
                render_anomaly_chart,  # matplotlib: only when drawing
            )

            chart_png = render_anomaly_chart(
                report.predictions,
                max_panels=self.chart_max_panels,
                title=f"{self.title}: actual vs expected",
            )
        markdown = render_markdown(report, chart_filename=chart_path.name if chart_png else None)
        _write(markdown_path, markdown.encode("utf-8"))
        if chart_png is not None:
            _write(chart_path, chart_png)
        self.log.info("%s. Report written to %s", headline(report), markdown_path)

        channel_id, sent, uploaded = self._send_to_slack(report, chart_png, str(markdown_path))
        self.delivery = ReportDelivery(
            markdown_path=str(markdown_path),
            chart_path=str(chart_path) if chart_png is not None else None,
            incidents=len(report.incidents),
            slack_channel=channel_id,
            slack_messages=sent,
            chart_uploaded=uploaded,
        )

    def _collect_results(self, context: Context) -> list[Mapping[str, Any] | None]:
        if self.results is not None:
            return _as_result_list(self.results, "`results`")
        ti = context.get("ti") or context.get("task_instance")
        if ti is None:
            raise AnomalyReportError(
                f"cannot pull the results of task {self.score_task_id!r}: "
                "the context has no task instance ('ti')"
            )
        value = ti.xcom_pull(task_ids=self.score_task_id, key="return_value")
        return _as_result_list(value, f"the return value (XCom) of task {self.score_task_id!r}")

    def _report_paths(self) -> tuple[Path | ObjectStoragePath, Path | ObjectStoragePath]:
        target = self.report_path
        if isinstance(target, ObjectStoragePath):
            base: Path | ObjectStoragePath = target
        else:
            text = os.fspath(target)
            if not text.strip():
                raise AnomalyReportError("report_path rendered to an empty string")
            base = ObjectStoragePath(text) if "://" in text else Path(text).expanduser()
        if base.suffix == ".md":
            return base, base.with_suffix(".png")
        return base / MARKDOWN_FILENAME, base / CHART_FILENAME

    # -- Slack ----------------------------------------------------------------------------------------------

    def _send_to_slack(
        self, report: AnomalyReport, chart_png: bytes | None, location: str
    ) -> tuple[str | None, int, bool]:
        if not self.slack_conn_id:
            return None, 0, False
        if not report.has_anomalies and not self.send_all_clear:
            self.log.info("No anomalies: nothing posted to Slack (send_all_clear=False)")
            return None, 0, False
        try:
            BaseHook.get_connection(self.slack_conn_id)
        except AirflowNotFoundException:
            self.log.warning(
                "Slack connection %r is not defined: the report was only written to %s",
                self.slack_conn_id,
                location,
            )
            return None, 0, False

        from airflow.providers.slack.hooks.slack import SlackHook

        hook = SlackHook(
            slack_conn_id=self.slack_conn_id,
            timeout=self.timeout,
            retry_handlers=self.retry_handlers or default_retry_handlers(),
        )
        messages = slack_messages(
            report, limits=self.slack_limits, max_incidents=self.max_incidents, report_location=location
        )
        channel_id: str | None = None
        for message in messages:
            response = self._call_slack(
                "chat.postMessage",
                lambda message=message: hook.client.chat_postMessage(
                    channel=self.channel,
                    text=message.text,
                    blocks=list(message.blocks),
                    unfurl_links=False,
                    unfurl_media=False,
                ),
            )
            channel_id = channel_id or response.get("channel")

        uploaded = False
        if chart_png is not None:
            self._call_slack(
                "files_upload_v2",
                lambda: hook.send_file_v2(
                    channel_id=channel_id or self.channel,
                    file_uploads={
                        "file": chart_png,  # type: ignore[typeddict-item]  # slack_sdk takes bytes too
                        "filename": CHART_FILENAME,
                        "title": f"{self.title}: actual vs expected",
                        "alt_txt": "Daily spend of the affected cost categories with expected spend",
                    },
                ),
            )
            uploaded = True
        self.log.info(
            "Posted %d Slack message(s) to %s%s",
            len(messages),
            self.channel,
            " with the chart" if uploaded else "",
        )
        return channel_id, len(messages), uploaded

    def _call_slack(self, action: str, call: Callable[[], T]) -> T:
        """Run a Slack call; turn Slack's refusals into errors that name the connection, never the token."""
        from slack_sdk.errors import SlackApiError, SlackClientError

        failure: str | None = None
        try:
            return call()
        except SlackApiError as err:
            # Raised after the except block, so the original error (its request holds the token) is not
            # chained onto ours.
            error = err.response.get("error") if err.response is not None else None
            status = err.response.status_code if err.response is not None else "?"
            failure = (
                f"Slack {action} failed for connection {self.slack_conn_id!r}: {error or f'HTTP {status}'}"
            )
            if error in _AUTH_ERRORS:
                failure += " (check the Slack token stored as the connection's password)"
        except (SlackClientError, OSError) as err:
            raise SlackDeliveryError(
                f"Slack {action} failed for connection {self.slack_conn_id!r}: {type(err).__name__}: {err}"
            ) from err
        raise SlackDeliveryError(failure)


def send_anomaly_report(context: Context, **kwargs: Any) -> ReportDelivery:
    """Write and send the report from inside a task: ``send_anomaly_report(get_current_context(), ...)``."""
    return AnomalyReportNotifier(**kwargs).send(context)


def _as_result_list(value: object, source: str) -> list[Mapping[str, Any] | None]:
    """Scoring results as a list: one mapped result arrives as a dict, a rendered template as a string."""
    if isinstance(value, str):
        value = _parse_rendered(value, source)
    if value is None:
        raise AnomalyReportError(f"{source} is empty: did the scoring task run and return its results?")
    if isinstance(value, Mapping):
        return [value]
    if not isinstance(value, Iterable):
        raise AnomalyReportError(
            f"{source} must be a list of scoring result dicts, got {type(value).__name__}"
        )
    results: list[Mapping[str, Any] | None] = []
    for item in value:
        if isinstance(item, (list, tuple)):
            results.extend(item)
        else:
            results.append(item)  # type: ignore[arg-type]  # build_report checks the items
    return results


def _parse_rendered(text: str, source: str) -> object:
    """A template rendered to a string: JSON, or the Python repr Jinja gives a list of dicts."""
    stripped = text.strip()
    if not stripped:
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise AnomalyReportError(
            f"{source} rendered to text that is not a list of results ({stripped[:80]!r}...); use "
            "`score_task_id`, or render templates as native objects (DAG(render_template_as_native_obj=True))"
        ) from None


def _write(path: Path | ObjectStoragePath, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
