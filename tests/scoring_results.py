"""Scoring results as ``BatchScoreOperator`` returns them through XCom, built by hand for report and notifier tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

START = date(2026, 1, 1)


def make_rows(
    series: str,
    values: Sequence[float],
    expected: Sequence[float] | float,
    flags: Sequence[int],
    **row_fields: Any,
) -> list[dict[str, Any]]:
    """One row per day from ``START`` with ISO dates, as in XCom; ``row_fields`` are added to every row."""
    expectations = [expected] * len(values) if isinstance(expected, int | float) else list(expected)
    return [
        {
            "usage_date": (START + timedelta(days=day)).isoformat(),
            "series": series,
            "value": value,
            "expected": exp,
            "residual": value - exp,
            "anomaly_score": 0.9 if flag else 0.1,
            "threshold": 0.5,
            "is_anomaly": bool(flag),
            **row_fields,
        }
        for day, (value, exp, flag) in enumerate(zip(values, expectations, flags, strict=True))
    ]


def make_result(
    series: str,
    values: Sequence[float],
    expected: Sequence[float] | float,
    flags: Sequence[int],
    *,
    model_version: str = "v3",
    run_url: str | None = None,
    **row_fields: Any,
) -> dict[str, Any]:
    """One scoring task's XCom: every day's row, and the flagged ones as ``anomalies``."""
    rows = make_rows(series, values, expected, flags, **row_fields)
    return {
        "series": series,
        "model_name": f"snowstorm-{series}",
        "model_version": model_version,
        "run_url": run_url,
        "window_start": rows[0]["usage_date"],
        "window_end": rows[-1]["usage_date"],
        "rows": rows,
        "anomalies": [row for row in rows if row["is_anomaly"]],
    }
