"""The anomaly chart: a PNG with one panel per affected series, drawn without pyplot's global state."""

from __future__ import annotations

import struct

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from airflow_provider_snowstorm.core.charts import (
    affected_series,
    anomaly_chart,
    anomaly_figure,
    render_anomaly_chart,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Figure height: 2.4 inches per panel + 0.6 for the title, at 100 dpi.
PANEL_PIXELS = 240
TITLE_PIXELS = 60


def predictions(flags: dict[str, list[int]]) -> pd.DataFrame:
    """One series per key, 10 days from 2026-01-01; flagged days are 3x expected."""
    days = pd.date_range("2026-01-01", periods=10)
    rows = []
    for series, flagged in flags.items():
        for day_index, day in enumerate(days):
            is_anomaly = day_index in flagged
            rows.append(
                {
                    "usage_date": day.date().isoformat(),
                    "series": series,
                    "value": 300.0 if is_anomaly else 100.0,
                    "expected": 100.0,
                    "is_anomaly": is_anomaly,
                }
            )
    return pd.DataFrame(rows)


def png_size(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_chart_is_written_as_png(tmp_path) -> None:
    path = anomaly_chart(predictions({"compute": [3]}), tmp_path / "nested" / "chart.png")
    assert path == tmp_path / "nested" / "chart.png"
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_one_panel_per_affected_series_only() -> None:
    png = render_anomaly_chart(predictions({"compute": [3, 4], "storage": [7], "clean": []}))
    assert png_size(png) == (1000, 2 * PANEL_PIXELS + TITLE_PIXELS)


def test_panels_are_capped_at_the_largest_impact() -> None:
    frame = predictions({"small": [1], "large": [1, 2, 3], "medium": [1, 2]})
    assert affected_series(frame) == ["large", "medium", "small"]
    png = render_anomaly_chart(frame, max_panels=2)
    assert png_size(png)[1] == 2 * PANEL_PIXELS + TITLE_PIXELS


def test_no_anomalies_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no anomalies"):
        render_anomaly_chart(predictions({"clean": []}))


def test_no_pyplot_figures_are_left_behind() -> None:
    before = plt.get_fignums()
    render_anomaly_chart(predictions({"compute": [3]}))
    assert plt.get_fignums() == before


def test_every_day_of_an_incident_is_marked_including_continuing_days() -> None:
    frame = predictions({"compute": [3]})
    frame["continuing"] = frame["usage_date"].isin(["2026-01-05", "2026-01-06"])  # days 4-5 continue day 3
    frame.loc[frame["continuing"], "value"] = 250.0
    (ax,) = anomaly_figure(frame, currency="USD").axes
    marked = {
        collection.get_label(): sorted(
            mdates.num2date(x).date().isoformat() for x, _ in collection.get_offsets()
        )
        for collection in ax.collections
    }
    assert marked["anomaly"] == ["2026-01-04"]
    assert marked["same incident, no own alarm"] == ["2026-01-05", "2026-01-06"]
    (span,) = ax.patches  # one shaded incident: day 3 to day 5
    left, right = (mdates.num2date(x).date() for x in (span.get_x(), span.get_x() + span.get_width()))
    assert (left.isoformat(), right.isoformat()) == ("2026-01-03", "2026-01-06")
    assert ax.get_ylabel() == "Daily spend (USD)"


def test_axis_without_currency_says_daily_spend() -> None:
    (ax,) = anomaly_figure(predictions({"compute": [3]})).axes
    assert ax.get_ylabel() == "Daily spend"


def test_a_continuing_flag_outside_every_incident_is_not_marked() -> None:
    """As in the report: a day marked continuing with no alarm before it is no incident."""
    frame = predictions({"compute": [3]})
    frame["continuing"] = frame["usage_date"] == "2026-01-09"
    (ax,) = anomaly_figure(frame).axes
    assert [c.get_label() for c in ax.collections] == ["anomaly"]


def test_the_legend_sits_below_the_panels_not_over_the_data() -> None:
    figure = anomaly_figure(predictions({"compute": [3], "storage": [5]}))
    assert all(ax.get_legend() is None for ax in figure.axes)
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == ["actual", "expected", "anomaly"]
