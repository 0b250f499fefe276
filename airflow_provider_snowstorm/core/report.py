"""Turn batch-scoring output into an anomaly report: incidents, a markdown file and Slack messages.

Pure functions and dataclasses (no Airflow), so the report reads the same in a file, in Slack and in tests.

Input is what each scoring task returns (one JSON-safe dict per series)::

    {"series": "compute", "model_name": "...", "model_version": "v3", "run_url": "https://..." | None,
     "window_start": "2026-01-01", "window_end": "2026-01-31",
     "rows": [{prediction columns, dates as ISO strings}, ...], "anomalies": [rows with is_anomaly true]}

Slack rendering: Slack's mrkdwn has no tables, so the incident table is aligned plain text inside a ``` code
block (monospace, readable on desktop and mobile). A long report is split between table rows into several
section blocks and messages; every piece of the table repeats the header.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

import pandas as pd

from airflow_provider_snowstorm.core.schema import (
    CONTINUING,
    DATE,
    EXPECTED,
    IS_ANOMALY,
    MODEL_NAME,
    MODEL_VERSION,
    SCORED_AT,
    SERIES,
    VALUE,
)

# Charts show at most this many affected series, largest impact first.
DEFAULT_MAX_PANELS = 8

DEFAULT_TITLE = "Snowflake spend anomalies"
REQUIRED_PREDICTION_COLUMNS: tuple[str, ...] = (DATE, SERIES, VALUE, EXPECTED, IS_ANOMALY)

Direction = Literal["spike", "drop"]

_TRUE_STRINGS = frozenset({"true", "t", "1", "yes", "y"})
_FALSE_STRINGS = frozenset({"false", "f", "0", "no", "n", ""})


@dataclass(frozen=True, slots=True)
class Incident:
    """Consecutive flagged days of one cost category that moved in the same direction."""

    series: str
    start: date
    end: date
    direction: Direction
    observed: float
    """Actual spend summed over the incident's days."""
    expected: float
    """Expected spend summed over the incident's days."""
    extra_cost: float
    """Sum of (value - expected) over the incident's days; negative for drops."""
    peak_day: date
    """The day furthest from expected."""
    peak_delta: float

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def delta(self) -> float:
        """Observed minus expected total: the same amount as ``extra_cost``."""
        return self.extra_cost

    @property
    def delta_pct(self) -> float | None:
        """Delta in percent of the expected total; None when nothing was expected."""
        if self.expected == 0:
            return None
        return self.extra_cost / abs(self.expected) * 100.0

    @property
    def impact(self) -> float:
        return abs(self.extra_cost)


@dataclass(frozen=True, slots=True)
class SeriesModel:
    """Which model scored a series, for provenance links in the report."""

    series: str
    model_name: str | None
    model_version: str | None
    run_url: str | None


@dataclass(frozen=True)
class AnomalyReport:
    """Everything a report renderer needs; build it with :func:`build_report`."""

    incidents: tuple[Incident, ...]
    models: tuple[SeriesModel, ...]
    window_start: date | None
    window_end: date | None
    series_count: int
    missing_results: int = 0
    """Scoring results that were absent (None), e.g. a failed mapped task."""
    title: str = DEFAULT_TITLE
    currency: str | None = None
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)

    @property
    def has_anomalies(self) -> bool:
        return bool(self.incidents)

    @property
    def extra_cost(self) -> float:
        """Estimated extra cost of all spikes (drops are reported separately)."""
        return sum(i.extra_cost for i in self.incidents if i.direction == "spike")

    @property
    def shortfall(self) -> float:
        """How far below expected all drops went together (a positive amount)."""
        return -sum(i.extra_cost for i in self.incidents if i.direction == "drop")

    @property
    def affected_series(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i.series for i in self.incidents))

    @property
    def affected_models(self) -> tuple[SeriesModel, ...]:
        affected = set(self.affected_series)
        return tuple(m for m in self.models if m.series in affected)

    @property
    def markdown(self) -> str:
        return render_markdown(self)


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


# ------------------------------------------------------------------------------------------------------------
# Predictions -> incidents


def normalise_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    """Validate and coerce a long-format predictions frame (dates, floats, booleans), one row per series/date.

    Shared by the report and the chart so both read scoring output the same way.
    """
    missing = [c for c in REQUIRED_PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(
            f"predictions are missing column(s) {missing}; "
            f"expected at least {list(REQUIRED_PREDICTION_COLUMNS)}"
        )
    frame = predictions.copy()
    if frame.empty:
        frame[DATE] = pd.Series(dtype="datetime64[ns]")
        frame[IS_ANOMALY] = frame[IS_ANOMALY].astype(bool)
        frame[CONTINUING] = frame[CONTINUING].astype(bool) if CONTINUING in frame.columns else False
        return frame.reset_index(drop=True)
    try:
        frame[DATE] = pd.to_datetime(frame[DATE]).dt.normalize()
    except (ValueError, TypeError) as err:
        raise ValueError(f"predictions column {DATE!r} has values that are not dates: {err}") from err
    frame[SERIES] = frame[SERIES].astype(str)
    for column in (VALUE, EXPECTED):
        try:
            frame[column] = pd.to_numeric(frame[column]).astype(float)
        except (ValueError, TypeError) as err:
            raise ValueError(f"predictions column {column!r} has values that are not numbers: {err}") from err
    frame[IS_ANOMALY] = _as_bool(frame[IS_ANOMALY])
    # Results written before the detector marked continuing days have no such column: nothing continues.
    frame[CONTINUING] = _as_bool(frame[CONTINUING]) if CONTINUING in frame.columns else False

    flagged = frame[frame[IS_ANOMALY]]
    bad = flagged[flagged[VALUE].isna() | flagged[EXPECTED].isna()]
    if not bad.empty:
        first = bad.iloc[0]
        raise ValueError(
            f"anomaly rows need both {VALUE!r} and {EXPECTED!r}: series {first[SERIES]!r} on "
            f"{first[DATE].date()} has value={first[VALUE]} expected={first[EXPECTED]}"
        )

    duplicated = frame.duplicated([SERIES, DATE], keep=False)
    if duplicated.any():
        if SCORED_AT not in frame.columns:
            first = frame[duplicated].iloc[0]
            raise ValueError(
                f"predictions have several rows for series {first[SERIES]!r} on {first[DATE].date()}; "
                f"give one row per series and date (or a {SCORED_AT!r} column to keep the latest)"
            )
        frame = frame.sort_values(SCORED_AT, kind="stable").drop_duplicates([SERIES, DATE], keep="last")
    return frame.sort_values([SERIES, DATE], kind="stable").reset_index(drop=True)


def _as_bool(column: pd.Series) -> pd.Series:
    """Booleans from bools, 0/1 or 'true'/'false' strings; ``astype(bool)`` would read 'false' as True."""
    if pd.api.types.is_bool_dtype(column):
        return column.fillna(False).astype(bool)
    if pd.api.types.is_numeric_dtype(column):
        return column.fillna(0).astype(float) != 0

    def convert(value: object) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        if isinstance(value, (bool, int, float)):
            return bool(value)
        text = str(value).strip().lower()
        if text in _TRUE_STRINGS:
            return True
        if text in _FALSE_STRINGS:
            return False
        raise ValueError(f"predictions column {IS_ANOMALY!r} has a value that is not a boolean: {value!r}")

    return column.map(convert).astype(bool)


def find_incidents(predictions: pd.DataFrame) -> list[Incident]:
    """Group flagged days per cost category into incidents, largest impact first.

    Flagged days on consecutive calendar days merge into one incident as long as they move in the same
    direction (a spike followed directly by a drop is two incidents). Days marked ``continuing`` extend the
    incident they follow (its length and cost), but never start one: their alarm was raised before.
    """
    frame = normalise_predictions(predictions)
    flagged = frame[frame[IS_ANOMALY] | frame[CONTINUING]]
    incidents: list[Incident] = []
    for series, rows in flagged.groupby(SERIES, sort=True):
        incidents.extend(_series_incidents(str(series), rows))
    incidents.sort(key=lambda i: (-i.impact, i.start, i.series))
    return incidents


def _series_incidents(series: str, rows: pd.DataFrame) -> Iterable[Incident]:
    run: list[tuple[date, float, float]] = []
    days = zip(rows[DATE], rows[VALUE], rows[EXPECTED], rows[IS_ANOMALY], strict=True)
    for day, value, expected, alarmed in days:
        current = (day.date(), float(value), float(expected))
        if run and not _continues(run[-1], current):
            yield _incident(series, run)
            run = []
        if run or alarmed:
            run.append(current)
    if run:
        yield _incident(series, run)


def _continues(previous: tuple[date, float, float], current: tuple[date, float, float]) -> bool:
    next_day = current[0] - previous[0] == timedelta(days=1)
    same_direction = (previous[1] >= previous[2]) == (current[1] >= current[2])
    return next_day and same_direction


def _incident(series: str, run: list[tuple[date, float, float]]) -> Incident:
    deltas = [value - expected for _, value, expected in run]
    peak_index = max(range(len(run)), key=lambda i: abs(deltas[i]))
    extra_cost = math.fsum(deltas)
    return Incident(
        series=series,
        start=run[0][0],
        end=run[-1][0],
        direction="spike" if run[0][1] >= run[0][2] else "drop",
        observed=math.fsum(value for _, value, _ in run),
        expected=math.fsum(expected for _, _, expected in run),
        extra_cost=extra_cost,
        peak_day=run[peak_index][0],
        peak_delta=deltas[peak_index],
    )


# ------------------------------------------------------------------------------------------------------------
# Scoring results -> report


def build_report(
    results: Sequence[Mapping[str, Any] | None],
    *,
    title: str = DEFAULT_TITLE,
    currency: str | None = None,
) -> AnomalyReport:
    """Build the report from the scoring tasks' results (one dict per series; None for a missing result)."""
    if isinstance(results, (str, bytes, Mapping)) or not isinstance(results, Sequence):
        raise TypeError(f"results must be a list of scoring result dicts, got {type(results).__name__}")
    frames: list[pd.DataFrame] = []
    models: list[SeriesModel] = []
    starts: list[date] = []
    ends: list[date] = []
    missing = 0
    for index, result in enumerate(results):
        if result is None:
            missing += 1
            continue
        if not isinstance(result, Mapping):
            raise TypeError(f"results[{index}] must be a dict, got {type(result).__name__}")
        series = result.get("series")
        if not series:
            raise ValueError(f"results[{index}] has no 'series'")
        models.append(
            SeriesModel(
                series=str(series),
                model_name=_optional_str(result.get("model_name")),
                model_version=_optional_str(result.get("model_version")),
                run_url=_optional_str(result.get("run_url")),
            )
        )
        for key, bucket in (("window_start", starts), ("window_end", ends)):
            if result.get(key):
                bucket.append(_parse_date(result[key], f"results[{index}] ({series!r}) {key}"))
        frames.append(_result_rows(index, str(series), result))

    predictions = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=list(REQUIRED_PREDICTION_COLUMNS))
    )
    predictions = normalise_predictions(predictions)
    if not starts and not predictions.empty:
        starts.append(predictions[DATE].min().date())
    if not ends and not predictions.empty:
        ends.append(predictions[DATE].max().date())
    return AnomalyReport(
        incidents=tuple(find_incidents(predictions)),
        models=tuple(models),
        window_start=min(starts) if starts else None,
        window_end=max(ends) if ends else None,
        series_count=len(models),
        missing_results=missing,
        title=title,
        currency=currency,
        predictions=predictions,
    )


def _result_rows(index: int, series: str, result: Mapping[str, Any]) -> pd.DataFrame:
    """The result's rows (or, when a producer sent only anomalies, those), tagged with series and model."""
    rows = result.get("rows") or result.get("anomalies")
    if rows is None:
        raise ValueError(f"results[{index}] ({series!r}) has neither 'rows' nor 'anomalies'")
    if not isinstance(rows, Sequence) or isinstance(rows, (str, bytes)):
        raise TypeError(f"results[{index}] ({series!r}) 'rows' must be a list of dicts")
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return pd.DataFrame(columns=list(REQUIRED_PREDICTION_COLUMNS))
    missing = [c for c in REQUIRED_PREDICTION_COLUMNS if c != SERIES and c not in frame.columns]
    if missing:
        raise ValueError(f"results[{index}] ({series!r}) rows are missing column(s) {missing}")
    frame[SERIES] = frame[SERIES].fillna(series) if SERIES in frame.columns else series
    for column, key in ((MODEL_NAME, "model_name"), (MODEL_VERSION, "model_version")):
        if column not in frame.columns:
            frame[column] = result.get(key)
    return frame


def _optional_str(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _parse_date(value: object, where: str) -> date:
    try:
        return pd.Timestamp(value).date()
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where} is not a date: {value!r}") from err


# ------------------------------------------------------------------------------------------------------------
# Formatting helpers


def _amount(value: float, currency: str | None, *, signed: bool = False) -> str:
    text = f"{value:+,.2f}" if signed else f"{value:,.2f}"
    return f"{text} {currency}" if currency else text


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def _when(incident: Incident) -> str:
    if incident.start == incident.end:
        return incident.start.isoformat()
    return f"{incident.start.isoformat()} → {incident.end.isoformat()}"


def _window(report: AnomalyReport) -> str:
    if report.window_start is None or report.window_end is None:
        return "unknown window"
    if report.window_start == report.window_end:
        return report.window_start.isoformat()
    return f"{report.window_start.isoformat()} to {report.window_end.isoformat()}"


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural or word + 's')}"


def headline(report: AnomalyReport) -> str:
    """One line that says what happened; used as the title and as Slack's notification text."""
    if not report.has_anomalies:
        if report.series_count == 0:
            return f"{report.title}: no scoring results to report"
        return f"{report.title}: all clear"
    categories = _plural(len(report.affected_series), "cost category", "cost categories")
    return (
        f"{report.title}: {_plural(len(report.incidents), 'incident')} in {categories}, "
        f"est. extra cost {_amount(report.extra_cost, report.currency, signed=True)}"
    )


def _summary_lines(report: AnomalyReport) -> list[str]:
    """Plain facts under the headline, shared by markdown and Slack."""
    scored = _plural(report.series_count, "cost category", "cost categories")
    lines = [f"Scored window {_window(report)} · {scored} scored"]
    drops = [i for i in report.incidents if i.direction == "drop"]
    if drops:
        lines.append(
            f"{_plural(len(drops), 'drop')}: "
            f"{_amount(report.shortfall, report.currency)} below expected in total"
        )
    if report.missing_results:
        lines.append(
            f"Warning: {_plural(report.missing_results, 'scoring result')} missing (failed or skipped)"
        )
    return lines


def _model_label(model: SeriesModel) -> str:
    name = model.model_name or "unknown model"
    return f"{name} {model.model_version}" if model.model_version else name


# ------------------------------------------------------------------------------------------------------------
# Markdown (the report file)


def render_markdown(report: AnomalyReport, *, chart_filename: str | None = None) -> str:
    """The full report as GitHub-flavoured markdown: every incident, no size limit."""
    lines = [f"# {headline(report)}", ""]
    if not report.has_anomalies:
        lines.append(
            f"No anomalies in the scored window {_window(report)} "
            f"({_plural(report.series_count, 'cost category', 'cost categories')} scored)."
        )
        if report.missing_results:
            lines += ["", _summary_lines(report)[-1] + "."]
        return "\n".join(lines) + "\n"

    lines += [line + "." for line in _summary_lines(report)]
    lines += ["", "## Incidents (largest impact first)", ""]
    lines.append(
        "| # | Category | When | Days | Direction | Actual | Expected | Est. extra cost | vs expected "
        "| Peak day |"
    )
    lines.append("|--:|---|---|--:|---|--:|--:|--:|--:|---|")
    for number, incident in enumerate(report.incidents, start=1):
        lines.append(
            "| "
            + " | ".join(
                [
                    str(number),
                    _md_cell(incident.series),
                    _when(incident),
                    str(incident.days),
                    incident.direction,
                    _amount(incident.observed, report.currency),
                    _amount(incident.expected, report.currency),
                    _amount(incident.extra_cost, report.currency, signed=True),
                    _pct(incident.delta_pct),
                    incident.peak_day.isoformat(),
                ]
            )
            + " |"
        )
    if chart_filename:
        lines += ["", f"![Anomalies]({chart_filename})"]
    lines += ["", "## Models", "", "| Category | Model | W&B run |", "|---|---|---|"]
    for model in report.affected_models:
        run = f"[run]({model.run_url})" if model.run_url else "offline (no run URL)"
        lines.append(f"| {_md_cell(model.series)} | {_md_cell(_model_label(model))} | {run} |")
    others = report.series_count - len(report.affected_models)
    if others > 0:
        lines += [
            "",
            f"{_plural(others, 'other cost category', 'other cost categories')} scored without anomalies.",
        ]
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# ------------------------------------------------------------------------------------------------------------
# Slack


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
        if report.missing_results:
            text += "\n" + _escape(_summary_lines(report)[-1])
        if report_location:
            text += f"\nReport: `{_escape(report_location)}`"
        sections.append(_fit(text, section_limit))
    else:
        header = [f":rotating_light: *{_escape(headline(report))}*", *map(_escape, _summary_lines(report))]
        if report_location:
            header.append(f"Full report: `{_escape(report_location)}`")
        sections += _chunk_lines(header, [], section_limit)

        shown = report.incidents[:max_incidents]
        table_header, table_rows = _slack_table(shown, report.currency)
        sections += _chunk_code_block(table_header, table_rows, section_limit)
        hidden = report.incidents[max_incidents:]
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


def _slack_table(incidents: Sequence[Incident], currency: str | None) -> tuple[list[str], list[str]]:
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
            _truncate(i.series, _SLACK_CATEGORY_WIDTH),
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


def _compact_when(incident: Incident) -> str:
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
    if model.run_url:
        return f"{label} · <{model.run_url}|W&amp;B run>"
    return f"{label} · offline run"


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
