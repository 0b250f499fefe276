"""``DecomposeIsolationForest``: causal seasonal decomposition, severity scores, and a calibrated threshold.

A scikit-learn style estimator over a time-indexed frame (daily, hourly or any fixed frequency) whose columns are
cost series. Each series keeps its own causal decomposition and its own thresholds. A row's anomaly score is its
severity in robust standard deviations, as two baselines agree on it: the smaller of the decomposition's z-score
and the same-weekday (same-hour) z-score, 0 where they disagree on the direction, then the larger of that and a
several-row burst z-score, so a 300% deviation always outranks a 3% one. With ``scorer="forest"`` an Isolation
Forest over the decomposition's scale-free features raises, by up to half, rows whose combination is rarer than usual
(on the quality benchmark it did not beat the plain severity, so it is not the default). Each series' threshold is
calibrated to a false-alarm budget with peaks over threshold on its own training scores (``core.thresholds``),
raised to what the training span's normal excursions need; drops get their own, from the rows below expectation.

Scoring is causal: the score of day D depends only on data up to D and on what ``fit`` learned, so a score never
changes when later days arrive. The model keeps the tail of its training data that the decomposition needs, so new
days can be scored on their own right after the training span.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from numbers import Integral, Real
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import IsolationForest
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from airflow_provider_snowstorm.core.decomposition import (
    CausalDecomposition,
    DecompositionConfig,
    causal_decompose,
    history_needed,
    warm_up_days,
)
from airflow_provider_snowstorm.core.lookback import shift
from airflow_provider_snowstorm.core.schema import (
    ANOMALY_SCORE,
    CONTINUING,
    DATE,
    EXPECTED,
    IS_ANOMALY,
    PREDICTION_COLUMNS,
    RESIDUAL,
    SERIES,
    THRESHOLD,
    VALUE,
)
from airflow_provider_snowstorm.core.series_frame import (
    EPOCH,
    ONE_DAY,
    DetectorInputError,
    format_time,
    freq_step,
    freq_string,
    row_unit,
    validate_series_frame,
)
from airflow_provider_snowstorm.core.thresholds import (
    MIN_EXCESSES,
    budget_thresholds,
    budget_to_risk,
    nan_quantiles,
    tail_thresholds,
)

__all__ = [
    "MIN_DEVIATION_PER_DAY",
    "DecomposeIsolationForest",
    "DetectorInputError",
    "busy_levels",
    "min_history_days",
]

Direction = Literal["both", "up", "down"]
# z-scores beyond this are all "extremely anomalous"; clipping keeps them finite in the forest's float32 features.
_Z_CLIP = 1e6
# The forest scores only rows whose severity reaches this (below it no calibrated threshold is ever crossed) and
# raises their score by at most this share, so a rare combination ranks higher but scores never tie.
_FOREST_GATE = 2.0
_FOREST_BOOST = 0.5
# The default materiality floor, in the series' units a day (``min_deviation=None``): a row's share of it.
MIN_DEVIATION_PER_DAY = 1.0


def min_history_days(period: int) -> int:
    """Fewest training rows: the decomposition's warm-up, then ``MIN_EXCESSES`` scores for the threshold.

    Three periods of weekly data (21 days); just over two of a long period (583 rows of 5-minute data with a daily
    period), so that the first 15% of two weeks of 5-minute data is enough.
    """
    return warm_up_days(period) + MIN_EXCESSES


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def rows_per_day(step: pd.Timedelta) -> float:
    """Rows in a day at this step (24 for hourly rows, 1/7 for weekly ones): what decides the calendar rules (the
    day-of-month adjustment is for daily rows, the scheduled-position rule for sub-daily ones), the per-row risk
    and the alarm gap."""
    return ONE_DAY / step


def alarm_episodes(
    candidates: np.ndarray, direction: np.ndarray, gap: int, ongoing: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Anomalous rows (rows x series) split into new alarms and rows that continue an open one.

    An alarm stays open while anomalous rows in its direction keep coming at most ``gap`` rows apart: one incident,
    one alarm, even when a few of its rows fall below the threshold. Rows marked ``ongoing`` (a shift already
    reported, still under way) keep an open alarm in their direction open without raising one, so the rows of a
    level shift that the baseline has not yet caught up with do not alarm again. ``gap=0`` makes every run of
    consecutive anomalous rows an alarm of its own.
    """
    if gap <= 0:
        return candidates.copy(), np.zeros_like(candidates)
    if ongoing is None:
        ongoing = np.zeros_like(candidates)
    alarms = np.zeros_like(candidates)
    continued = np.zeros_like(candidates)
    last_row = np.full(candidates.shape[1], -(gap + 1))
    last_direction = np.zeros(candidates.shape[1])
    for row in range(candidates.shape[0]):
        anomalous = candidates[row]
        open_alarm = (row - last_row <= gap) & (direction[row] == last_direction)
        alarms[row] = anomalous & ~open_alarm
        continued[row] = anomalous & open_alarm
        last_row = np.where(anomalous | (ongoing[row] & open_alarm), row, last_row)
        last_direction = np.where(anomalous, direction[row], last_direction)
    return alarms, continued


def busy_levels(values: np.ndarray, quantile: float = 0.9) -> np.ndarray:
    """Each column's usual busy level: the ``quantile`` of its positive finite rows (0 for a column without any).
    For hourly warehouse credits, about the credits of an hour the warehouse runs at its size."""
    with np.errstate(invalid="ignore"):
        positive = np.where(np.isfinite(values) & (values > 0), values, np.nan)
    return np.nan_to_num(nan_quantiles(positive, quantile), nan=0.0)


def _long_format(result: dict[str, Any]) -> pd.DataFrame:
    days, series = result[VALUE].shape
    return pd.DataFrame(
        {
            DATE: np.repeat(result["index"].to_numpy(), series),
            SERIES: pd.Categorical.from_codes(np.tile(np.arange(series), days), categories=result["series"]),
            **{name: np.asarray(result[name]).reshape(-1) for name in PREDICTION_COLUMNS[2:]},
        }
    )


def _burst_zscore(zscore: np.ndarray, rows: int) -> np.ndarray:
    """``sqrt(rows) * z`` of the least extreme of the last ``rows`` z-scores when they all point the same way, else 0.

    Several moderately high rows in a row are as unlikely as one very high row: a burst of +3 sigma for three days
    scores 5.2. Using the least extreme row keeps a single spike from raising the rows after it.
    """
    if rows <= 1:
        return np.zeros_like(zscore)
    lagged = [zscore] + [shift(zscore, lag) for lag in range(1, rows)]
    with np.errstate(invalid="ignore"):
        low = np.minimum.reduce(lagged)
        high = np.maximum.reduce(lagged)
        burst = np.where(low > 0, low, np.where(high < 0, high, 0.0))
    return np.sqrt(rows) * np.where(np.isfinite(burst), burst, 0.0)


def _consensus(zscore: np.ndarray, position_zscore: np.ndarray) -> np.ndarray:
    """The decomposition's z-score, or the same-position z-score where that is closer to zero; 0 where the two
    disagree on the direction. ``zscore`` alone where the same-position one is unknown.

    The two baselines fail differently: the decomposition follows trends and level shifts but reads a recurring
    heavy weekday as noise, the same-position baseline knows each weekday's spread but not the trend. A row both
    find unusual, in the same direction, is an anomaly far more often than a row only one of them flags.
    """
    with np.errstate(invalid="ignore"):
        agreed = np.where(
            np.sign(zscore) == np.sign(position_zscore),
            np.sign(zscore) * np.fmin(np.abs(zscore), np.abs(position_zscore)),
            0.0,
        )
    return np.where(np.isfinite(position_zscore) & np.isfinite(zscore), agreed, zscore)


class DecomposeIsolationForest(BaseEstimator):
    """Causal seasonal decomposition, severity scores (optionally an Isolation Forest over the decomposition's
    features) and a per-series threshold calibrated to a false-alarm budget.

    Parameters
    ----------
    period:
        Rows per season: 7 for the weekly pattern of daily costs, 24 for the daily pattern of hourly data (168 for
        hourly data with a weekly pattern, given three weeks of history).
    alarm_budget:
        False alarms per series per 30.44 days you are prepared to accept on normal data. Each series' threshold is
        the score a normal row exceeds with that probability, from a peaks-over-threshold fit of its own training
        scores (heavy-tailed series get higher thresholds).
    threshold_cutoff:
        A fixed score threshold (robust standard deviations) for every series instead of the calibrated one.
    seasonal_periods, trend_periods:
        How many past periods the seasonal profile and the trend's median period-on-period change look back over.
    scale_window:
        Rows of past residuals whose MAD scales the z-score; ``None`` means eight periods.
    scale_floor, min_scale:
        The residual scale is at least ``scale_floor`` times the level and at least ``min_scale`` (in the series'
        units, per row), so near-constant series do not alarm on cents.
    direction:
        ``"both"``, ``"up"`` (spikes only) or ``"down"`` (drops only) may be flagged and score.
    min_deviation, min_relative_deviation:
        Materiality: a row is flagged only if ``|value - expected|`` is at least this amount (in the series' units,
        per row) and this share of the expected value, like the impact filters of cloud cost anomaly services. A
        deviation of zero never is. ``None`` (the default) means ``MIN_DEVIATION_PER_DAY`` (1.0) a day: 1.0 for
        daily rows, 1/24 for hourly ones, 7.0 for weekly ones, so a deviation that lasts a day is material at any
        frequency (an hourly one of 1.0 would be 24 a day, and hid every incident of a small hourly series).
    min_deviation_share:
        Makes ``min_deviation`` relative to each series' own size: a series' floor is the smaller of
        ``min_deviation`` and this share of its usual busy level (the 90th percentile of its positive training
        rows; for a warehouse, about the credits of an hour it runs at its size). A small warehouse left running
        then still alarms (an XS warehouse bills 1 credit an hour, at most) while its noise does not. ``None``
        (the default) keeps the absolute floor for every series.
    burst_rows:
        Rows of the burst score (several moderately high rows in a row); 1 turns it off.
    scorer:
        ``"severity"``: the larger of the z-score and the burst score. ``"forest"``: that, raised by up to half
        where an Isolation Forest over (z, burst, relative deviation) ranks the row's combination rarer than the
        median training row; the score stays proportional to the severity, so it keeps ranking beyond the
        training range and never ties.
    n_estimators, max_samples, random_state:
        Passed to scikit-learn's ``IsolationForest`` (``scorer="forest"``).
    max_fit_samples:
        At most this many training rows (drawn at random) fit the forest.
    baseline_lag:
        Rows back to a second, older baseline; a row is judged against whichever baseline it is closer to, so the
        end of a burst is not flagged as a drop. ``None`` means two periods; 0 turns it off.
    rebase_after, rebase_z:
        No repeated alarms after a level shift: once ``rebase_after`` rows in a row sit beyond ``rebase_z`` scales
        in the same direction, the following rows of that run are marked as a continuation. 0 turns it off.
    monthly_periods, monthly_z:
        Day-of-month adjustment for daily data (month-end jobs are learned, not alarmed on). 0 turns it off.
    quarterly_periods:
        Quarters back the same calendar position is compared over for quarter-end jobs (a quarterly close), which
        the monthly comparison cannot learn; a job must show in each of them. 2 learns them, at the cost of reading
        ``3 * 31 * quarterly_periods`` days back instead of ``31 * monthly_periods`` (``required_history_days`` 326
        instead of 233), so bulk scoring reads and decomposes 40% more rows; 0 (the default) turns it off.
    seasonality:
        ``"multiplicative"`` (the pattern scales with the level, as costs do) or ``"additive"``.
    freq:
        The index's fixed frequency (``"D"``, ``"h"``, ``"W"``, ...); ``None`` infers it as the smallest gap between
        rows (so dates a week apart are weekly data, and daily data with missing days are named as such).
    alarm_gap:
        Rows an alarm stays open after its last anomalous row: further anomalous rows in the same direction within
        it continue the alarm (marked ``continuing``) instead of raising new ones, so one incident whose rows dip
        below the threshold now and then alarms once. ``None`` means a quarter of a day for sub-daily data and 0
        (off) for daily data.
    training_incidents_per_month:
        How many incidents a month the training span may hold: that many of its highest excursions (runs of scores
        above 3, ``alarm_gap`` apart; at least one) are set aside: the row-wise tail fit reads only their peaks (an
        incident's rows are not independent draws of the noise, and a long one filled the tail), and the others are
        its normal excursions: where there are at least five, their rate and heights (a declustered
        peaks-over-threshold fit) give the level a normal excursion exceeds ``alarm_budget`` times a month, and the
        threshold is at least that. The row-wise tail fit takes a span's highest scores for incidents; a series
        whose short span shows natural bursts again and again needs this. ``None`` keeps the row-wise fit of every
        training row alone.
    calibrate_drops:
        With ``direction="both"``, rows below their expected value get a threshold of their own, calibrated on the
        training span's rows below expectation (same budget and ceiling), at most the shared one. A cost falls at
        most to zero, so its lower tail is lighter than its upper: one threshold for both, set by the upper tail,
        lets outages pass.
    position_periods:
        Periods of the second opinion: a row's z-score against the same weekday (hour) in this many past periods.
        A row scores the smaller of that and the decomposition's z-score, and 0 where they disagree on the
        direction, so a row must be unusual for both baselines. 0 scores the decomposition alone.
    outages:
        A run of zero rows where a value above zero was expected (spend that stopped) also scores by how unlikely
        the series' own history makes it: the Gaussian quantile of the run's probability, each row's estimated from
        the same position in the last ``seasonal_periods`` periods (``core.outages``). On a noisy series an outage
        is only a few scales below the level, so neither z-score sees it; a series often zero at those positions
        (sporadic use, idle nights) gets little from it. ``False`` scores zeros like any other drop.
    relative_scale:
        With multiplicative seasonality, noise grows with the cost as the pattern does: the scale is the expected
        value times the spread of the residuals relative to their expected values, so a weekly job's noise does not
        widen the quiet days' scale. Where the rows the scale reads hold a zero value (sporadic use, idle hours) it
        stays the spread of the residuals themselves. ``False`` always uses the latter.
    sporadic_scale:
        Where more than half the rows the scale reads are zero (sporadic use, idle hours), their median absolute
        deviation measures the idle rows alone, and an ordinary active day reads as dozens of scales out: the scale
        is then the mean absolute deviation of all of them. ``False`` keeps the median one unless it is 0.

    The defaults were chosen by leave-one-family-out on the quality benchmark (``python -m benchmarks.quality``).
    """

    # Models saved before ``alarm_gap`` / ``min_deviation_share`` existed have no such attributes: they read these
    # defaults (the absolute floor, as they were trained).
    alarm_gap: int | None = None
    min_deviation_share: float | None = None
    busy_level_: np.ndarray | None = None
    # ... and models saved before ``position_periods`` scored the decomposition alone.
    position_periods: int = 0
    training_incidents_per_month: float | None = None
    calibrate_drops: bool = False
    drop_threshold_: np.ndarray | None = None
    quarterly_periods: int = 0
    # ... and models saved before ``outages`` (``relative_scale``, ``sporadic_scale``) scored a run of zeros as any
    # other drop (scaled residuals in the series' units; with the median absolute deviation unless it was 0).
    outages: bool = False
    relative_scale: bool = False
    sporadic_scale: bool = False

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "period": [Interval(Integral, 2, None, closed="left")],
        "alarm_budget": [Interval(Real, 0, 1e4, closed="neither")],
        "threshold_cutoff": [None, Interval(Real, 0, None, closed="neither")],
        "seasonal_periods": [Interval(Integral, 1, None, closed="left")],
        "trend_periods": [Interval(Integral, 1, None, closed="left")],
        "scale_window": [None, Interval(Integral, 2, None, closed="left")],
        "scale_floor": [Interval(Real, 0, 1, closed="both")],
        "min_scale": [Interval(Real, 0, None, closed="left")],
        "direction": [StrOptions({"both", "up", "down"})],
        "min_deviation": [None, Interval(Real, 0, None, closed="left")],
        "min_relative_deviation": [Interval(Real, 0, None, closed="left")],
        "min_deviation_share": [None, Interval(Real, 0, None, closed="neither")],
        "burst_rows": [Interval(Integral, 1, None, closed="left")],
        "scorer": [StrOptions({"severity", "forest"})],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_samples": [
            StrOptions({"auto"}),
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="right"),
        ],
        "random_state": ["random_state"],
        "max_fit_samples": [Interval(Integral, 1, None, closed="left")],
        "baseline_lag": [None, Interval(Integral, 0, None, closed="left")],
        "rebase_after": [Interval(Integral, 0, None, closed="left")],
        "rebase_z": [Interval(Real, 0, None, closed="neither")],
        "monthly_periods": [Interval(Integral, 0, None, closed="left")],
        "monthly_z": [Interval(Real, 0, None, closed="neither")],
        "quarterly_periods": [Interval(Integral, 0, None, closed="left")],
        "seasonality": [StrOptions({"multiplicative", "additive"})],
        "freq": [None, str],
        "alarm_gap": [None, Interval(Integral, 0, None, closed="left")],
        "position_periods": [Interval(Integral, 0, None, closed="left")],
        "training_incidents_per_month": [None, Interval(Real, 0, None, closed="left")],
        "calibrate_drops": ["boolean"],
        "outages": ["boolean"],
        "relative_scale": ["boolean"],
        "sporadic_scale": ["boolean"],
    }

    def __init__(
        self,
        period: int = 7,
        alarm_budget: float = 0.1,
        *,
        threshold_cutoff: float | None = None,
        seasonal_periods: int = 8,
        trend_periods: int = 4,
        scale_window: int | None = None,
        scale_floor: float = 0.02,
        min_scale: float = 0.01,
        direction: Direction = "both",
        min_deviation: float | None = None,
        min_relative_deviation: float = 0.05,
        min_deviation_share: float | None = None,
        burst_rows: int = 3,
        scorer: Literal["severity", "forest"] = "severity",
        n_estimators: int = 100,
        max_samples: int | float | str = "auto",
        random_state: int | None = None,
        max_fit_samples: int = 100_000,
        baseline_lag: int | None = None,
        rebase_after: int = 3,
        rebase_z: float = 3.0,
        monthly_periods: int = 3,
        monthly_z: float = 2.0,
        quarterly_periods: int = 0,
        seasonality: Literal["multiplicative", "additive"] = "multiplicative",
        freq: str | None = None,
        alarm_gap: int | None = None,
        position_periods: int = 8,
        training_incidents_per_month: float | None = 1.0,
        calibrate_drops: bool = True,
        outages: bool = True,
        relative_scale: bool = True,
        sporadic_scale: bool = True,
    ) -> None:
        self.period = period
        self.alarm_budget = alarm_budget
        self.threshold_cutoff = threshold_cutoff
        self.seasonal_periods = seasonal_periods
        self.trend_periods = trend_periods
        self.scale_window = scale_window
        self.scale_floor = scale_floor
        self.min_scale = min_scale
        self.direction = direction
        self.min_deviation = min_deviation
        self.min_relative_deviation = min_relative_deviation
        self.min_deviation_share = min_deviation_share
        self.burst_rows = burst_rows
        self.scorer = scorer
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state
        self.max_fit_samples = max_fit_samples
        self.baseline_lag = baseline_lag
        self.rebase_after = rebase_after
        self.rebase_z = rebase_z
        self.monthly_periods = monthly_periods
        self.monthly_z = monthly_z
        self.quarterly_periods = quarterly_periods
        self.seasonality = seasonality
        self.freq = freq
        self.alarm_gap = alarm_gap
        self.position_periods = position_periods
        self.training_incidents_per_month = training_incidents_per_month
        self.calibrate_drops = calibrate_drops
        self.outages = outages
        self.relative_scale = relative_scale
        self.sporadic_scale = sporadic_scale

    # -- parameters ------------------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        """Every parameter against ``_parameter_constraints``; the error names the parameter and what it got."""
        try:
            self._validate_params()
        except ValueError as error:  # scikit-learn's InvalidParameterError
            raise DetectorInputError(str(error)) from error

    @property
    def _scale_window(self) -> int:
        return self.scale_window if self.scale_window is not None else 8 * self.period

    @property
    def _alarm_gap(self) -> int:
        return self._alarm_gap_rows(self.step_)

    def _alarm_gap_rows(self, step: pd.Timedelta) -> int:
        """Rows an alarm stays open after its last anomalous row: a quarter of a day for sub-daily data, where one
        incident's anomalous rows come with gaps, and none for daily data."""
        if self.alarm_gap is not None:
            return self.alarm_gap
        per_day = rows_per_day(step)
        return int(per_day // 4) if per_day > 1 else 0

    @property
    def _baseline_lag(self) -> int:
        return self.baseline_lag if self.baseline_lag is not None else 2 * self.period

    def _expected_step(self) -> pd.Timedelta:
        """The step of the rows: the training data's once fitted, else ``freq``'s, else a day (cost data)."""
        if hasattr(self, "step_seconds_"):
            return self.step_
        return freq_step(self.freq) if self.freq is not None else ONE_DAY

    def _decomposition_config(self, step: pd.Timedelta) -> DecompositionConfig:
        """The decomposition's parameters for rows ``step`` apart, from this estimator's (``scale_window`` and
        ``baseline_lag`` resolved; the calendar adjustments only for daily rows, so other frequencies read no months
        of history for them)."""
        daily = rows_per_day(step) == 1
        return DecompositionConfig(
            period=self.period,
            seasonal_periods=self.seasonal_periods,
            trend_periods=self.trend_periods,
            scale_window=self._scale_window,
            scale_floor=self.scale_floor,
            min_scale=self.min_scale,
            baseline_lag=self._baseline_lag,
            rebase_after=self.rebase_after,
            rebase_z=self.rebase_z,
            monthly_periods=self.monthly_periods if daily else 0,
            monthly_z=self.monthly_z,
            quarterly_periods=self.quarterly_periods if daily else 0,
            multiplicative=self.seasonality == "multiplicative",
            position_periods=self.position_periods,
            outages=self.outages,
            relative_scale=self.relative_scale,
            sporadic_scale=self.sporadic_scale,
        )

    @property
    def required_history_days(self) -> int:
        """Rows before a scored row that fully determine its score: what scoring after a gap must be given (rows of
        the training data's step once fitted; before, of ``freq``'s, by default days)."""
        return history_needed(self._decomposition_config(self._expected_step())) + self.burst_rows - 1

    # -- fitting ---------------------------------------------------------------------------------------------------

    def _decompose(self, frame: pd.DataFrame, step: pd.Timedelta) -> CausalDecomposition:
        return causal_decompose(
            frame.to_numpy(),
            self._decomposition_config(step),
            first_row=int((frame.index[0] - EPOCH) // step),
            rows_per_day=rows_per_day(step),
        )

    def _features(self, decomposition: CausalDecomposition) -> tuple[np.ndarray, np.ndarray | None]:
        """Severity (rows x series) and, for ``scorer="forest"``, the forest's features (rows x series x 3)."""
        zscore = np.clip(_consensus(decomposition.zscore, decomposition.position_zscore), -_Z_CLIP, _Z_CLIP)
        burst = _burst_zscore(zscore, self.burst_rows)
        sign = {"both": None, "up": 1.0, "down": -1.0}[self.direction]
        if sign is None:
            severity = np.fmax(np.abs(zscore), np.abs(burst))
        else:
            severity = np.clip(np.fmax(sign * zscore, sign * burst), 0.0, None)
        # The warm-up has no score (NaN): a 0 there would also calibrate the threshold as a calm row.
        severity = np.where(np.isfinite(zscore), severity, np.nan)
        if self.scorer != "forest":
            return severity, None
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = np.clip(decomposition.residual / np.abs(decomposition.expected), -10.0, 10.0)
        features = np.stack([zscore, burst, np.where(np.isfinite(relative), relative, 0.0)], axis=-1)
        return severity, features

    def fit(self, X: pd.DataFrame, y: None = None) -> DecomposeIsolationForest:
        """Learn each series' baseline, the score mapping and each series' calibrated threshold."""
        self._fit(*self._validated_history(X))
        return self

    def _validated_history(self, X: pd.DataFrame) -> tuple[pd.DataFrame, pd.Timedelta]:
        self._check_params()
        history = validate_series_frame(X, what="training history", freq=self.freq)
        step = pd.Timedelta(history.index.freq)
        needed = min_history_days(self.period)
        if len(history) < needed:
            raise DetectorInputError(
                f"training history has {len(history)} {row_unit(step)}(s) ({format_time(history.index[0], step)} to "
                f"{format_time(history.index[-1], step)}); a period of {self.period} rows needs at least "
                f"{needed} (the decomposition's warm-up of {warm_up_days(self.period)}, then {MIN_EXCESSES} scored)"
            )
        return history, step

    def _forest_boost(self, severity: np.ndarray, features: np.ndarray) -> np.ndarray:
        """1 + up to ``_FOREST_BOOST``: how much rarer the forest finds a row's feature combination than the median
        training row (its rank among the training rows' forest scores above one half)."""
        boost = np.ones(severity.shape)
        gated = np.isfinite(severity) & (severity >= _FOREST_GATE)
        if gated.any():
            raw = -self.isolation_forest_.score_samples(features[gated].astype(np.float32))
            rank = np.interp(raw, self.forest_quantiles_, np.linspace(0.0, 1.0, len(self.forest_quantiles_)))
            boost[gated] = 1.0 + _FOREST_BOOST * np.clip(2.0 * rank - 1.0, 0.0, 1.0)
        return boost

    def _score(self, severity: np.ndarray, features: np.ndarray | None) -> np.ndarray:
        if features is None:
            return severity
        return severity * self._forest_boost(severity, features)

    def _with_outages(self, scores: np.ndarray, decomposition: CausalDecomposition) -> np.ndarray:
        """``scores``, or the outage score where that is higher (drops only, so not with ``direction="up"``)."""
        if self.direction == "up":
            return scores
        return np.where(np.isfinite(scores), np.fmax(scores, -decomposition.outage_zscore), np.nan)

    def _fit(self, history: pd.DataFrame, step: pd.Timedelta) -> tuple[CausalDecomposition, np.ndarray]:
        """Fit on a validated history; return its decomposition and anomaly scores for ``fit_detect``."""
        values = history.to_numpy()
        decomposition = self._decompose(history, step)
        severity, features = self._features(decomposition)
        finite = np.isfinite(severity)
        rng = np.random.default_rng(self.random_state)
        if self.scorer == "forest":
            rows = np.flatnonzero(finite.reshape(-1))
            if rows.size > self.max_fit_samples:
                rows = np.sort(rng.choice(rows, self.max_fit_samples, replace=False))
            sample = features.reshape(-1, features.shape[-1])[rows].astype(np.float32)
            forest = IsolationForest(
                n_estimators=self.n_estimators, max_samples=self.max_samples, random_state=self.random_state
            ).fit(sample)
            self.isolation_forest_ = forest
            self.forest_quantiles_ = np.quantile(-forest.score_samples(sample), np.linspace(0.0, 1.0, 201))
        plain = self._score(severity, features)
        scores = self._with_outages(plain, decomposition)
        if self.threshold_cutoff is not None:
            self.threshold_ = np.full(values.shape[1], float(self.threshold_cutoff))
            self.drop_threshold_ = self.threshold_
        else:
            # Rows that continue a reported shift are never flagged, so they do not calibrate the threshold either.
            calibration = np.where(decomposition.continuing, np.nan, scores)
            if self.calibrate_drops and self.direction == "both":
                # Rises: without the outage score, evidence of a drop only (a warehouse idle on the weekends its
                # daily period does not know), which must not hide spikes.
                rises = np.where(decomposition.continuing, np.nan, plain)
                self.threshold_ = self._calibrated(rises, step)
                drops = np.where(decomposition.residual < 0, calibration, np.nan)
                # Never above the shared threshold: a thin lower tail lowers it, a few training rows cannot raise it.
                own = self._calibrated(drops, step)
                self.drop_threshold_ = np.minimum(
                    own, self._shared_thresholds(calibration, decomposition, step)
                )
            else:
                self.threshold_ = self._calibrated(calibration, step)
                self.drop_threshold_ = self.threshold_
        self.busy_level_ = busy_levels(values)
        self.series_ = list(history.columns)
        self.feature_names_in_ = np.asarray(self.series_, dtype=object)
        self.n_features_in_ = len(self.series_)
        self.step_seconds_ = int(step.total_seconds())
        self.history_ = values[-self.required_history_days :].copy()
        self.history_end_ = format_time(history.index[-1], step)
        self.training_start_ = format_time(history.index[0], step)
        self.training_end_ = self.history_end_
        self.n_training_days_ = len(history)
        self.versions_ = {
            package: _package_version(package)
            for package in ("airflow-provider-snowstorm", "scikit-learn", "numpy", "pandas")
        }
        return decomposition, scores

    def _shared_thresholds(
        self, calibration: np.ndarray, decomposition: CausalDecomposition, step: pd.Timedelta
    ) -> np.ndarray:
        """The threshold of all training scores, outage scores included: the rises' threshold for the series without
        a run of zeros, calibrated again (pooled among themselves) for the series with one."""
        shared = self.threshold_.copy()
        columns = np.flatnonzero(decomposition.outage_zscore.any(axis=0))
        if columns.size:
            shared[columns] = self._calibrated(calibration[:, columns], step)
        return shared

    def _calibrated(self, calibration: np.ndarray, step: pd.Timedelta) -> np.ndarray:
        """Each series' threshold for ``alarm_budget`` from its training scores (NaN: rows that do not count): the
        row-wise tail fit, raised to what the span's normal excursions need (``training_incidents_per_month``)."""
        if self.training_incidents_per_month is None:
            return tail_thresholds(calibration, budget_to_risk(self.alarm_budget, rows_per_day(step)))
        return budget_thresholds(
            calibration,
            self._alarm_gap_rows(step),
            alarm_budget=self.alarm_budget,
            rows_per_day=rows_per_day(step),
            incidents_per_month=self.training_incidents_per_month,
        )

    # -- scoring ---------------------------------------------------------------------------------------------------

    @property
    def step_(self) -> pd.Timedelta:
        check_is_fitted(self, "step_seconds_")
        return pd.Timedelta(seconds=self.step_seconds_)

    @property
    def thresholds(self) -> pd.Series:
        """The anomaly threshold of each series (of rises, when drops have their own: ``drop_thresholds``)."""
        check_is_fitted(self, "threshold_")
        return pd.Series(self.threshold_, index=self.series_, name=THRESHOLD)

    @property
    def drop_thresholds(self) -> pd.Series:
        """The threshold of each series' rows below their expected value."""
        check_is_fitted(self, "threshold_")
        drops = self.threshold_ if self.drop_threshold_ is None else self.drop_threshold_
        return pd.Series(drops, index=self.series_, name=THRESHOLD)

    def _with_history(self, frame: pd.DataFrame, columns: list[int]) -> pd.DataFrame:
        """``frame`` preceded by the stored training tail, so its first rows get their full history."""
        end = pd.Timestamp(self.history_end_)
        first = frame.index[0]
        if first > end + self.step_:
            # A gap after training: the frame must bring its own history.
            return frame
        tail_index = pd.date_range(end=end, periods=len(self.history_), freq=self.step_, name=DATE)
        tail = pd.DataFrame(self.history_[:, columns], index=tail_index, columns=frame.columns)
        return pd.concat([tail[tail.index < first], frame])

    def _evaluate(self, X: pd.DataFrame, start: Any = None) -> dict[str, Any]:
        check_is_fitted(self, "threshold_")
        if not hasattr(self, "step_seconds_"):
            raise DetectorInputError(
                f"this model was trained on {self.training_end_} by an earlier version of the detector (one-feature "
                "forest, uncalibrated thresholds) and cannot score with this one: retrain it"
            )
        step = self.step_
        frame = validate_series_frame(X, what="frame to score", freq=self.freq or step)
        position = {name: index for index, name in enumerate(self.series_)}
        unknown = [name for name in frame.columns if name not in position]
        if unknown:
            raise DetectorInputError(
                f"series {unknown[:10]} were not in this model's training data (it knows {len(position)} series, "
                f"such as {self.series_[:10]})"
            )
        columns = [position[name] for name in frame.columns]
        first_scored = frame.index[0] if start is None else pd.Timestamp(start)
        if step >= ONE_DAY:
            first_scored = first_scored.normalize()
        if first_scored > frame.index[-1]:
            raise DetectorInputError(
                f"start {format_time(first_scored, step)} is after the last row of the frame "
                f"({format_time(frame.index[-1], step)})"
            )
        combined = self._with_history(frame, columns)
        history_before = (combined.index < first_scored).sum()
        gap_after_training = combined.index[0] > pd.Timestamp(self.history_end_) + step
        if gap_after_training and history_before < self.required_history_days:
            raise DetectorInputError(
                f"scoring from {format_time(first_scored, step)} needs the {self.required_history_days} "
                f"{row_unit(step)}s before it: the model's training ended on {self.history_end_} and the frame "
                f"starts on {format_time(combined.index[0], step)}; include more history in the frame"
            )
        decomposition = self._decompose(combined, step)
        keep = combined.index >= max(first_scored, frame.index[0])
        # History rows are scored too: an alarm open at the window's start continues into it (alarm_gap).
        scores = self._with_outages(self._score(*self._features(decomposition)), decomposition)
        return self._assemble(combined, decomposition, keep, scores, columns)

    def _assemble(
        self,
        frame: pd.DataFrame,
        decomposition: CausalDecomposition,
        keep: np.ndarray | slice,
        scores: np.ndarray,
        columns: list[int],
    ) -> dict[str, Any]:
        """Values, expectations, scores and flags of rows ``keep`` of ``frame`` (scored and decomposed whole)."""
        expected, residual = decomposition.expected, decomposition.residual
        threshold = self.threshold_[columns]
        if self.drop_threshold_ is not None:
            threshold = np.where(residual < 0, self.drop_threshold_[columns], threshold)
        with np.errstate(invalid="ignore"):
            candidates = (scores > threshold) & ~decomposition.continuing
            if self.direction == "up":
                candidates &= residual > 0
            elif self.direction == "down":
                candidates &= residual < 0
            deviation = np.abs(residual)
            candidates &= (deviation > 0) & (deviation >= self._min_deviations(columns))
            candidates &= deviation >= self.min_relative_deviation * np.abs(expected)
        flags, episode = alarm_episodes(
            candidates, np.sign(np.nan_to_num(residual)), self._alarm_gap, decomposition.continuing
        )
        return {
            "index": frame.index[keep],
            "series": list(frame.columns),
            VALUE: frame.to_numpy()[keep],
            EXPECTED: expected[keep],
            RESIDUAL: residual[keep],
            ANOMALY_SCORE: scores[keep],
            THRESHOLD: np.broadcast_to(threshold, scores.shape)[keep],
            IS_ANOMALY: flags[keep],
            CONTINUING: (decomposition.continuing | episode)[keep] & ~flags[keep],
        }

    def _min_deviations(self, columns: list[int]) -> np.ndarray | float:
        """The materiality floor of each scored series (``min_deviation``, lowered by ``min_deviation_share``)."""
        floor = self.min_deviation
        if floor is None:
            floor = MIN_DEVIATION_PER_DAY / rows_per_day(self.step_)
        if self.min_deviation_share is None or self.busy_level_ is None:
            return floor
        return np.minimum(floor, self.min_deviation_share * self.busy_level_[columns])

    def score_samples(self, X: pd.DataFrame) -> pd.DataFrame:
        """Anomaly score per row and series: the deviation's severity in robust standard deviations (higher is
        more anomalous, unbounded, so larger deviations always rank higher). NaN during the warm-up."""
        result = self._evaluate(X)
        return pd.DataFrame(result[ANOMALY_SCORE], index=result["index"], columns=result["series"])

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """-1 for anomalous rows and 1 for the others, as scikit-learn's outlier detectors."""
        result = self._evaluate(X)
        return pd.DataFrame(
            np.where(result[IS_ANOMALY], -1, 1), index=result["index"], columns=result["series"]
        )

    def detect(self, X: pd.DataFrame, start: Any = None) -> pd.DataFrame:
        """Long-format results (one row per timestamp and series) for the rows of ``X`` from ``start`` on.

        Columns: usage_date, series, value, expected, residual, anomaly_score, threshold, is_anomaly, continuing.
        Rows before ``start`` in ``X`` only serve as history.
        """
        return _long_format(self._evaluate(X, start=start))

    def fit_detect(self, X: pd.DataFrame, y: None = None) -> pd.DataFrame:
        """``fit(X)``, then the results of ``detect`` for the training rows, decomposing ``X`` only once.

        Training rows are scored causally too; the first ``warm_up_days`` of them have no expected value.
        """
        history, step = self._validated_history(X)
        decomposition, scores = self._fit(history, step)
        result = self._assemble(history, decomposition, slice(None), scores, list(range(len(self.series_))))
        return _long_format(result)

    @property
    def metadata(self) -> dict[str, Any]:
        """JSON-safe facts about this model: what it was trained on, how, and with which versions."""
        check_is_fitted(self, "threshold_")
        return {
            "model_class": type(self).__name__,
            "params": {key: value for key, value in self.get_params().items()},
            "series": list(self.series_),
            "thresholds": {
                name: float(value) for name, value in zip(self.series_, self.threshold_, strict=True)
            },
            "drop_thresholds": {name: float(value) for name, value in self.drop_thresholds.items()},
            "period": int(self.period),
            "freq": freq_string(self.step_),
            "training_start": self.training_start_,
            "training_end": self.training_end_,
            "n_training_days": int(self.n_training_days_),
            "versions": dict(self.versions_),
        }
