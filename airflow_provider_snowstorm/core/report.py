"""Turn batch-scoring output into an anomaly report: incidents explained by usage, rendered as markdown.

Pure functions and dataclasses (no Airflow), so the report reads the same in a file, in every channel and in tests.
Incident grouping lives in ``core.incidents`` (its names are re-exported here); the Slack layout lives beside its
only user, in ``notifications.slack_layout`` (``SlackLimits``, ``SlackMessage`` and ``slack_messages`` still import
from here, with a ``DeprecationWarning``).

Input is what each scoring task returns (one JSON-safe dict per series)::

    {"series": "compute", "model_name": "...", "model_version": "v3", "run_url": "https://..." | None,
     "window_start": "2026-01-01", "window_end": "2026-01-31",
     "rows": [{prediction columns, dates as ISO strings}, ...], "anomalies": [rows with is_anomaly true]}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from airflow_provider_snowstorm.core.features import series_parts, snake_case_usage_type
from airflow_provider_snowstorm.core.incidents import (
    DEFAULT_BASELINE_WEEKS,
    DEFAULT_ONSET_FRACTION,
    REQUIRED_PREDICTION_COLUMNS,
    Contributor,
    Direction,
    Incident,
    IncidentGroup,
    find_incidents,
    group_incidents,
    normalise_predictions,
    parent_series,
)
from airflow_provider_snowstorm.core.schema import (
    DATE,
    FALSE_ALARM,
    FEEDBACK_COLUMNS,
    MODEL_NAME,
    MODEL_VERSION,
    REAL_INCIDENT,
    SERIES,
    TOTAL_USAGE,
)

__all__ = [
    "ACCOUNT_COLUMN",
    "COST_COLUMN",
    "CURRENCY_COLUMN",
    "DEFAULT_BASELINE_WEEKS",
    "DEFAULT_MAX_PANELS",
    "DEFAULT_ONSET_FRACTION",
    "DEFAULT_TITLE",
    "DEFAULT_TOP_CONTRIBUTORS",
    "REQUIRED_PREDICTION_COLUMNS",
    "ROOT_CAUSE_COLUMNS",
    "USAGE_DATE_COLUMN",
    "USAGE_TYPE_COLUMN",
    "AnomalyReport",
    "Contributor",
    "Direction",
    "Incident",
    "IncidentGroup",
    "SeriesModel",
    "build_report",
    "data_notes",
    "explain",
    "explain_groups",
    "feedback_sql",
    "find_incidents",
    "group_incidents",
    "headline",
    "normalise_predictions",
    "normalise_usage",
    "parent_series",
    "render_markdown",
    "root_cause_records",
    "usage_currency",
]

# Charts show at most this many affected series, largest impact first.
DEFAULT_MAX_PANELS = 8

DEFAULT_TITLE = "Snowflake spend anomalies"
DEFAULT_TOP_CONTRIBUTORS = 5
# Per-account usage rows (as USAGE_IN_CURRENCY_DAILY, any case): what the root cause reads.
USAGE_DATE_COLUMN = "usage_date"
ACCOUNT_COLUMN = "account_name"
USAGE_TYPE_COLUMN = "usage_type"
COST_COLUMN = "usage_in_currency"
CURRENCY_COLUMN = "currency"


@dataclass(frozen=True, slots=True)
class SeriesModel:
    """Which model scored a series, for provenance links in the report."""

    series: str
    model_name: str | None
    model_version: str | None
    run_url: str | None
    """The scoring run."""
    training_run_url: str | None = None
    """The run that trained the model, when the scoring result carries it."""


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
    groups: tuple[IncidentGroup, ...] = ()
    """The incidents as counted (nested series merged), largest impact first; see :func:`group_incidents`."""
    notes: tuple[str, ...] = ()
    """Facts about the data the reader should know (days still settling, restated days re-scored), one line each."""
    feedback_table: str | None = None
    """Where readers record an incident as real or a false alarm (the labels model evaluation uses)."""

    @property
    def has_anomalies(self) -> bool:
        return bool(self.incidents)

    @property
    def extra_cost(self) -> float:
        """Estimated extra cost of all spikes, each cost counted once (drops are reported separately)."""
        return math.fsum(g.extra_cost for g in self.groups if g.direction == "spike")

    @property
    def shortfall(self) -> float:
        """How far below expected all drops went together (a positive amount), each cost counted once."""
        return -math.fsum(g.extra_cost for g in self.groups if g.direction == "drop")

    @property
    def categories(self) -> tuple[str, ...]:
        """The cost categories that explain the incidents (inner categories rather than their total)."""
        return tuple(dict.fromkeys(c for g in self.groups for c in g.categories))

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


# ------------------------------------------------------------------------------------------------------------
def normalise_usage(usage: pd.DataFrame) -> pd.DataFrame:
    """Per-account usage rows (``USAGE_DATE, ACCOUNT_NAME, USAGE_TYPE, USAGE_IN_CURRENCY[, CURRENCY]``, any case)
    summed per day, account and usage type; usage types snake_cased as the feature columns are."""
    frame = usage.rename(columns=lambda column: str(column).lower())
    required = (USAGE_DATE_COLUMN, ACCOUNT_COLUMN, USAGE_TYPE_COLUMN, COST_COLUMN)
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(f"usage rows are missing column(s) {missing}; expected at least {list(required)}")
    frame = frame.assign(
        **{
            USAGE_DATE_COLUMN: pd.to_datetime(frame[USAGE_DATE_COLUMN]).dt.normalize(),
            ACCOUNT_COLUMN: frame[ACCOUNT_COLUMN].astype(str),
            USAGE_TYPE_COLUMN: frame[USAGE_TYPE_COLUMN]
            .astype(str)
            .map(lambda usage_type: snake_case_usage_type(usage_type, validate=False)),
            COST_COLUMN: pd.to_numeric(frame[COST_COLUMN]).astype(float),
        }
    )
    keys = [USAGE_DATE_COLUMN, ACCOUNT_COLUMN, USAGE_TYPE_COLUMN]
    return frame.groupby(keys, as_index=False, sort=True)[COST_COLUMN].sum()


def usage_currency(usage: pd.DataFrame) -> str | None:
    """The one currency of the usage rows (their ``CURRENCY`` column), or None when absent or mixed."""
    columns = {str(column).lower(): column for column in usage.columns}
    if CURRENCY_COLUMN not in columns:
        return None
    values = {str(v) for v in usage[columns[CURRENCY_COLUMN]].dropna().unique() if str(v).strip()}
    return values.pop() if len(values) == 1 else None


def explain(
    usage: pd.DataFrame,
    start: date,
    end: date,
    direction: Direction,
    *,
    baseline_weeks: int = DEFAULT_BASELINE_WEEKS,
    top: int = DEFAULT_TOP_CONTRIBUTORS,
) -> tuple[tuple[float, float], tuple[Contributor, ...]] | None:
    """Which accounts and usage types drove the change from ``start`` to ``end``, and by how much.

    Each account and usage type is compared with its own expected spend: for every day, the median of the same
    weekday in the ``baseline_weeks`` weeks before ``start`` (so the incident itself never raises its baseline; a
    day without a row costs 0). Returns ((actual, expected) summed over everything, the ``top`` contributors in the
    incident's direction with their share of the net deviation), or None when ``usage`` has no day before ``start``.
    ``usage`` is :func:`normalise_usage` output.
    """
    if usage.empty:
        return None
    wide = usage.pivot_table(
        index=USAGE_DATE_COLUMN,
        columns=[ACCOUNT_COLUMN, USAGE_TYPE_COLUMN],
        values=COST_COLUMN,
        aggfunc="sum",
    )
    first = wide.index.min()
    days = pd.date_range(start, end, freq="D")
    wide = wide.reindex(pd.date_range(first, max(wide.index.max(), days[-1]), freq="D")).fillna(0.0)
    if first >= pd.Timestamp(start):
        return None
    expected_days = []
    for day in days:
        weeks_inside = (day - pd.Timestamp(start)).days // 7 + 1
        baseline = [day - pd.Timedelta(weeks=weeks_inside + k) for k in range(baseline_weeks)]
        baseline = [d for d in baseline if d >= first]
        if not baseline:
            return None
        expected_days.append(wide.loc[baseline].median())
    expected = pd.concat(expected_days, axis=1).sum(axis=1)
    observed = wide.reindex(days).fillna(0.0).sum()
    delta = observed - expected
    net = float(delta.sum())
    ordered = delta.sort_values(ascending=direction == "drop", kind="stable")
    contributors = tuple(
        Contributor(
            account=str(account),
            usage_type=str(usage_type),
            observed=float(observed[(account, usage_type)]),
            expected=float(expected[(account, usage_type)]),
            share=None if net == 0 else float(value) / net,
        )
        for rank, ((account, usage_type), value) in enumerate(ordered.head(top).items())
        # The largest mover always; the others when they carry at least 1% of the net deviation.
        if (value > 0) == (direction == "spike")
        and value != 0
        and (rank == 0 or abs(value) >= 0.01 * abs(net))
    )
    return (float(observed.sum()), float(expected.sum())), contributors


def explain_groups(
    groups: Sequence[IncidentGroup],
    usage: pd.DataFrame | None,
    *,
    baseline_weeks: int = DEFAULT_BASELINE_WEEKS,
    top: int = DEFAULT_TOP_CONTRIBUTORS,
) -> list[IncidentGroup]:
    """The groups with their root cause (and amounts from it) when per-account ``usage`` covers them.

    An account's series (``PROD:compute``) is explained by that account's rows, an organisation's by all accounts'.
    """
    if usage is None:
        return list(groups)
    rows = normalise_usage(usage)
    explained = []
    for group in groups:
        result = explain(
            _usage_for(rows, group),
            group.start,
            group.end,
            group.direction,
            baseline_weeks=baseline_weeks,
            top=top,
        )
        if result is None:
            explained.append(group)
            continue
        totals, contributors = result
        net = totals[0] - totals[1]
        if net == 0 or (net > 0) != (group.direction == "spike"):
            # The usage rows do not show the move the model saw (other rows, or a baseline that already had it):
            # keep the model's amounts rather than report a spike as a saving.
            explained.append(group)
            continue
        explained.append(
            IncidentGroup(
                lead=group.lead,
                members=group.members,
                contributors=contributors,
                breakdown=totals,
                baseline_weeks=baseline_weeks,
            )
        )
    explained.sort(key=lambda g: (-g.impact, g.start, g.series))
    return explained


def _usage_for(rows: pd.DataFrame, group: IncidentGroup) -> pd.DataFrame:
    """The rows inside the group's lead series: one account's for ``ACCOUNT:...``, and of every usage type for a
    total, one usage type for a category."""
    account, usage_type = series_parts(group.lead.series)
    if account is not None:
        rows = rows[rows[ACCOUNT_COLUMN] == account]
    if usage_type == TOTAL_USAGE:
        return rows
    return rows[rows[USAGE_TYPE_COLUMN] == usage_type]


# ------------------------------------------------------------------------------------------------------------
# Scoring results -> report


def data_notes(
    *,
    settling: Sequence[date | str] = (),
    restated: Sequence[date | str] = (),
    other_currencies: Sequence[str] = (),
    drift: str | None = None,
) -> list[str]:
    """The report's lines about its data: days not scored yet, days re-scored after a restatement, currencies left
    out, and the drift that made monitoring retrain the models. Without them a reader cannot tell a quiet report from
    one that has not seen the last days, or from one whose models are being replaced."""

    def days(values: Sequence[date | str]) -> str:
        texts = sorted(value if isinstance(value, str) else value.isoformat() for value in values)
        return ", ".join(texts) if len(texts) <= 5 else f"{texts[0]} to {texts[-1]} ({len(texts)} days)"

    notes = []
    if settling:
        notes.append(
            f"Still settling, not scored yet: {days(settling)} (Snowflake's usage figures arrive over up to 72 hours)"
        )
    if restated:
        notes.append(f"Restated by Snowflake after they were scored, re-scored: {days(restated)}")
    if other_currencies:
        notes.append(
            f"Spend in {', '.join(other_currencies)} is not in this report (amounts in different currencies are "
            "never added up; run a pipeline per currency with SNOWSTORM_CURRENCY)"
        )
    if drift:
        notes.append(f"Drift, models retraining: {drift}")
    return notes


def build_report(
    results: Sequence[Mapping[str, Any] | None],
    *,
    title: str = DEFAULT_TITLE,
    currency: str | None = None,
    usage: pd.DataFrame | None = None,
    baseline_weeks: int = DEFAULT_BASELINE_WEEKS,
    top_contributors: int = DEFAULT_TOP_CONTRIBUTORS,
    onset_fraction: float = DEFAULT_ONSET_FRACTION,
    notes: Sequence[str] = (),
    feedback_table: str | None = None,
) -> AnomalyReport:
    """Build the report from the scoring tasks' results (one dict per series; None for a missing result).

    Incidents of nested series are counted once (:func:`group_incidents`). With ``usage`` (per-account rows as in
    ``USAGE_IN_CURRENCY_DAILY``, covering ``baseline_weeks`` before the scored window), each incident names the
    accounts and usage types that drove it and its amounts are their sum (:func:`explain`); the currency is read
    from its ``CURRENCY`` column unless ``currency`` is given. ``notes`` are shown under the summary, as given.
    With ``feedback_table`` (a validated table name), the report says how to mark each incident real or a false
    alarm there (:func:`feedback_sql`).
    """
    if isinstance(notes, str) or not all(isinstance(note, str) for note in notes):
        raise TypeError("notes must be a list of strings, one line each")
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
                training_run_url=_optional_str(result.get("training_run_url")),
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
    incidents = find_incidents(predictions, onset_fraction=onset_fraction)
    groups = explain_groups(
        group_incidents(incidents), usage, baseline_weeks=baseline_weeks, top=top_contributors
    )
    if currency is None and usage is not None:
        currency = usage_currency(usage)
    return AnomalyReport(
        incidents=tuple(incidents),
        groups=tuple(groups),
        models=tuple(models),
        window_start=min(starts) if starts else None,
        window_end=max(ends) if ends else None,
        series_count=len(models),
        missing_results=missing,
        title=title,
        currency=currency,
        predictions=predictions,
        notes=tuple(note.strip().rstrip(".") for note in notes if note.strip()),
        feedback_table=feedback_table,
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


ROOT_CAUSE_COLUMNS: tuple[str, ...] = (
    "incident_start",
    "incident_end",
    "first_alarm",
    "series",
    "categories",
    "direction",
    "account_name",
    "usage_type",
    "actual",
    "expected",
    "extra_cost",
    "share",
    "currency",
)


def root_cause_records(report: AnomalyReport) -> list[dict[str, Any]]:
    """One row per incident and contributor (the markdown's "What drove it" tables), for a table next to the
    predictions; incidents without a root cause are left out. Dates are ``datetime.date``; columns
    :data:`ROOT_CAUSE_COLUMNS`."""
    return [
        {
            "incident_start": group.start,
            "incident_end": group.end,
            "first_alarm": group.first_alarm,
            "series": group.series,
            "categories": ",".join(group.categories),
            "direction": group.direction,
            "account_name": contributor.account,
            "usage_type": contributor.usage_type,
            "actual": round(contributor.observed, 2),
            "expected": round(contributor.expected, 2),
            "extra_cost": round(contributor.extra_cost, 2),
            "share": None if contributor.share is None else round(contributor.share, 4),
            "currency": report.currency,
        }
        for group in report.groups
        for contributor in group.contributors
    ]


# ------------------------------------------------------------------------------------------------------------
# Formatting helpers


def _amount(value: float, currency: str | None, *, signed: bool = False) -> str:
    text = f"{value:+,.2f}" if signed else f"{value:,.2f}"
    return f"{text} {currency}" if currency else text


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1f}%"


def _when(incident: Incident | IncidentGroup) -> str:
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
    """One line that says what happened; used as the title and as Slack's notification text.

    Each cost is counted once: a burst in compute that also shows in ``total_usage`` is one incident.
    """
    if not report.has_anomalies:
        if report.series_count == 0:
            return f"{report.title}: no scoring results to report"
        return f"{report.title}: all clear"
    categories = _plural(len(report.categories), "cost category", "cost categories")
    text = f"{report.title}: {_plural(len(report.groups), 'incident')} in {categories}"
    if any(g.direction == "spike" for g in report.groups):
        text += f", est. extra cost {_amount(report.extra_cost, report.currency, signed=True)}"
    else:
        text += f", {_amount(report.shortfall, report.currency)} below expected"
    return text


def _summary_lines(report: AnomalyReport) -> list[str]:
    """Plain facts under the headline, shared by markdown and Slack."""
    scored = _plural(report.series_count, "cost category", "cost categories")
    lines = [f"Scored window {_window(report)} · {scored} scored"]
    if report.currency:
        lines[0] += f" · amounts in {report.currency}"
    drops = [g for g in report.groups if g.direction == "drop"]
    if drops and any(g.direction == "spike" for g in report.groups):
        lines.append(
            f"{_plural(len(drops), 'drop')}: "
            f"{_amount(report.shortfall, report.currency)} below expected in total"
        )
    if any(g.breakdown for g in report.groups):
        weeks = max(g.baseline_weeks for g in report.groups if g.breakdown)
        lines.append(
            "Actual and expected spend are summed over every account and usage type, each against its own "
            f"expected spend (median of the same weekday in the {weeks} weeks before the incident)"
        )
    return lines + _status_lines(report)


def _status_lines(report: AnomalyReport) -> list[str]:
    """Missing results and notes about the data: shown with every report, all clear or not; and, with incidents,
    where to say whether they were real."""
    lines = list(report.notes)
    if report.feedback_table and report.has_anomalies:
        lines.append(
            f"Real incident or false alarm? Record it in {report.feedback_table} (verdict '{REAL_INCIDENT}' or "
            f"'{FALSE_ALARM}'): it is the label the next model evaluation learns from"
        )
    if report.missing_results:
        lines.insert(
            0, f"Warning: {_plural(report.missing_results, 'scoring result')} missing (failed or skipped)"
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
        if _status_lines(report):
            lines += ["", *(line + "." for line in _status_lines(report))]
        return "\n".join(lines) + "\n"

    currency = report.currency
    lines += [line + "." for line in _summary_lines(report)]
    lines += ["", "## Incidents (largest impact first)", ""]
    lines.append(
        "| # | Category | When | Days | Direction | Actual | Expected | Est. extra cost | vs expected "
        "| Peak day |"
    )
    lines.append("|--:|---|---|--:|---|--:|--:|--:|--:|---|")
    for number, group in enumerate(report.groups, start=1):
        lines.append(
            "| "
            + " | ".join(
                [
                    str(number),
                    _md_cell(group.label),
                    _when(group),
                    str(group.days),
                    group.direction,
                    _amount(group.observed, currency),
                    _amount(group.expected, currency),
                    _amount(group.extra_cost, currency, signed=True),
                    _pct(group.delta_pct),
                    group.peak_day.isoformat(),
                ]
            )
            + " |"
        )
    for number, group in enumerate(report.groups, start=1):
        late = group.first_alarm > group.start
        if not group.members and not group.contributors and not late:
            continue
        alarm = f" (first alarm {group.first_alarm.isoformat()})" if late else ""
        lines += ["", f"### {number}. {group.label}, {_when(group)}{alarm}", ""]
        if group.contributors:
            lines += [
                "What drove it (accounts and usage types against their own expected spend):",
                "",
                "| Account | Usage type | Actual | Expected | Extra | Share |",
                "|---|---|--:|--:|--:|--:|",
            ]
            lines += [
                f"| {_md_cell(c.account)} | {_md_cell(c.usage_type)} | {_amount(c.observed, currency)} "
                f"| {_amount(c.expected, currency)} | {_amount(c.extra_cost, currency, signed=True)} "
                f"| {_share(c.share)} |"
                for c in group.contributors
            ]
            lines.append("")
        lines += [
            "Detected by the models (each category's own model; counted once above):",
            "",
            "| Category | When | Actual | Expected | Extra | vs expected |",
            "|---|---|--:|--:|--:|--:|",
        ]
        lines += [
            f"| {_md_cell(i.series)} | {_when(i)} | {_amount(i.observed, currency)} "
            f"| {_amount(i.expected, currency)} | {_amount(i.extra_cost, currency, signed=True)} "
            f"| {_pct(i.delta_pct)} |"
            for i in group.incidents
        ]
    if chart_filename:
        lines += ["", f"![Anomalies]({chart_filename})"]
    lines += ["", "## Models", "", "| Category | Model | Training run | Scoring run |", "|---|---|---|---|"]
    for model in report.affected_models:
        lines.append(
            f"| {_md_cell(model.series)} | {_md_cell(_model_label(model))} "
            f"| {_md_link('training run', model.training_run_url)} | {_md_link('scoring run', model.run_url)} |"
        )
    others = report.series_count - len(report.affected_models)
    if others > 0:
        lines += [
            "",
            f"{_plural(others, 'other cost category', 'other cost categories')} scored without anomalies.",
        ]
    if report.feedback_table:
        lines += [
            "",
            "## Feedback",
            "",
            f"Each incident as a row for `{report.feedback_table}`: keep `'{REAL_INCIDENT}'` for a real one, change "
            f"it to `'{FALSE_ALARM}'` for a false alarm, and run it in Snowflake.",
            "",
            "```sql",
            feedback_sql(report),
            "```",
        ]
    return "\n".join(lines) + "\n"


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def feedback_sql(report: AnomalyReport) -> str:
    """One ``INSERT`` with a row per incident of every detected category, verdict ``real``: the reader keeps or flips
    each verdict and runs it. Feedback is per cost category, so a group's nested categories each get their row."""
    if not report.feedback_table:
        raise ValueError("the report has no feedback_table")
    rows = [  # in FEEDBACK_COLUMNS order
        ", ".join(
            [
                _sql_text(incident.series),
                _sql_text(incident.start.isoformat()),
                _sql_text(incident.end.isoformat()),
                _sql_text(REAL_INCIDENT),
                _sql_text(f"incident {number}"),
                "CURRENT_USER()",
                "CURRENT_TIMESTAMP()",
            ]
        )
        for number, group in enumerate(report.groups, start=1)
        for incident in group.incidents
    ]
    columns = ", ".join(name.upper() for name in FEEDBACK_COLUMNS)
    values = ",\n".join(f"    ({row})" for row in rows)
    return f"INSERT INTO {report.feedback_table} ({columns}) VALUES\n{values};"


def _md_link(name: str, url: str | None) -> str:
    return f"[{name}]({url})" if url else "offline (no URL)"


def _share(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.0f}%"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# Moved to ``notifications.slack_layout`` (beside the Slack channel, their only user); importable from here for now.
_MOVED_TO_SLACK_LAYOUT = frozenset({"SlackLimits", "SlackMessage", "slack_messages"})


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_SLACK_LAYOUT:
        import warnings

        warnings.warn(
            f"airflow_provider_snowstorm.core.report.{name} moved to "
            f"airflow_provider_snowstorm.notifications.slack_layout.{name}; the old import will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        from airflow_provider_snowstorm.notifications import slack_layout

        return getattr(slack_layout, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
