"""Slack layout of the anomaly report: ``chat.postMessage`` payloads within Slack's limits.

Pure functions (no Airflow, no network), used by the Slack channel (``notifications.slack``). Slack's mrkdwn has no
tables, so the incident table is aligned plain text inside a ``` code block (monospace, readable on desktop and
mobile). A long report is split between table rows into several section blocks and messages; every piece of the
table repeats the header.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_snowstorm.core.incidents import Incident, IncidentGroup
from airflow_provider_snowstorm.core.report import (
    AnomalyReport,
    SeriesModel,
    _amount,
    _model_label,
    _pct,
    _plural,
    _share,
    _status_lines,
    _summary_lines,
    _window,
    headline,
)

__all__ = ["SlackLimits", "SlackMessage", "slack_messages"]


@dataclass(frozen=True, slots=True)
class SlackLimits:
    """Slack's message limits; smaller values are useful in tests."""

    max_blocks: int = 50
    max_section_chars: int = 3000
    max_message_chars: int = 40_000

    def __post_init__(self) -> None:
        if self.max_blocks < 2:
            raise ValueError(f"SlackLimits.max_blocks must be at least 2, got {self.max_blocks}")
        if self.max_section_chars < 200:
            raise ValueError(
                f"SlackLimits.max_section_chars must be at least 200, got {self.max_section_chars}"
            )
        if self.max_message_chars < self.max_section_chars:
            raise ValueError("SlackLimits.max_message_chars must be at least max_section_chars")


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """One ``chat.postMessage`` payload: ``text`` is the notification fallback, ``blocks`` are shown."""

    text: str
    blocks: tuple[dict[str, Any], ...]

    @property
    def chars(self) -> int:
        return sum(len(_block_text(b)) for b in self.blocks)


_SLACK_CATEGORY_WIDTH = 24
_SLACK_MODEL_SERIES_WIDTH = 60
# Room kept in each message for the "part i/n" context block.
_CONTINUATION_RESERVE = 100


def slack_messages(
    report: AnomalyReport,
    *,
    limits: SlackLimits | None = None,
    max_incidents: int = 50,
    report_location: str | None = None,
) -> list[SlackMessage]:
    """The report as Slack ``chat.postMessage`` payloads within Slack's limits.

    The top ``max_incidents`` incidents are listed; the rest are summarised in one line pointing at the full
    report. Tables are split only between rows, and each piece repeats the header.
    """
    limits = limits or SlackLimits()
    if max_incidents < 1:
        raise ValueError(f"max_incidents must be at least 1, got {max_incidents}")
    section_limit = limits.max_section_chars
    sections: list[str] = []

    if not report.has_anomalies:
        text = f":white_check_mark: *{_escape(headline(report))}*\n" + _escape(
            f"No anomalies in the scored window {_window(report)} "
            f"({_plural(report.series_count, 'cost category', 'cost categories')} scored)."
        )
        for line in _status_lines(report):
            text += "\n" + _escape(line)
        if report_location:
            text += f"\nReport: `{_escape(report_location)}`"
        sections.append(_fit(text, section_limit))
    else:
        header = [f":rotating_light: *{_escape(headline(report))}*", *map(_escape, _summary_lines(report))]
        if report_location:
            header.append(f"Full report: `{_escape(report_location)}`")
        sections += _chunk_lines(header, [], section_limit)

        shown = report.groups[:max_incidents]
        table_header, table_rows = _slack_table(shown, report.currency)
        sections += _chunk_code_block(table_header, table_rows, section_limit)
        causes = [
            f"*#{number} drivers:* "
            + _escape(
                ", ".join(
                    f"{c.account} · {c.usage_type} {_amount(c.extra_cost, None, signed=True)} ({_share(c.share)})"
                    for c in group.contributors
                )
            )
            for number, group in enumerate(shown, start=1)
            if group.contributors
        ]
        if causes:
            sections += _chunk_lines(causes, [], section_limit)
        hidden = report.groups[max_incidents:]
        if hidden:
            hidden_cost = sum(i.extra_cost for i in hidden)
            where = "the full report" if not report_location else f"`{_escape(report_location)}`"
            sections.append(
                _fit(
                    f"…and {_plural(len(hidden), 'more incident')} "
                    f"(net {_escape(_amount(hidden_cost, report.currency, signed=True))} vs expected), "
                    f"see {where}.",
                    section_limit,
                )
            )
        model_lines = ["*Models*"] + [_slack_model_line(m) for m in report.affected_models]
        sections += _chunk_lines(model_lines, [], section_limit)

    return _pack(sections, headline(report), limits)


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (&, <, >) must be escaped in plain text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _slack_table(incidents: Sequence[IncidentGroup], currency: str | None) -> tuple[list[str], list[str]]:
    """Aligned monospace rows, narrow enough (~80 chars) not to wrap in a Slack code block.

    One width per column for the whole table, so every piece of a split table lines up the same way. The sign
    of "Extra" tells spikes from drops.
    """
    unit = f" ({currency})" if currency else ""
    columns = ["#", "Category", "When", "Days", f"Actual{unit}", "Expected", "Extra", "vs exp."]
    right_aligned = {0, 3, 4, 5, 6, 7}
    cells = [
        [
            str(number),
            _truncate(i.label, _SLACK_CATEGORY_WIDTH),
            _compact_when(i),
            str(i.days),
            _amount(i.observed, None),
            _amount(i.expected, None),
            _amount(i.extra_cost, None, signed=True),
            _pct(i.delta_pct),
        ]
        for number, i in enumerate(incidents, start=1)
    ]
    widths = [max(len(row[k]) for row in [columns, *cells]) for k in range(len(columns))]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.rjust(w) if k in right_aligned else cell.ljust(w)
            for k, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        return _escape("  ".join(parts).rstrip())

    header = [line(columns), "-" * len(line(columns))]
    return header, [line(row) for row in cells]


def _compact_when(incident: Incident | IncidentGroup) -> str:
    """``2026-01-03`` or ``2026-01-03→01-05`` (the end's year only when it differs)."""
    if incident.start == incident.end:
        return incident.start.isoformat()
    end = (
        incident.end.isoformat()
        if incident.end.year != incident.start.year
        else incident.end.strftime("%m-%d")
    )
    return f"{incident.start.isoformat()}→{end}"


def _slack_model_line(model: SeriesModel) -> str:
    label = (
        f"• {_escape(_truncate(model.series, _SLACK_MODEL_SERIES_WIDTH))}: `{_escape(_model_label(model))}`"
    )
    runs = [
        f"<{url}|{name}>" if url else f"{name} offline"
        for name, url in (("training run", model.training_run_url), ("scoring run", model.run_url))
    ]
    return f"{label} · " + " · ".join(runs)


def _chunk_code_block(header: list[str], rows: list[str], limit: int) -> list[str]:
    """Rows in ``` blocks of at most ``limit`` chars; each block starts with the header."""
    chunks: list[str] = []
    current: list[str] = []

    def render(body: list[str]) -> str:
        return "```\n" + "\n".join([*header, *body]) + "\n```"

    for row in rows:
        if current and len(render([*current, row])) > limit:
            chunks.append(render(current))
            current = []
        if not current and len(render([row])) > limit:
            overflow = len(render([row])) - limit
            row = _truncate(row, max(1, len(row) - overflow))
        current.append(row)
    if current:
        chunks.append(render(current))
    return chunks


def _chunk_lines(lines: list[str], header: list[str], limit: int) -> list[str]:
    """Whole lines joined into texts of at most ``limit`` chars (a too-long single line is shortened)."""
    chunks: list[str] = []
    current: list[str] = []
    for text in lines:
        if current and len("\n".join([*header, *current, text])) > limit:
            chunks.append("\n".join([*header, *current]))
            current = []
        if not current:
            text = _fit(text, limit - len("\n".join(header)) - (1 if header else 0))
        current.append(text)
    if current:
        chunks.append("\n".join([*header, *current]))
    return chunks


def _fit(text: str, limit: int) -> str:
    return _truncate(text, limit)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _block_text(block: Mapping[str, Any]) -> str:
    if "text" in block:
        return str(block["text"].get("text", ""))
    return "".join(str(e.get("text", "")) for e in block.get("elements", []))


def _pack(sections: list[str], notification: str, limits: SlackLimits) -> list[SlackMessage]:
    """Greedily fill messages with sections, keeping one block and some chars for a "part i/n" note."""
    groups: list[list[str]] = []
    current: list[str] = []
    chars = 0
    max_blocks = limits.max_blocks - 1
    max_chars = limits.max_message_chars - _CONTINUATION_RESERVE
    for text in sections:
        if current and (len(current) >= max_blocks or chars + len(text) > max_chars):
            groups.append(current)
            current, chars = [], 0
        current.append(text)
        chars += len(text)
    if current:
        groups.append(current)

    messages: list[SlackMessage] = []
    total = len(groups)
    for number, group in enumerate(groups, start=1):
        blocks: list[dict[str, Any]] = []
        text = _truncate(notification, 3000)
        if total > 1:
            text = f"{text} (part {number}/{total})"
            if number > 1:
                blocks.append(
                    {
                        "type": "context",
                        "elements": [{"type": "mrkdwn", "text": f"_continued, part {number}/{total}_"}],
                    }
                )
        blocks += [_section(s) for s in group]
        messages.append(SlackMessage(text=text, blocks=tuple(blocks)))
    return messages
