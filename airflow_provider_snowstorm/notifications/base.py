"""The report notifier's base and the channel interface: build the report once, write the file, hand it to channels.

``ReportNotifier`` renders the anomaly report (markdown and chart) from scoring results and always writes it to
``report_path``; then each :class:`ReportChannel` (Slack, email, or your own) delivers the rendered report, in order.
The first channel that fails fails the notification (after the file is written); put channels that remember what
they delivered (Slack's ledger) before those that do not (email), so a task retry does not repeat a delivery.

A new channel is one module with a ``ReportChannel`` subclass (``notifications.email`` is a small one) and a test;
pass it in ``channels=[...]``.
"""

from __future__ import annotations

import ast
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier, ObjectStoragePath

from airflow_provider_snowstorm.core.report import (
    DEFAULT_MAX_PANELS,
    DEFAULT_TITLE,
    AnomalyReport,
    build_report,
    headline,
    render_markdown,
)
from airflow_provider_snowstorm.utils.sql import validate_table_name

if TYPE_CHECKING:
    import jinja2
    import pandas as pd
    from airflow.sdk import Context

__all__ = [
    "CHART_FILENAME",
    "DEFAULT_REPORT_DIR",
    "MARKDOWN_FILENAME",
    "AnomalyReportError",
    "RenderedReport",
    "ReportChannel",
    "ReportDelivery",
    "ReportNotifier",
    "as_result_list",
    "write_bytes",
]

MARKDOWN_FILENAME = "anomaly_report.md"
CHART_FILENAME = "anomaly_chart.png"
DEFAULT_REPORT_DIR = os.path.join("snowstorm", "reports", "{{ ti.dag_id }}", "{{ run_id }}")


class AnomalyReportError(RuntimeError):
    """The scoring results could not be turned into a report."""


@dataclass(frozen=True)
class RenderedReport:
    """One report as every channel receives it: the data, its markdown, the chart, and where the files are."""

    report: AnomalyReport
    markdown: str
    markdown_path: Path | ObjectStoragePath
    chart_png: bytes | None
    chart_path: Path | ObjectStoragePath
    title: str

    @property
    def location(self) -> str:
        """Where the report file is, as channels show it."""
        return str(self.markdown_path)

    @property
    def headline(self) -> str:
        return headline(self.report)


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
    channels: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """What each channel did, by channel name (``{}`` for a channel that had nothing to do)."""


class ReportChannel:
    """Delivers a rendered report somewhere. Subclasses set ``name`` and implement :meth:`deliver`.

    ``deliver`` returns a small JSON-safe dict of what it did (kept in ``ReportDelivery.channels``) and raises to
    fail the delivery; a channel with nothing to do (not configured, nothing to report) returns ``{}``. Build hooks
    lazily and cache them (a ``functools.cached_property``), so a channel costs nothing until it delivers.
    """

    name: str = "channel"

    def __init__(self, *, send_all_clear: bool = False) -> None:
        self.send_all_clear = send_all_clear
        self.log: Any = logging.getLogger(f"{__name__}.{self.name}")
        """Replaced by the notifier's own logger when the notifier delivers."""

    def wants(self, rendered: RenderedReport) -> bool:
        """Whether this report is worth delivering: anomalies, or an all-clear when asked for."""
        return rendered.report.has_anomalies or self.send_all_clear

    def deliver(self, rendered: RenderedReport, context: Context) -> dict[str, Any]:
        raise NotImplementedError


class ReportNotifier(BaseNotifier):
    """Build the anomaly report from scoring results, write it (markdown and chart), then deliver it to channels.

    :param results: The scoring tasks' results (one dict per series), or a Jinja string that renders to
        them, e.g. ``"{{ ti.xcom_pull(task_ids='score', key='return_value') }}"`` (the rendered string is
        parsed back).
    :param score_task_id: Instead of ``results``: pull the return values of this (mapped) task from the
        context's task instance.
    :param report_path: Folder for ``anomaly_report.md`` and ``anomaly_chart.png``, or a ``.md`` file path
        (the chart goes beside it). Local path, URL string or ``ObjectStoragePath``; templated. Default:
        ``$AIRFLOW_HOME/snowstorm/reports/<dag_id>/<run_id>``.
    :param channels: Where to deliver the report besides the file (``ReportChannel`` instances), in order.
    :param usage: Per-account usage rows (``USAGE_DATE, ACCOUNT_NAME, USAGE_TYPE, USAGE_IN_CURRENCY[, CURRENCY]``)
        covering a few weeks before the scored window: each incident then names the accounts and usage types
        that drove it, and the currency comes from ``CURRENCY`` (see ``core.report.build_report``).
    :param notes: Lines about the data shown under the summary (days still settling, restated days re-scored,
        currencies left out); templated.
    :param feedback_table: ``[database.][schema.]table`` where readers mark incidents real or false alarms (the
        labels ``ModelEvaluationOperator`` reads): the report then says how, with a ready ``INSERT`` per incident.
        Templated.
    """

    template_fields: Sequence[str] = (
        "results",
        "score_task_id",
        "report_path",
        "title",
        "notes",
        "feedback_table",
    )

    def __init__(
        self,
        *,
        results: Sequence[Mapping[str, Any] | None] | Mapping[str, Any] | str | None = None,
        score_task_id: str | None = None,
        report_path: str | os.PathLike[str] | ObjectStoragePath | None = None,
        channels: Sequence[ReportChannel] = (),
        title: str = DEFAULT_TITLE,
        currency: str | None = None,
        usage: pd.DataFrame | None = None,
        notes: Sequence[str] = (),
        feedback_table: str | None = None,
        chart_max_panels: int = DEFAULT_MAX_PANELS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        name = type(self).__name__
        if results is None and not score_task_id:
            raise ValueError(f"{name} needs `results` or `score_task_id` to know what to report")
        if results is not None and score_task_id:
            raise ValueError(f"{name} takes `results` or `score_task_id`, not both")
        self.results = results
        self.score_task_id = score_task_id
        if report_path is None:
            airflow_home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
            report_path = os.path.join(airflow_home, DEFAULT_REPORT_DIR)
        self.report_path = report_path
        self.channels = list(channels)
        self.title = title
        self.currency = currency
        self.usage = usage
        self.notes = list(notes)
        self.feedback_table = feedback_table
        self.chart_max_panels = chart_max_panels
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
        """Render the templated fields, write and deliver the report; return where it went."""
        self(context)
        assert self.delivery is not None
        return self.delivery

    # -- the notification -----------------------------------------------------------------------------------

    def delivery_channels(self) -> list[ReportChannel]:
        """The channels of this notification, after templating; subclasses add the ones their parameters name."""
        return list(self.channels)

    def notify(self, context: Context) -> None:
        """Write the report file (always), then deliver it to every channel; sets ``self.delivery``."""
        if not self._rendered:
            self.render_template_fields(context)
        report = build_report(
            self._collect_results(context),
            title=self.title,
            currency=self.currency,
            usage=self.usage,
            notes=self.notes,
            feedback_table=validate_table_name(self.feedback_table, what="feedback_table")
            if self.feedback_table
            else None,
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
        write_bytes(markdown_path, markdown.encode("utf-8"))
        if chart_png is not None:
            write_bytes(chart_path, chart_png)
        self.log.info("%s. Report written to %s", headline(report), markdown_path)

        rendered = RenderedReport(
            report=report,
            markdown=markdown,
            markdown_path=markdown_path,
            chart_png=chart_png,
            chart_path=chart_path,
            title=self.title,
        )
        delivered: dict[str, dict[str, Any]] = {}
        for channel in self.delivery_channels():
            channel.log = self.log  # channels log as part of this notification (the task's log)
            delivered[channel.name] = channel.deliver(rendered, context)
        slack = delivered.get("slack") or {}
        self.delivery = ReportDelivery(
            markdown_path=str(markdown_path),
            chart_path=str(chart_path) if chart_png is not None else None,
            incidents=len(report.incidents),
            slack_channel=slack.get("channel"),
            slack_messages=int(slack.get("messages", 0)),
            chart_uploaded=bool(slack.get("chart_uploaded", False)),
            slack_already_posted=int(slack.get("already_posted", 0)),
            channels=delivered,
        )

    def _collect_results(self, context: Context) -> list[Mapping[str, Any] | None]:
        if self.results is not None:
            return as_result_list(self.results, "`results`")
        ti = context.get("ti") or context.get("task_instance")
        if ti is None:
            raise AnomalyReportError(
                f"cannot pull the results of task {self.score_task_id!r}: "
                "the context has no task instance ('ti')"
            )
        value = ti.xcom_pull(task_ids=self.score_task_id, key="return_value")
        return as_result_list(value, f"the return value (XCom) of task {self.score_task_id!r}")

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


def as_result_list(value: object, source: str) -> list[Mapping[str, Any] | None]:
    """Mapped tasks' results (scoring's, or training's) as one list per series: one mapped result arrives as a dict,
    a batch of series' as a list (flattened), a rendered template as a string; ``None`` items (a failed or skipped
    mapped task) are kept, the report counts them as missing."""
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


def write_bytes(path: Path | ObjectStoragePath, data: bytes) -> None:
    """Write ``data`` to a local path or an ``ObjectStoragePath``, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
