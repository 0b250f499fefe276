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

Slack delivery is idempotent per report and DAG run: every part that Slack accepted (each message of a long report,
then the chart) is recorded in a small ledger file beside the report (``slack_delivery.json``, keyed by DAG, run,
task, map index and channel, with each part's digest and Slack ``ts``). A task retry after a failure on part *k*
posts only the parts not yet accepted, so nobody sees part 1 twice. Keep ``report_path`` on storage the retry can
read (the default, per run, is; use an ``ObjectStoragePath`` when workers do not share a disk).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import uuid
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
    import pandas as pd
    from airflow.sdk import Context
    from slack_sdk.http_retry import RetryHandler

MARKDOWN_FILENAME = "anomaly_report.md"
CHART_FILENAME = "anomaly_chart.png"
LEDGER_FILENAME = "slack_delivery.json"
DEFAULT_MAX_RETRY_AFTER = 10.0
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
    slack_already_posted: int = 0
    """Parts (messages and chart) an earlier try of this task had already posted, so not posted again."""


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float | None:
    """The ``Retry-After`` header in seconds (slack_sdk keeps header values as lists), or None."""
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            first = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return float(first)
            except (TypeError, ValueError):
                return None
    return None


def default_retry_handlers(*, max_retry_after: float = DEFAULT_MAX_RETRY_AFTER) -> list[RetryHandler]:
    """Retry rate limits (honouring ``Retry-After`` up to ``max_retry_after`` seconds), dropped connections and
    Slack's 500/503 answers. A longer ``Retry-After`` is not waited for: the call fails and says so."""
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )

    class CappedRateLimitRetryHandler(RateLimitErrorRetryHandler):
        """``RateLimitErrorRetryHandler`` that refuses to sleep longer than ``max_retry_after`` seconds."""

        def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
            if not super()._can_retry(state=state, request=request, response=response, error=error):
                return False
            wait = retry_after_seconds(response.headers)
            return wait is None or wait <= max_retry_after

    return [
        CappedRateLimitRetryHandler(max_retry_count=3),
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
    :param usage: Per-account usage rows (``USAGE_DATE, ACCOUNT_NAME, USAGE_TYPE, USAGE_IN_CURRENCY[, CURRENCY]``)
        covering a few weeks before the scored window: each incident then names the accounts and usage types
        that drove it, and the currency comes from ``CURRENCY`` (see ``core.report.build_report``).
    :param retry_handlers: ``slack_sdk`` retry handlers; default :func:`default_retry_handlers`.
    :param max_retry_after: Longest ``Retry-After`` (seconds) to wait for on a rate limit; a longer one fails the
        delivery with a clear error instead of holding the worker (the task's own retry comes back later).
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
        usage: pd.DataFrame | None = None,
        chart_max_panels: int = DEFAULT_MAX_PANELS,
        slack_limits: SlackLimits | None = None,
        timeout: int | None = None,
        retry_handlers: list[RetryHandler] | None = None,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
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
        if not max_retry_after >= 0:
            raise ValueError(f"max_retry_after must be a number of seconds >= 0, got {max_retry_after!r}")
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
        self.usage = usage
        self.chart_max_panels = chart_max_panels
        self.slack_limits = slack_limits or SlackLimits()
        self.timeout = timeout
        self.retry_handlers = retry_handlers
        self.max_retry_after = float(max_retry_after)
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
        report = build_report(
            self._collect_results(context), title=self.title, currency=self.currency, usage=self.usage
        )
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
                currency=report.currency,
            )
        markdown = render_markdown(report, chart_filename=chart_path.name if chart_png else None)
        _write(markdown_path, markdown.encode("utf-8"))
        if chart_png is not None:
            _write(chart_path, chart_png)
        self.log.info("%s. Report written to %s", headline(report), markdown_path)

        ledger = _Ledger(markdown_path, _delivery_key(context, self.channel))
        channel_id, sent, uploaded, skipped = self._send_to_slack(
            report, chart_png, str(markdown_path), ledger
        )
        self.delivery = ReportDelivery(
            markdown_path=str(markdown_path),
            chart_path=str(chart_path) if chart_png is not None else None,
            incidents=len(report.incidents),
            slack_channel=channel_id,
            slack_messages=sent,
            chart_uploaded=uploaded,
            slack_already_posted=skipped,
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
        self, report: AnomalyReport, chart_png: bytes | None, location: str, ledger: _Ledger
    ) -> tuple[str | None, int, bool, int]:
        if not self.slack_conn_id:
            return None, 0, False, 0
        if not report.has_anomalies and not self.send_all_clear:
            self.log.info("No anomalies: nothing posted to Slack (send_all_clear=False)")
            return None, 0, False, 0
        try:
            BaseHook.get_connection(self.slack_conn_id)
        except AirflowNotFoundException:
            self.log.warning(
                "Slack connection %r is not defined: the report was only written to %s",
                self.slack_conn_id,
                location,
            )
            return None, 0, False, 0

        from airflow.providers.slack.hooks.slack import SlackHook

        hook = SlackHook(
            slack_conn_id=self.slack_conn_id,
            timeout=self.timeout,
            retry_handlers=self.retry_handlers
            or default_retry_handlers(max_retry_after=self.max_retry_after),
        )
        messages = slack_messages(
            report, limits=self.slack_limits, max_incidents=self.max_incidents, report_location=location
        )
        posted = ledger.load()
        channel_id: str | None = next(
            (part["channel"] for part in posted.values() if part.get("channel")), None
        )
        skipped = 0
        for index, message in enumerate(messages):
            part, digest = (
                f"message-{index + 1}-of-{len(messages)}",
                _digest(message.text, list(message.blocks)),
            )
            if posted.get(part, {}).get("sha256") == digest:
                skipped += 1
                continue
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
            posted[part] = {"sha256": digest, "ts": response.get("ts"), "channel": response.get("channel")}
            ledger.save(posted)

        uploaded = False
        if chart_png is not None:
            digest = hashlib.sha256(chart_png).hexdigest()
            if posted.get("chart", {}).get("sha256") == digest:
                skipped += 1
            else:
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
                posted["chart"] = {"sha256": digest, "channel": channel_id}
                ledger.save(posted)
            uploaded = True
        self.log.info(
            "Slack %s: %d message(s)%s delivered%s",
            self.channel,
            len(messages),
            " and the chart" if uploaded else "",
            f" ({skipped} part(s) already posted by an earlier try, not posted again)" if skipped else "",
        )
        return channel_id, len(messages), uploaded, skipped

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
            wait = retry_after_seconds(err.response.headers) if err.response is not None else None
            if status == 429 and wait is not None and wait > self.max_retry_after:
                failure += (
                    f" (rate limited: Slack asked to wait {wait:g} s, more than max_retry_after="
                    f"{self.max_retry_after:g} s; not holding the worker, a task retry resumes the delivery)"
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


def _digest(text: str, blocks: list[Any]) -> str:
    return hashlib.sha256(json.dumps([text, blocks], sort_keys=True, default=str).encode()).hexdigest()


def _delivery_key(context: Context, channel: str | None) -> str:
    """Which delivery this is: one per DAG run, task (and map index) and channel."""
    ti = context.get("ti") or context.get("task_instance")
    parts = [
        getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None),
        context.get("run_id"),
        getattr(ti, "task_id", None),
        getattr(ti, "map_index", None),
        channel,
    ]
    return "/".join("-" if part is None else str(part) for part in parts)


class _Ledger:
    """The parts of one delivery that Slack accepted, in a JSON file beside the report (shared by every try)."""

    def __init__(self, markdown_path: Path | ObjectStoragePath, key: str) -> None:
        name = (
            f"{markdown_path.stem}.slack.json" if markdown_path.name != MARKDOWN_FILENAME else LEDGER_FILENAME
        )
        self.path = markdown_path.parent / name
        self.key = key

    def _read_all(self) -> dict[str, Any]:
        try:
            document = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except ValueError:
            return {}  # unreadable: post again rather than fail the report
        return document if isinstance(document, dict) else {}

    def load(self) -> dict[str, dict[str, Any]]:
        entry = self._read_all().get(self.key, {})
        return dict(entry) if isinstance(entry, dict) else {}

    def save(self, parts: Mapping[str, Mapping[str, Any]]) -> None:
        document = self._read_all()
        document[self.key] = dict(parts)
        data = json.dumps(document, indent=2, sort_keys=True).encode()
        temporary = self.path.parent / f".{self.path.name}.{uuid.uuid4().hex}.tmp"
        _write(temporary, data)
        if isinstance(self.path, Path):
            os.replace(temporary, self.path)
        else:
            temporary.rename(self.path)
