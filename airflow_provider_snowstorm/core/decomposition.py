"""A causal, robust seasonal decomposition of many daily series at once.

The seed method decomposed each series with a centred moving average: the trend at day D used days after D, so a
model scored yesterday differently once today's data arrived, and one series at a time was slow. Here every quantity
for day ``t`` is built only from days strictly before ``t`` (so an anomaly cannot mask itself), from medians (so past
anomalies barely move the baseline), and vectorised over a ``(days, series)`` array.

For day ``t`` with period ``p``:

- level ``L[t]``: interquartile mean of the last full period ``x[t-p:t]`` (one value per season, so seasonality
  cancels);
- trend: the median of the last ``trend_periods`` period-on-period changes of ``L``, extrapolated over the
  ``(p + 1) / 2`` days between the level window's centre and ``t``;
- seasonal ``S[t]``: the median, over the last ``seasonal_periods`` periods, of the same season's distance from its
  centred full-period median (only windows that ended before ``t``);
- expected ``E[t] = (L[t] + trend) * S[t]`` (multiplicative, the default: a cost's weekly pattern scales with its
  level) or ``L[t] + trend + S[t]`` (additive), residual ``R[t] = x[t] - E[t]``;
- scale: ``1.4826 * MAD`` of the residuals of the ``scale_window`` days before the latest period boundary (with
  ``relative_scale`` and multiplicative seasonality, of the residuals relative to their expected values, times
  ``E[t]``, wherever those days hold no zero value)
  (floored at ``scale_floor`` times the level, and that floor alone at a sub-daily position whose value was exactly
  the same in each of the last ``seasonal_periods`` periods, for values at or above it: a suspended warehouse's
  night, a busy one's full size), and the robust z-score
  ``R[t] / scale[t]``.

Three refinements, each measured on the quality benchmark and each switchable off: a second baseline from
``baseline_lag`` days earlier (a day is judged against the baseline it is closer to, so a burst's end is not a
"drop"); a calendar adjustment for consistent monthly and quarterly jobs (month starts, month-end and quarter-end
runs), whose own variation widens that day's scale; and ``continuing`` flags for the days after a level shift has
already been reported, so it alarms once.

With ``position_periods`` it also gives the same-position z-score (``position_zscore``): the value against the mean
and standard deviation of the same weekday (hour) in past periods, the detector's second opinion. With ``outages``,
the runs of zero rows where a value above zero was expected get ``outage_zscore`` (``core.outages``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from airflow_provider_snowstorm.core.lookback import lags, shift, trailing_count
from airflow_provider_snowstorm.core.outages import outage_reach, zero_run_zscore

__all__ = ["CausalDecomposition", "DecompositionConfig", "causal_decompose", "history_needed", "warm_up_days"]

_MAD_TO_SIGMA = 1.4826
_MEAN_AD_TO_SIGMA = 1.2533
# Series are processed in blocks so that the sliding windows (days x series x window) stay small in memory.
_SERIES_PER_BLOCK = 512


@dataclass(frozen=True)
class CausalDecomposition:
    """Per day and series (arrays of shape ``(days, series)``); NaN where there is not enough history yet."""

    expected: np.ndarray
    residual: np.ndarray
    scale: np.ndarray
    zscore: np.ndarray
    # True where the day continues a run of ``rebase_after`` large same-direction residuals (a reported shift).
    continuing: np.ndarray
    # The value's z-score against the same season position in the last ``position_periods`` periods (NaN where
    # fewer than two are known, or with ``position_periods`` 0): a second, independent baseline.
    position_zscore: np.ndarray
    # How unlikely the run of zero rows ending at the row is (``core.outages``), on rows expected above zero; 0
    # elsewhere and with ``outages`` off.
    outage_zscore: np.ndarray


def scale_min_count(period: int) -> int:
    """Residuals needed before the first scale: half a period, at least three."""
    return max(3, period // 2)


def warm_up_days(period: int) -> int:
    """Rows of history before the first z-score: a period for the level, half a period until the first seasonal
    ratio is known, then ``scale_min_count`` residuals for the scale."""
    return period + (period - 1) // 2 + scale_min_count(period)


@dataclass(frozen=True)
class DecompositionConfig:
    """The decomposition's parameters, given once to ``causal_decompose`` and ``history_needed``.

    ``period`` is in rows (days for daily data). ``min_scale`` floors the residual scale in the series' own units
    (money), ``scale_floor`` as a share of its level. ``baseline_lag``, ``rebase_after``, ``monthly_periods`` and
    ``quarterly_periods`` of 0 turn off the lagged baseline, the level-shift rebase and the monthly and quarterly
    calendar adjustments; ``multiplicative`` False makes the seasonality additive. ``position_periods`` above 0 also
    computes ``position_zscore``, the value against the same season position in that many past periods.
    ``outages`` computes ``outage_zscore`` (runs of zero rows against the same positions in ``seasonal_periods``
    past periods). ``relative_scale`` (with ``multiplicative``) scales residuals relative to their expected values.
    ``sporadic_scale`` takes the mean absolute deviation for the scale where most rows it reads are zero.
    """

    period: int = 7
    seasonal_periods: int = 8
    trend_periods: int = 4
    scale_window: int = 56
    scale_floor: float = 0.02
    min_scale: float = 0.0
    baseline_lag: int = 14
    rebase_after: int = 3
    rebase_z: float = 3.0
    monthly_periods: int = 3
    monthly_z: float = 2.0
    quarterly_periods: int = 0
    multiplicative: bool = True
    position_periods: int = 0
    outages: bool = False
    relative_scale: bool = False
    sporadic_scale: bool = False


def history_needed(config: DecompositionConfig) -> int:
    """Days before day ``t`` that fully determine its expected value, residual and scale.

    Scoring with this much history gives exactly the result of scoring with all of it, which lets a model carry only
    this tail of its training data.
    """
    period, seasonal_periods = config.period, config.seasonal_periods
    expected_reach = max(seasonal_periods * period + (period - 1) // 2, (config.trend_periods + 1) * period)
    # The scale looks back over a window ending up to a period before t, and at the same position in past periods.
    scale_reach = max(config.scale_window + period - 1, seasonal_periods * period)
    base = max(
        scale_reach + expected_reach + max(config.baseline_lag, config.rebase_after),
        config.position_periods * period,
        outage_reach(period, seasonal_periods, config.scale_window) if config.outages else 0,
    )
    # The same calendar position ``monthly_periods`` months (``quarterly_periods`` quarters) back is at most 31 days
    # per month away, and the same business day before the month's end up to three days more.
    months = max(config.monthly_periods, 3 * config.quarterly_periods)
    return base + (31 * months + 3 if months else 0)


def _comparators(size: int) -> list[tuple[int, int]]:
    """Batcher's odd-even merge sorting network for ``size`` inputs (pairs ``(low, high)``)."""
    width = 1
    while width < size:
        width *= 2
    pairs: list[tuple[int, int]] = []
    span = 1
    while span < width:
        step = span
        while step >= 1:
            for block in range(step % span, width - step, 2 * step):
                for offset in range(min(step, width - block - step)):
                    low, high = block + offset, block + offset + step
                    if low // (2 * span) == high // (2 * span):
                        pairs.append((low, high))
            step //= 2
        span *= 2
    # Padding inputs would be +inf at the end and never move: comparators that touch them can go.
    return [(low, high) for low, high in pairs if high < size]


def _network_sort(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Element-wise sort of equally shaped arrays with a sorting network: vectorised, no per-row overhead.

    NaN in any input gives NaN (``np.minimum`` and ``np.maximum`` propagate it).
    """
    items = list(arrays)
    for low, high in _comparators(len(items)):
        items[low], items[high] = np.minimum(items[low], items[high]), np.maximum(items[low], items[high])
    return items


def _network_median(arrays: list[np.ndarray]) -> np.ndarray:
    """Element-wise median of equally shaped arrays."""
    items = _network_sort(arrays)
    middle = len(items) // 2
    return items[middle] if len(items) % 2 else (items[middle - 1] + items[middle]) / 2


def _trailing_level(values: np.ndarray, window: int) -> np.ndarray:
    """``out[t]``: interquartile mean of ``values[t-window+1 : t+1]`` along axis 0; NaN until the window is full.

    A median of the period would be 0 for a warehouse that runs 10 hours of 24 (or a job on two days of seven):
    the mean of the middle half keeps the level of such series while one extreme row still cannot move it.
    """
    days = values.shape[0]
    out = np.full(values.shape, np.nan)
    if days >= window:
        ranked = _network_sort([values[window - 1 - k : days - k] for k in range(window)])
        trim = window // 4
        out[window - 1 :] = np.mean(ranked[trim : window - trim], axis=0)
    return out


def _median_of_lags(values: np.ndarray, step: int, count: int) -> np.ndarray:
    """``out[t] = nanmedian(values[t - step], values[t - 2 step], ..., values[t - count step])``."""
    lagged = lags(values, step, count)
    out = _network_median(lagged)
    # Where some lags are missing (the warm-up rows), fall back to the median of those that exist.
    rows = np.unique(np.nonzero(~np.isfinite(out))[0])
    if rows.size:
        out[rows] = _nanmedian_first_axis(np.stack([lag[rows] for lag in lagged]))
    return out


def _nanmedian_first_axis(stacked: np.ndarray) -> np.ndarray:
    """``np.nanmedian(stacked, axis=0)`` (NaN where all are NaN), without its masked-array path and warning.

    Sorting puts NaN last, so the median of the ``count`` finite values sits at ranks ``(count - 1) // 2`` and
    ``count // 2``; the mean of the two is taken as ``np.nanmedian`` does, so results are identical, several times
    faster on the warm-up rows of every block.
    """
    ordered = np.sort(stacked, axis=0)
    count = (~np.isnan(ordered)).sum(axis=0)
    low = np.take_along_axis(ordered, np.maximum((count - 1) // 2, 0)[None], axis=0)[0]
    high = np.take_along_axis(ordered, np.maximum(count // 2 - (count == 0), 0)[None], axis=0)[0]
    return np.where(count > 0, (low + high) / 2, np.nan)


def _mad(windows: np.ndarray, zeros: np.ndarray | None = None) -> np.ndarray:
    """``1.4826 * MAD`` along the last axis, in float32 (a scale needs no more precision).

    Where more than half the residuals are equal (an intermittent series: mostly zero days) the MAD is 0 and says
    nothing about the days that do move; the mean absolute deviation (times 1.2533, its normal-consistent factor)
    takes its place. So it does where more than half the rows are ``zeros`` (rows whose value is 0, given alongside):
    their residuals differ by the expected value's small variations, so the MAD is not 0, but it measures only the
    idle rows, and an ordinary active day is dozens of such scales out. ``np.partition`` on the two middle ranks
    instead of ``np.median`` skips a NaN check and a copy.
    """
    size = windows.shape[-1]
    middle = [(size - 1) // 2, size // 2]
    ranked = np.partition(windows.astype(np.float32), middle, axis=-1)
    centre = ranked[..., middle].mean(axis=-1, keepdims=True)
    absolute = np.abs(ranked - centre)
    deviations = np.partition(absolute, middle, axis=-1)
    mad = _MAD_TO_SIGMA * deviations[..., middle].mean(axis=-1, dtype=np.float64)
    usable = mad > 0
    if zeros is not None:
        usable &= 2 * zeros.sum(axis=-1) <= windows.shape[-1]
    return np.where(usable, mad, _MEAN_AD_TO_SIGMA * absolute.mean(axis=-1, dtype=np.float64))


def _anchored_mad(
    residual: np.ndarray,
    window: int,
    period: int,
    first_row: int,
    min_count: int,
    zeros: np.ndarray | None = None,
) -> np.ndarray:
    """``1.4826 * MAD`` of the residuals of the ``window`` rows before each row's anchor.

    Anchors are the rows whose number (periods of the index since 1970-01-01) is a multiple of ``period``; a row
    uses the MAD computed at the latest anchor at or before it. Recomputing once per period instead of every row
    costs ``period`` times less, and anchoring on the calendar keeps a row's scale independent of where the array
    starts. Until a full window of residuals exists (the warm-up of a short history), an anchor uses the residuals
    there are (at least ``min_count``), and rows before the first anchor use those before them, so a model can
    start right after the warm-up. ``zeros`` (rows x series: the rows whose value is 0) go to ``_mad`` with each
    window.
    """
    days = residual.shape[0]
    out = np.full(residual.shape, np.nan)
    # Residuals are missing only in the first rows (the decomposition's warm-up), the same rows for every series.
    finite_rows = np.isfinite(residual).all(axis=1)
    if not finite_rows.any():
        return out
    first_finite = int(np.argmax(finite_rows))
    by_series = np.ascontiguousarray(residual.T)
    by_zeros = None if zeros is None else np.ascontiguousarray(zeros.T)

    def windows_at(starts: np.ndarray) -> np.ndarray:
        zeros_at = None if by_zeros is None else sliding_window_view(by_zeros, window, axis=1)[:, starts]
        return _mad(sliding_window_view(by_series, window, axis=1)[:, starts], zeros_at)

    def since_first(row: int) -> np.ndarray:
        cut = slice(first_finite, row)
        return _mad(by_series[:, cut], None if by_zeros is None else by_zeros[:, cut])

    anchors = np.arange((-first_row) % period, days, period)
    anchors = anchors[anchors - first_finite >= min_count]
    if anchors.size:
        at_anchor = np.empty((anchors.size, residual.shape[1]))
        complete = anchors - window >= first_finite
        if complete.any():
            at_anchor[complete] = windows_at(anchors[complete] - window).T
        for position in np.flatnonzero(~complete):
            at_anchor[position] = since_first(anchors[position])
        latest_anchor = np.searchsorted(anchors, np.arange(days), side="right") - 1
        has_anchor = latest_anchor >= 0
        out[has_anchor] = at_anchor[latest_anchor[has_anchor]]
    # Rows before the first anchor with enough residuals use those before them, so a short history starts early.
    first_anchor = int(anchors[0]) if anchors.size else days
    for row in range(first_finite + min_count, first_anchor):
        out[row] = since_first(row)
    return out


def _residual_scale(
    values: np.ndarray,
    expected: np.ndarray,
    residual: np.ndarray,
    config: DecompositionConfig,
    first_row: int,
) -> np.ndarray:
    """The residuals' scale at each row (``_anchored_mad``). With ``relative_scale`` and multiplicative seasonality,
    noise grows with the cost as the pattern does, so the scale is ``E[t]`` times the MAD of the residuals relative
    to their expected values: a weekly job's noise no longer widens the quiet days' scale, nor a quiet day's narrow
    the job's. Where the rows the scale reads hold a zero value (sporadic use, idle hours), a relative residual means
    little and the scale stays the MAD of the residuals themselves."""
    period, window = config.period, config.scale_window
    min_count = scale_min_count(period)
    is_zero = values == 0
    zeros = is_zero if config.sporadic_scale else None
    if not (config.relative_scale and config.multiplicative):
        return _anchored_mad(residual, window, period, first_row, min_count=min_count, zeros=zeros)
    # An anchored scale reads ``window`` rows before an anchor up to ``period - 1`` rows back: zeros among all of them.
    zero_free = trailing_count(is_zero, window + period - 1) == 0
    scale = np.full(values.shape, np.nan)
    relative_columns = np.flatnonzero(zero_free.any(axis=0))
    if relative_columns.size:
        taken = expected[:, relative_columns]
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = np.where(taken > 0, residual[:, relative_columns] / taken, 0.0)
        relative = np.where(np.isfinite(residual[:, relative_columns]), relative, np.nan)
        scale[:, relative_columns] = taken * _anchored_mad(
            relative, window, period, first_row, min_count=min_count
        )
    absolute_columns = np.flatnonzero(~zero_free.all(axis=0))
    if absolute_columns.size:
        absolute = _anchored_mad(
            residual[:, absolute_columns],
            window,
            period,
            first_row,
            min_count=min_count,
            zeros=None if zeros is None else zeros[:, absolute_columns],
        )
        scale[:, absolute_columns] = np.where(
            zero_free[:, absolute_columns], scale[:, absolute_columns], absolute
        )
    return scale


def _calendar_alignments(days: int, first_day: int, months: int, every: int = 1) -> list[np.ndarray]:
    """For each way a monthly job can be scheduled, ``rows[m, t]``: the row with the same calendar position as row
    ``t`` in the month ``(m + 1) * every`` months before it, or -1 if there is none (``every=3``: quarterly jobs).

    Positions: the day of the month (the 1st, the 15th), the days to the month's end (the last day), and the
    business days to the month's end (the last business day: month-end batch runs). Weekend days have no
    business-day position.
    """
    dates = np.datetime64("1970-01-01", "D") + first_day + np.arange(days)
    month = dates.astype("datetime64[M]")
    month_start = month.astype("datetime64[D]")
    month_end = (month + 1).astype("datetime64[D]")
    is_business = np.is_busday(dates)
    business_left = (
        np.busday_count(dates, month_end) - is_business
    )  # business days after this one in its month
    positions = {
        "day_of_month": (dates - month_start).astype(np.int64),
        "days_to_end": (month_end - dates).astype(np.int64),
        "business_days_to_end": np.where(is_business, business_left, -1),
    }
    month_number = month.astype(np.int64)
    alignments = []
    for position in positions.values():
        known = position >= 0
        codes = np.where(known, month_number * 64 + position, np.iinfo(np.int64).max)
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        rows = np.full((months, days), -1, dtype=np.int64)
        for lag in range(1, months + 1):
            wanted = (month_number - lag * every) * 64 + position
            found = np.clip(np.searchsorted(sorted_codes, wanted), 0, days - 1)
            match = known & (sorted_codes[found] == wanted)
            rows[lag - 1] = np.where(match, order[found], -1)
        alignments.append(rows)
    return alignments


def position_zscore(values: np.ndarray, period: int, periods: int) -> np.ndarray:
    """``(x[t] - mean) / std`` of the values at ``t - period, ..., t - periods * period`` (the same weekday of daily
    data, the same hour of hourly data); NaN where fewer than two of them exist.

    The same-weekday z-score of dbt-style volume tests: it knows nothing of trends or level shifts, which is what
    makes it a useful second opinion on the decomposition's residual. A zero standard deviation (a flat charge)
    gives an infinite z-score, so the decomposition's floored scale decides there.
    """
    lagged = lags(values, period, periods)
    count = np.sum([np.isfinite(lag) for lag in lagged], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(lagged, axis=0) / count
        variance = np.nansum([(lag - mean) ** 2 for lag in lagged], axis=0) / (count - 1)
        zscore = (values - mean) / np.sqrt(variance)
    zscore = np.where(values == mean, 0.0, zscore)
    return np.where(count >= 2, zscore, np.nan)


def _same_sign_minimum(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The residual closer to zero when both point the same way, 0 when they disagree; ``first`` where ``second``
    is missing."""
    closer = np.where(np.abs(first) <= np.abs(second), first, second)
    combined = np.where(np.sign(first) == np.sign(second), closer, 0.0)
    return np.where(np.isfinite(second), combined, first)


def _typical(lagged: list[np.ndarray]) -> np.ndarray:
    """The median of three or more lagged residuals; of two, the one closer to zero when they agree in direction
    (0 when they do not), so two quarters must both show a job before it is learned."""
    if len(lagged) == 2:
        return _same_sign_minimum(*lagged)
    return _network_median(lagged)


def _decompose_block(
    values: np.ndarray, config: DecompositionConfig, first_row: int, rows_per_day: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    period, seasonal_periods, baseline_lag = config.period, config.seasonal_periods, config.baseline_lag
    rebase_after, rebase_z = config.rebase_after, config.rebase_z
    monthly_periods, monthly_z = config.monthly_periods, config.monthly_z
    full_period_median = _trailing_level(values, period)  # window ends at t (inclusive)
    level = shift(full_period_median, 1)  # window x[t-p : t]
    trend = _median_of_lags(level - shift(level, period), period, config.trend_periods) / period
    trend = np.where(np.isfinite(trend), trend, 0.0)
    lag_to_centre = (period + 1) / 2
    # Centred full-period median of day j ends at j + p - 1 - (p - 1) // 2: known at t when that is before t.
    ahead = period - 1 - (period - 1) // 2
    centred = np.full(values.shape, np.nan)
    centred[: values.shape[0] - ahead] = full_period_median[ahead:]
    if config.multiplicative:
        # Spend scales its weekly pattern with its level: after a level shift, weekday and weekend move together.
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(centred > 0, values / centred, np.where(np.isfinite(centred), 1.0, np.nan))
        factor = _median_of_lags(ratio, period, seasonal_periods)

        def baseline(base_level: np.ndarray) -> np.ndarray:
            # Costs are never negative: a falling trend extrapolated below zero expects zero.
            return np.maximum(base_level * factor, 0.0)

    else:
        seasonal = _median_of_lags(values - centred, period, seasonal_periods)

        def baseline(base_level: np.ndarray) -> np.ndarray:
            return np.maximum(base_level + seasonal, 0.0)

    expected = baseline(level + trend * lag_to_centre)
    residual = values - expected
    scale = _residual_scale(values, expected, residual, config, first_row)
    # Noise often depends on the season's position (busy hours and idle nights, weekdays and weekends): the scale
    # is at least the typical |residual| of the same position in the last ``seasonal_periods`` periods.
    position = _MAD_TO_SIGMA * _median_of_lags(np.abs(residual), period, seasonal_periods)
    scale = np.fmax(np.where(np.isfinite(scale), position, np.nan), scale)
    floor = np.maximum(config.scale_floor * np.abs(level), max(config.min_scale, np.finfo(np.float64).tiny))
    if rows_per_day > 1:
        # An hour that was exactly the same in each of the last ``seasonal_periods`` days (a warehouse suspended
        # every night, or busy at its full size) has no noise of its own above that value: the floor is its scale
        # there, so spend at that hour (or beyond that size) stands out. Below it the hour keeps its residuals'
        # scale: a job that ends early on a warehouse that usually runs the whole hour is not an incident (on the
        # quality benchmark's `job_fleet` the floor below made 30 of its 34 false-alarm hours). Not for daily (or
        # weekly) data, where a weekday that was zero eight weeks running is sporadic use, not a schedule.
        lagged = lags(values, period, seasonal_periods)
        with np.errstate(invalid="ignore"):
            scheduled = np.logical_and.reduce([lag == lagged[0] for lag in lagged[1:]]) & (
                values >= lagged[0]
            )
        scale = np.where(scheduled & np.isfinite(scale), floor, scale)
    scale = np.where(np.isfinite(scale), np.maximum(scale, floor), np.nan)
    continuing = np.zeros(values.shape, dtype=bool)
    if rebase_after > 0:
        # A day that continues ``rebase_after`` days in a row beyond ``rebase_z`` scales in the same direction is
        # the new normal (a level shift already reported), not a new incident.
        with np.errstate(invalid="ignore", divide="ignore"):
            zscore = residual / scale
            recent_z = [shift(zscore, lag) for lag in range(1, rebase_after + 1)]
            up = np.logical_and.reduce([z > rebase_z for z in recent_z]) & (residual > 0)
            down = np.logical_and.reduce([z < -rebase_z for z in recent_z]) & (residual < 0)
        continuing = up | down
    adapted = residual.copy()
    if baseline_lag > 0:
        # The baseline as it was ``baseline_lag`` days ago: the end of a burst returns to it, so is not a drop.
        earlier = shift(level, baseline_lag) + shift(trend, baseline_lag) * (lag_to_centre + baseline_lag)
        adapted = _same_sign_minimum(adapted, values - baseline(earlier))
    quarterly_periods = config.quarterly_periods
    if (monthly_periods > 0 or quarterly_periods > 0) and rows_per_day == 1:
        # Recurring monthly effects (month-end jobs): subtract the median residual of the same calendar position in
        # the last ``monthly_periods`` months when it is consistently beyond ``monthly_z`` scales, taking whichever
        # position (day of month, days or business days to the month's end) recurs most strongly. Quarter-end
        # runs (a quarterly close) recur at the same position ``quarterly_periods`` quarters back.
        best_z = np.zeros(values.shape)
        adjustment = np.zeros(values.shape)
        alignments = (
            _calendar_alignments(values.shape[0], first_row, monthly_periods) if monthly_periods else []
        )
        if quarterly_periods > 0:
            alignments += _calendar_alignments(values.shape[0], first_row, quarterly_periods, every=3)
        for rows in alignments:
            valid = (rows >= 0).all(axis=0)
            if not valid.any():
                continue
            take = rows[:, valid]
            with np.errstate(invalid="ignore", divide="ignore"):
                typical = _typical([adapted[row] for row in take])
                typical_z = _typical([adapted[row] / scale[row] for row in take])
            stronger = (
                np.isfinite(typical) & (np.abs(typical_z) >= monthly_z) & (np.abs(typical_z) > best_z[valid])
            )
            best_z[valid] = np.where(stronger, np.abs(typical_z), best_z[valid])
            adjustment[valid] = np.where(stronger, typical, adjustment[valid])
        adapted -= adjustment
        # A learned job varies in proportion to its size, as the rest of the cost does: a month-end run five times
        # the level widens that day's scale six-fold, or its normal variation would read as anomalies.
        with np.errstate(invalid="ignore", divide="ignore"):
            growth = np.where(expected > 0, np.abs(adjustment) / expected, 0.0)
        scale = scale * (1.0 + np.where(np.isfinite(growth), growth, 0.0))
    if config.position_periods > 0:
        same_position = position_zscore(values, period, config.position_periods)
    else:
        same_position = np.full(values.shape, np.nan)
    expected = values - adapted
    outage = np.zeros(values.shape)
    if config.outages:
        runs = zero_run_zscore(values, period=period, periods=seasonal_periods, window=config.scale_window)
        outage = np.where(expected > 0, runs, 0.0)
    return expected, adapted, scale, continuing, same_position, outage


def causal_decompose(
    values: np.ndarray,
    config: DecompositionConfig | None = None,
    *,
    first_row: int = 0,
    rows_per_day: float = 1.0,
    **parameters: float,
) -> CausalDecomposition:
    """Decompose each column of ``values`` (days x series), using for day ``t`` only days before ``t``.

    ``config`` holds the parameters (``DecompositionConfig()`` by default); keyword arguments named like its fields
    (``period=24``, ``monthly_periods=0``) override them. ``first_row`` is the number of the first row counted in the
    index's frequency since 1970-01-01 (the day number for daily data); it anchors the scale updates and, for daily
    data (``rows_per_day`` 1), the calendar months of the day-of-month adjustment, which is skipped at other
    frequencies. Sub-daily data (``rows_per_day`` above 1: 24 for hourly rows) get the scheduled-position rule;
    weekly data (1/7) neither.
    """
    config = replace(config or DecompositionConfig(), **parameters)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D (days, series), got shape {values.shape}")
    if config.period < 2:
        raise ValueError(f"period must be at least 2 days, got {config.period}")
    expected = np.empty_like(values)
    residual = np.empty_like(values)
    scale = np.empty_like(values)
    continuing = np.empty(values.shape, dtype=bool)
    same_position = np.empty_like(values)
    outage = np.empty_like(values)
    for first in range(0, values.shape[1], _SERIES_PER_BLOCK):
        block = slice(first, first + _SERIES_PER_BLOCK)
        (
            expected[:, block],
            residual[:, block],
            scale[:, block],
            continuing[:, block],
            same_position[:, block],
            outage[:, block],
        ) = _decompose_block(values[:, block], config, first_row, rows_per_day)
    with np.errstate(invalid="ignore", divide="ignore"):
        zscore = residual / scale
    return CausalDecomposition(
        expected=expected,
        residual=residual,
        scale=scale,
        zscore=zscore,
        continuing=continuing,
        position_zscore=same_position,
        outage_zscore=outage,
    )
