"""A PNG chart of the affected cost categories: actual vs expected spend with the anomalies marked.

Uses ``matplotlib.figure.Figure`` with the Agg canvas directly, never ``pyplot``: no global figure state that
could leak between tasks in a long-lived worker, and no display backend needed.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from airflow_provider_snowstorm.core.report import DEFAULT_MAX_PANELS, find_incidents, normalise_predictions
from airflow_provider_snowstorm.core.schema import (
    ANOMALY_SCORE,
    DATE,
    EXPECTED,
    IS_ANOMALY,
    RESIDUAL,
    SERIES,
    THRESHOLD,
    VALUE,
)

_PANEL_HEIGHT_INCHES = 2.4
_WIDTH_INCHES = 10.0


def affected_series(predictions: pd.DataFrame) -> list[str]:
    """Series with at least one anomaly, largest total |value - expected| on flagged days first."""
    frame = normalise_predictions(predictions)
    flagged = frame[frame[IS_ANOMALY]]
    impact = (flagged[VALUE] - flagged[EXPECTED]).abs().groupby(flagged[SERIES]).sum()
    return [str(s) for s in impact.sort_values(ascending=False, kind="stable").index]


def anomaly_figure(
    predictions: pd.DataFrame,
    *,
    max_panels: int = DEFAULT_MAX_PANELS,
    title: str | None = None,
    currency: str | None = None,
) -> Figure:
    """The chart's figure: one panel per affected series (the ``max_panels`` with the largest impact).

    Every day of an incident is marked: alarmed days in red, its other days (those that continue a reported alarm,
    the detector's ``continuing`` flag, and those where the excursion began before the alarm) in orange, and the
    incident's span shaded. The y axis says the currency when known.
    """
    if max_panels < 1:
        raise ValueError(f"max_panels must be at least 1, got {max_panels}")
    frame = normalise_predictions(predictions)
    series_to_plot = affected_series(frame)
    if not series_to_plot:
        raise ValueError("predictions contain no anomalies (is_anomaly true) to chart")
    shown = series_to_plot[:max_panels]

    figure = Figure(figsize=(_WIDTH_INCHES, _PANEL_HEIGHT_INCHES * len(shown) + 0.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(shown), 1, squeeze=False)[:, 0]
    for ax, series in zip(axes, shown, strict=True):
        rows = frame[frame[SERIES] == series]
        flagged = rows[rows[IS_ANOMALY]]
        spans = incident_spans(rows)
        inside = pd.Series(False, index=rows.index)
        for start, end in spans:
            inside |= rows[DATE].between(start, end)
        # Days of an incident without their own alarm: continuing after it, or the excursion's start before it. A
        # continuing flag outside every incident (no alarm before it) is no incident, as in the report.
        continuing = rows[inside & ~rows[IS_ANOMALY]]
        for start, end in spans:
            ax.axvspan(
                start - pd.Timedelta(hours=12),
                end + pd.Timedelta(hours=12),
                color="tab:red",
                alpha=0.08,
                lw=0,
            )
        ax.plot(rows[DATE], rows[VALUE], color="tab:blue", linewidth=1.4, label="actual")
        ax.plot(rows[DATE], rows[EXPECTED], color="tab:gray", linewidth=1.2, linestyle="--", label="expected")
        ax.scatter(flagged[DATE], flagged[VALUE], color="tab:red", s=36, zorder=3, label="anomaly")
        if not continuing.empty:
            ax.scatter(
                continuing[DATE],
                continuing[VALUE],
                color="tab:orange",
                s=30,
                zorder=3,
                label="same incident, no own alarm",
            )
        ax.set_title(series, loc="left", fontsize=10)
        ax.set_ylabel(f"Daily spend ({currency})" if currency else "Daily spend", fontsize=9)
        ax.grid(alpha=0.3)
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    # Below the panels, never over the data; one entry per kind of mark that any panel uses.
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    figure.legend(list(entries.values()), list(entries), loc="outside lower center", fontsize=8, ncols=4)
    heading = title or "Snowflake spend: actual vs expected"
    if len(series_to_plot) > len(shown):
        heading += f" (top {len(shown)} of {len(series_to_plot)} affected categories)"
    figure.suptitle(heading, fontsize=12)

    return figure


def render_anomaly_chart(
    predictions: pd.DataFrame,
    *,
    max_panels: int = DEFAULT_MAX_PANELS,
    title: str | None = None,
    currency: str | None = None,
    dpi: int = 100,
) -> bytes:
    """PNG bytes of :func:`anomaly_figure`."""
    return _png(anomaly_figure(predictions, max_panels=max_panels, title=title, currency=currency), dpi)


def incident_spans(rows: pd.DataFrame) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """First and last day of each incident of one series' normalised rows: alarmed days and the continuing days
    that follow them (as the report counts them, :func:`~airflow_provider_snowstorm.core.report.find_incidents`)."""
    spans: list[tuple[pd.Timestamp, pd.Timestamp]] = []
    for incident in find_incidents(rows):
        spans.append((pd.Timestamp(incident.start), pd.Timestamp(incident.end)))
    return sorted(spans)


def anomaly_chart(
    predictions: pd.DataFrame,
    path: str | os.PathLike[str],
    *,
    max_panels: int = DEFAULT_MAX_PANELS,
    title: str | None = None,
    currency: str | None = None,
) -> Path:
    """Write the chart as a PNG to ``path`` (parent folders are created) and return the path."""
    target = Path(path)
    png = render_anomaly_chart(predictions, max_panels=max_panels, title=title, currency=currency)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(png)
    return target


def _png(figure: Figure, dpi: int) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _series_rows(detections: pd.DataFrame, series: str) -> pd.DataFrame:
    rows = normalise_predictions(detections)
    rows = rows[rows[SERIES] == series]
    if rows.empty:
        raise ValueError(f"no detections for series {series!r} to chart")
    return rows


def _plot_thresholds(ax: Axes, rows: pd.DataFrame) -> None:
    """The threshold each row's score is compared with: one line, or one for rises and one for drops when drops
    have their own (``calibrate_drops``), each held between the rows of its direction."""
    below = rows[VALUE] < rows[EXPECTED]
    rises, drops = rows[THRESHOLD].where(~below), rows[THRESHOLD].where(below)
    if not rises.notna().any() or not drops.notna().any() or set(rises.dropna()) == set(drops.dropna()):
        ax.plot(
            rows[DATE], rows[THRESHOLD], color="tab:red", linestyle="--", linewidth=1.0, label="threshold"
        )
        return
    for values, label, style in ((rises, "threshold (rises)", "--"), (drops, "threshold (drops)", ":")):
        ax.plot(
            rows[DATE], values.ffill().bfill(), color="tab:red", linestyle=style, linewidth=1.0, label=label
        )


def render_decomposition_chart(detections: pd.DataFrame, series: str, *, dpi: int = 100) -> bytes:
    """PNG of one series' training decomposition: actual vs expected, and the residual (what the forest sees)."""
    rows = _series_rows(detections, series)
    figure = Figure(figsize=(_WIDTH_INCHES, 5.0), layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True)
    top.plot(rows[DATE], rows[VALUE], color="tab:blue", linewidth=1.2, label="actual")
    top.plot(rows[DATE], rows[EXPECTED], color="tab:gray", linewidth=1.0, linestyle="--", label="expected")
    top.legend(loc="upper left", fontsize=8, ncols=2)
    top.set_title(f"{series}: causal seasonal decomposition", loc="left", fontsize=10)
    bottom.bar(rows[DATE], rows[RESIDUAL], color="tab:purple", width=1.0)
    bottom.set_title("residual (actual - expected)", loc="left", fontsize=10)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return _png(figure, dpi)


def render_training_scores_chart(detections: pd.DataFrame, series: str, *, dpi: int = 100) -> bytes:
    """PNG of one series' anomaly scores over the training span, with its threshold and the days above it."""
    rows = _series_rows(detections, series)
    figure = Figure(figsize=(_WIDTH_INCHES, 3.2), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    ax.plot(rows[DATE], rows[ANOMALY_SCORE], color="tab:blue", linewidth=1.0, label="anomaly score")
    _plot_thresholds(ax, rows)
    flagged = rows[rows[IS_ANOMALY]]
    ax.scatter(flagged[DATE], flagged[ANOMALY_SCORE], color="tab:red", s=20, zorder=3, label="flagged")
    ax.set_title(f"{series}: training anomaly scores", loc="left", fontsize=10)
    ax.legend(loc="upper left", fontsize=8, ncols=3)
    ax.grid(alpha=0.3)
    return _png(figure, dpi)


def render_evaluation_chart(
    predictions: pd.DataFrame, labels: pd.DataFrame, series: str, *, title: str, dpi: int = 100
) -> bytes:
    """PNG of an evaluation: one series' anomaly scores, threshold and alarms, with the labelled incidents shaded."""
    rows = _series_rows(predictions, series)
    figure = Figure(figsize=(_WIDTH_INCHES, 3.2), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    for index, label in enumerate(labels[labels["series"] == series].itertuples()):
        ax.axvspan(
            pd.Timestamp(label.start) - pd.Timedelta(hours=12),
            pd.Timestamp(label.end) + pd.Timedelta(hours=12),
            color="tab:green",
            alpha=0.2,
            label="labelled incident" if index == 0 else None,
        )
    ax.plot(rows[DATE], rows[ANOMALY_SCORE], color="tab:blue", linewidth=1.0, label="anomaly score")
    _plot_thresholds(ax, rows)
    flagged = rows[rows[IS_ANOMALY]]
    ax.scatter(flagged[DATE], flagged[ANOMALY_SCORE], color="tab:red", s=20, zorder=3, label="alarm")
    ax.set_xlim(rows[DATE].min() - pd.Timedelta(days=1), rows[DATE].max() + pd.Timedelta(days=1))
    ax.set_title(title, loc="left", fontsize=10)
    ax.legend(loc="upper left", fontsize=8, ncols=4)
    ax.grid(alpha=0.3)
    return _png(figure, dpi)
