"""The Slack channel of the anomaly report: the report's messages and chart, posted through the Slack provider.

Uses the Slack provider's ``slack`` connection (bot token as password, optional ``base_url``/``timeout`` extras) and
its ``SlackHook``, built lazily and cached as the provider's own ``SlackNotifier`` does. The layout (blocks within
Slack's limits) is in ``notifications.slack_layout``.

Delivery is idempotent per report and DAG run: every part that Slack accepted (each message of a long report, then
the chart) is recorded in a small ledger file beside the report (``slack_delivery.json``, keyed by DAG, run, task,
map index and channel, with each part's digest and Slack ``ts``). A task retry after a failure on part *k* posts
only the parts not yet accepted, so nobody sees part 1 twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.sdk import BaseHook, ObjectStoragePath
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_snowstorm.notifications.base import (
    CHART_FILENAME,
    MARKDOWN_FILENAME,
    RenderedReport,
    ReportChannel,
    write_bytes,
)
from airflow_provider_snowstorm.notifications.slack_layout import SlackLimits, slack_messages

if TYPE_CHECKING:
    from airflow.providers.slack.hooks.slack import SlackHook
    from airflow.sdk import Context
    from slack_sdk.http_retry import RetryHandler

__all__ = [
    "DEFAULT_MAX_RETRY_AFTER",
    "LEDGER_FILENAME",
    "SlackChannel",
    "SlackDeliveryError",
    "default_retry_handlers",
    "retry_after_seconds",
]

LEDGER_FILENAME = "slack_delivery.json"
DEFAULT_MAX_RETRY_AFTER = 10.0

_AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"})

T = TypeVar("T")


class SlackDeliveryError(RuntimeError):
    """Slack refused or could not take the report; names the connection and Slack's error, never the token."""


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


class SlackChannel(ReportChannel):
    """Post the report to a Slack channel: the headline and incident table (split within Slack's limits), then the
    chart.

    :param slack_conn_id: A Slack API connection (type ``slack``). Not defined: warn, and only the file is written.
    :param channel: Slack channel name or id to post to.
    :param send_all_clear: Post a short all-clear message when there are no anomalies (default: post nothing).
    :param max_incidents: Incidents listed in Slack; the rest are summarised (the file lists all).
    :param retry_handlers: ``slack_sdk`` retry handlers; default :func:`default_retry_handlers`.
    :param max_retry_after: Longest ``Retry-After`` (seconds) to wait for on a rate limit; a longer one fails the
        delivery with a clear error instead of holding the worker (the task's own retry comes back later).
    """

    name = "slack"

    def __init__(
        self,
        *,
        slack_conn_id: str | None,
        channel: str | None,
        send_all_clear: bool = False,
        max_incidents: int = 50,
        limits: SlackLimits | None = None,
        timeout: int | None = None,
        retry_handlers: list[RetryHandler] | None = None,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
    ) -> None:
        super().__init__(send_all_clear=send_all_clear)
        if slack_conn_id and not channel:
            raise ValueError(f"Slack needs a `channel` to post with slack_conn_id={slack_conn_id!r}")
        if max_incidents < 1:
            raise ValueError(f"max_incidents must be at least 1, got {max_incidents}")
        if not max_retry_after >= 0:
            raise ValueError(f"max_retry_after must be a number of seconds >= 0, got {max_retry_after!r}")
        self.slack_conn_id = slack_conn_id
        self.channel = channel
        self.max_incidents = max_incidents
        self.slack_limits = limits or SlackLimits()
        self.timeout = timeout
        self.retry_handlers = retry_handlers
        self.max_retry_after = float(max_retry_after)

    @cached_property
    def hook(self) -> SlackHook:
        """The Slack provider's hook, built on first use and kept (its ``client`` is cached by the hook too)."""
        from airflow.providers.slack.hooks.slack import SlackHook

        return SlackHook(
            slack_conn_id=self.slack_conn_id,
            timeout=self.timeout,
            retry_handlers=self.retry_handlers
            or default_retry_handlers(max_retry_after=self.max_retry_after),
        )

    def deliver(self, rendered: RenderedReport, context: Context) -> dict[str, Any]:
        """Post the report's messages and chart, skipping parts an earlier try already posted."""
        if not self.slack_conn_id:
            return {}
        report, chart_png, location = rendered.report, rendered.chart_png, rendered.location
        if not self.wants(rendered):
            self.log.info("No anomalies: nothing posted to Slack (send_all_clear=False)")
            return {}
        try:
            BaseHook.get_connection(self.slack_conn_id)
        except AirflowNotFoundException:
            self.log.warning(
                "Slack connection %r is not defined: the report was only written to %s",
                self.slack_conn_id,
                location,
            )
            return {}

        hook = self.hook
        ledger = _Ledger(rendered.markdown_path, _delivery_key(context, self.channel))
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
                            "title": f"{rendered.title}: actual vs expected",
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
        return {
            "channel": channel_id,
            "messages": len(messages),
            "chart_uploaded": uploaded,
            "already_posted": skipped,
        }

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
        write_bytes(temporary, data)
        if isinstance(self.path, Path):
            os.replace(temporary, self.path)
        else:
            temporary.rename(self.path)
