"""Common peer detectors, all scored causally in batches: robust STL, same-season-position z-score and Prophet.

Each returns an anomaly score per scored row (higher is more anomalous) for the rows after the training span; a
flag is ``score > cutoff``. ``period`` is the rows per season (7 for daily data, 24 for hourly). Cutoffs are
chosen by the quality benchmark on other data families, except Prophet's, which is its own prediction interval
(score 1 at the interval's edge).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from statsmodels.tsa.seasonal import STL

__all__ = ["prophet_available", "prophet_interval_scores", "same_weekday_scores", "stl_scores"]

_MAD_TO_SIGMA = 1.4826


def stl_scores(
    values: np.ndarray, train_days: int, step: int = 7, window: int = 182, period: int = 7
) -> np.ndarray:
    """|robust z| of robust STL residuals: each block is decomposed with the ``window`` rows up to its end.

    The z-score centres and scales the block's residuals by the median and MAD of the residuals before it.
    """
    out = []
    for end in range(train_days, len(values), step):
        stop = min(end + step, len(values))
        chunk = values[max(0, stop - window - (stop - end)) : stop]
        residual = np.asarray(STL(chunk, period=period, robust=True).fit().resid)
        history, new = residual[: -(stop - end)], residual[-(stop - end) :]
        centre = np.median(history)
        scale = max(_MAD_TO_SIGMA * np.median(np.abs(history - centre)), 1e-9 * max(abs(centre), 1.0))
        out.append(np.abs(new - centre) / scale)
    return np.concatenate(out)


def same_weekday_scores(values: np.ndarray, train_days: int, weeks: int = 8, period: int = 7) -> np.ndarray:
    """|z| of each row against the mean and standard deviation of the same season position (the same weekday for
    daily data, the same hour for hourly data) in the ``weeks`` periods before.

    The dbt-style volume anomaly test; ``values`` is ``(rows, series)``, so all series are scored at once.
    """
    values = np.asarray(values, dtype=np.float64)
    days = values.shape[0]
    lagged = np.stack([values[train_days - period * k : days - period * k] for k in range(1, weeks + 1)])
    mean = lagged.mean(axis=0)
    std = lagged.std(axis=0, ddof=1)
    floor = 1e-9 * np.maximum(np.abs(mean), 1.0)
    return np.abs(values[train_days:] - mean) / np.maximum(std, floor)


def prophet_available() -> bool:
    try:
        import prophet  # noqa: F401
    except ImportError:
        return False
    return True


def prophet_interval_scores(
    values: np.ndarray,
    index: pd.DatetimeIndex,
    train_days: int,
    step: int = 28,
    window: int = 365,
    interval_width: float = 0.99,
    period: int = 7,
) -> np.ndarray:
    """Distance outside Prophet's prediction interval in half-widths (> 1: outside the interval).

    Prophet is refitted every ``step`` days on the ``window`` days before (weekly seasonality, no yearly or daily
    terms) and forecasts the next block; ``interval_width`` 0.99 because the default 0.8 flags one day in five.
    With ``period`` 24 (hourly rows) the model also has daily seasonality; ``step`` and ``window`` count rows.
    """
    from prophet import Prophet

    for name in ("cmdstanpy", "prophet"):
        logging.getLogger(name).setLevel(logging.ERROR)
    out = []
    for end in range(train_days, len(values), step):
        stop = min(end + step, len(values))
        history = pd.DataFrame(
            {"ds": index[max(0, end - window) : end], "y": values[max(0, end - window) : end]}
        )
        model = Prophet(
            interval_width=interval_width,
            yearly_seasonality=False,
            daily_seasonality=period == 24,
            weekly_seasonality=True,
            uncertainty_samples=200,
        ).fit(history)
        forecast = model.predict(pd.DataFrame({"ds": index[end:stop]}))
        half_width = np.maximum((forecast["yhat_upper"] - forecast["yhat_lower"]).to_numpy() / 2, 1e-9)
        out.append(np.abs(values[end:stop] - forecast["yhat"].to_numpy()) / half_width)
    return np.concatenate(out)
