"""``DecomposeIsolationForest``: seasonal decomposition, an Isolation Forest on the residuals, and a threshold.

A scikit-learn style estimator over a date-indexed frame whose columns are daily cost series. Each series keeps its
own causal decomposition and its own threshold; the Isolation Forest sees the scale-free robust z-scores of the
residuals, so one forest serves every series given to ``fit`` (one series gives a forest of its own).

Scoring is causal: the score of day D depends only on data up to D and on what ``fit`` learned, so a score never
changes when later days arrive. The model keeps the tail of its training data that the decomposition needs, so new
days can be scored on their own right after the training span.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import IsolationForest
from sklearn.utils.validation import check_is_fitted

from airflow_provider_snowstorm.core.decomposition import (
    CausalDecomposition,
    causal_decompose,
    history_needed,
    warm_up_days,
)
from airflow_provider_snowstorm.core.isolation import StepScorer
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
from airflow_provider_snowstorm.core.thresholds import cap_below_extremes, mean_std_threshold

__all__ = ["DecomposeIsolationForest", "DetectorInputError", "min_history_days"]

Direction = Literal["both", "up", "down"]
# z-scores beyond this are all "extremely anomalous"; clipping keeps them finite in the forest's float32 features.
_Z_CLIP = 1e6
_EPOCH = pd.Timestamp("1970-01-01")


class DetectorInputError(ValueError):
    """A frame the detector cannot fit or score; the message says what is wrong and where."""


def min_history_days(period: int) -> int:
    """Fewest training days: the decomposition's warm-up, then two full periods of scores for the threshold."""
    return warm_up_days(period) + 2 * period


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def validate_series_frame(frame: pd.DataFrame, *, what: str) -> pd.DataFrame:
    """A float64 copy of ``frame`` with a daily ``usage_date`` index, or a ``DetectorInputError`` naming the fault."""
    if not isinstance(frame, pd.DataFrame):
        if isinstance(frame, pd.Series):
            frame = frame.to_frame()
        else:
            raise DetectorInputError(
                f"{what} must be a pandas DataFrame of daily series, got {type(frame).__name__}"
            )
    if frame.empty or frame.shape[1] == 0:
        raise DetectorInputError(f"{what} is empty: it needs at least one series column and one day")
    names = [str(column) for column in frame.columns]
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise DetectorInputError(f"{what} has repeated series columns {repeated}")
    try:
        index = pd.DatetimeIndex(pd.to_datetime(frame.index))
    except (TypeError, ValueError) as error:
        raise DetectorInputError(f"{what} must be indexed by date: {error}") from error
    if index.tz is not None:
        index = index.tz_localize(None)
    if not (index == index.normalize()).all():
        raise DetectorInputError(f"{what} must hold one row per calendar day (dates without a time of day)")
    duplicated = index[index.duplicated()]
    if len(duplicated):
        raise DetectorInputError(
            f"{what} has duplicate dates {[day.date().isoformat() for day in duplicated.unique()[:5]]}"
        )
    data = frame.set_axis(index, axis=0).set_axis(names, axis=1).sort_index()
    gaps = pd.date_range(data.index[0], data.index[-1], freq="D").difference(data.index)
    if len(gaps):
        raise DetectorInputError(
            f"{what} skips {len(gaps)} day(s) such as {[day.date().isoformat() for day in gaps[:5]]}: "
            "make missing days explicit (build_usage_features zero-fills them)"
        )
    try:
        data = data.astype("float64")
    except (TypeError, ValueError) as error:
        raise DetectorInputError(f"{what} has non-numeric values: {error}") from error
    values = data.to_numpy()
    for problem, mask in (("NaN or infinite", ~np.isfinite(values)), ("negative", values < 0)):
        if mask.any():
            rows, columns = np.nonzero(mask)
            where = sorted({names[c] for c in columns})[:5]
            first = data.index[rows.min()].date().isoformat()
            raise DetectorInputError(
                f"{what} has {int(mask.sum())} {problem} value(s) in series {where} (first on {first})"
            )
    data.index.name = DATE
    return data


def _long_format(result: dict[str, Any]) -> pd.DataFrame:
    days, series = result[VALUE].shape
    return pd.DataFrame(
        {
            DATE: np.repeat(result["index"].to_numpy(), series),
            SERIES: pd.Categorical.from_codes(np.tile(np.arange(series), days), categories=result["series"]),
            **{name: np.asarray(result[name]).reshape(-1) for name in PREDICTION_COLUMNS[2:]},
        }
    )


class DecomposeIsolationForest(BaseEstimator):
    """Causal seasonal decomposition + Isolation Forest on the residuals' robust z-scores + a calibrated threshold.

    Parameters
    ----------
    period:
        Season length in days (7 for weekly seasonality of daily costs).
    threshold_cutoff:
        The anomaly threshold is ``mean + threshold_cutoff * std`` of each series' training anomaly scores.
    seasonal_periods, trend_periods:
        How many past periods the seasonal profile and the trend's median period-on-period change look back over.
    scale_window:
        Days of past residuals whose MAD scales the z-score; ``None`` means eight periods.
    scale_floor:
        The residual scale is at least this fraction of the level, so near-constant series do not alarm on cents.
    direction:
        ``"both"``, ``"up"`` (spikes only) or ``"down"`` (drops only) may be flagged.
    min_deviation, min_relative_deviation:
        Materiality: a day is flagged only if ``|value - expected|`` is at least this amount and this fraction of
        the expected value, like cloud cost anomaly services' impact filters.
    n_estimators, max_samples, random_state:
        Passed to scikit-learn's ``IsolationForest``.
    max_fit_samples:
        At most this many training z-scores (drawn at random) fit the forest; its trees only see ``max_samples``
        points each, so more only costs time.
    baseline_lag:
        Days back to a second, older baseline; a day is judged against whichever baseline it is closer to, so the
        end of a burst (when the recent baseline is still inflated) is not flagged as a drop. 0 turns it off.
    rebase_after, rebase_z:
        No repeated alarms after a level shift: once ``rebase_after`` days in a row sit beyond ``rebase_z`` scales in
        the same direction, the following days of that run are marked as a continuation and not flagged. 0 turns
        it off.
    monthly_periods, monthly_z:
        Day-of-month adjustment: the median residual of the same day of the month over the last
        ``monthly_periods`` months is removed when it is consistently beyond ``monthly_z`` scales (month-start jobs
        are learned, not alarmed on). 0 turns it off.
    seasonality:
        ``"multiplicative"`` (the weekly pattern scales with the level, as costs do) or ``"additive"``.

    The defaults were chosen on the quality benchmark's tuning seeds (``python -m benchmarks.quality --tune``).
    """

    def __init__(
        self,
        period: int = 7,
        threshold_cutoff: float = 3.5,
        *,
        seasonal_periods: int = 8,
        trend_periods: int = 4,
        scale_window: int | None = None,
        scale_floor: float = 0.02,
        direction: Direction = "both",
        min_deviation: float = 0.0,
        min_relative_deviation: float = 0.0,
        n_estimators: int = 100,
        max_samples: int | float | str = "auto",
        random_state: int | None = None,
        max_fit_samples: int = 200_000,
        baseline_lag: int = 14,
        rebase_after: int = 3,
        rebase_z: float = 3.0,
        monthly_periods: int = 3,
        monthly_z: float = 2.0,
        seasonality: Literal["multiplicative", "additive"] = "multiplicative",
    ) -> None:
        self.period = period
        self.threshold_cutoff = threshold_cutoff
        self.seasonal_periods = seasonal_periods
        self.trend_periods = trend_periods
        self.scale_window = scale_window
        self.scale_floor = scale_floor
        self.direction = direction
        self.min_deviation = min_deviation
        self.min_relative_deviation = min_relative_deviation
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state
        self.max_fit_samples = max_fit_samples
        self.baseline_lag = baseline_lag
        self.rebase_after = rebase_after
        self.rebase_z = rebase_z
        self.monthly_periods = monthly_periods
        self.monthly_z = monthly_z
        self.seasonality = seasonality

    # -- fitting ---------------------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        if not isinstance(self.period, int | np.integer) or self.period < 2:
            raise DetectorInputError(f"period must be a whole number of days >= 2, got {self.period!r}")
        if self.direction not in ("both", "up", "down"):
            raise DetectorInputError(f"direction must be 'both', 'up' or 'down', got {self.direction!r}")
        if not np.isfinite(self.threshold_cutoff):
            raise DetectorInputError(
                f"threshold_cutoff must be a finite number, got {self.threshold_cutoff!r}"
            )
        if self.min_deviation < 0 or self.min_relative_deviation < 0:
            raise DetectorInputError("min_deviation and min_relative_deviation must not be negative")

    @property
    def _scale_window(self) -> int:
        return self.scale_window if self.scale_window is not None else 8 * self.period

    @property
    def required_history_days(self) -> int:
        """Days before a scored day that fully determine its score: what scoring after a gap must be given."""
        return history_needed(
            self.period,
            self.seasonal_periods,
            self.trend_periods,
            self._scale_window,
            self.baseline_lag,
            self.rebase_after,
            self.monthly_periods,
        )

    def _decompose(self, frame: pd.DataFrame) -> CausalDecomposition:
        return causal_decompose(
            frame.to_numpy(),
            first_day=int((frame.index[0] - _EPOCH).days),
            period=self.period,
            seasonal_periods=self.seasonal_periods,
            trend_periods=self.trend_periods,
            scale_window=self._scale_window,
            scale_floor=self.scale_floor,
            baseline_lag=self.baseline_lag,
            rebase_after=self.rebase_after,
            rebase_z=self.rebase_z,
            monthly_periods=self.monthly_periods,
            monthly_z=self.monthly_z,
            multiplicative=self.seasonality == "multiplicative",
        )

    def fit(self, X: pd.DataFrame, y: None = None) -> DecomposeIsolationForest:
        """Learn each series' baseline, the forest on residual z-scores and each series' threshold."""
        self._fit(self._validated_history(X))
        return self

    def _validated_history(self, X: pd.DataFrame) -> pd.DataFrame:
        self._check_params()
        history = validate_series_frame(X, what="training history")
        needed = min_history_days(self.period)
        if len(history) < needed:
            raise DetectorInputError(
                f"training history has {len(history)} day(s) ({history.index[0].date()} to "
                f"{history.index[-1].date()}); a period of {self.period} days needs at least {needed}: "
                f"{warm_up_days(self.period)} to warm up the causal decomposition and two periods to calibrate "
                "the threshold"
            )
        return history

    def _fit(self, history: pd.DataFrame) -> tuple[CausalDecomposition, np.ndarray]:
        """Fit on a validated history; return its decomposition and anomaly scores for ``fit_detect``."""
        values = history.to_numpy()
        decomposition = self._decompose(history)
        zscore = np.clip(decomposition.zscore, -_Z_CLIP, _Z_CLIP)

        pooled = zscore[np.isfinite(zscore)]
        rng = np.random.default_rng(self.random_state)
        if pooled.size > self.max_fit_samples:
            pooled = rng.choice(pooled, self.max_fit_samples, replace=False)
        forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            random_state=self.random_state,
        ).fit(pooled[:, None])
        scorer = StepScorer.from_forest(forest)

        self.isolation_forest_ = forest
        self.score_breaks_ = scorer.breaks
        self.score_steps_ = scorer.scores
        scores = scorer.score(zscore)
        self.threshold_ = cap_below_extremes(mean_std_threshold(scores, self.threshold_cutoff), scorer.scores)
        self.series_ = list(history.columns)
        self.feature_names_in_ = np.asarray(self.series_, dtype=object)
        self.n_features_in_ = len(self.series_)
        self.history_ = values[-self.required_history_days :].copy()
        self.history_end_ = history.index[-1].date().isoformat()
        self.training_start_ = history.index[0].date().isoformat()
        self.training_end_ = self.history_end_
        self.n_training_days_ = len(history)
        self.versions_ = {
            package: _package_version(package)
            for package in ("airflow-provider-snowstorm", "scikit-learn", "numpy", "pandas")
        }
        return decomposition, scores

    # -- scoring ---------------------------------------------------------------------------------------------------

    @property
    def thresholds(self) -> pd.Series:
        """The anomaly threshold of each series."""
        check_is_fitted(self, "threshold_")
        return pd.Series(self.threshold_, index=self.series_, name=THRESHOLD)

    def _with_history(self, frame: pd.DataFrame, columns: list[int]) -> pd.DataFrame:
        """``frame`` preceded by the stored training tail, so its first days get their full history."""
        end = pd.Timestamp(self.history_end_)
        first = frame.index[0]
        if first > end + pd.Timedelta(days=1):
            # A gap after training: the frame must bring its own history.
            return frame
        tail_index = pd.date_range(end=end, periods=len(self.history_), freq="D", name=DATE)
        tail = pd.DataFrame(self.history_[:, columns], index=tail_index, columns=frame.columns)
        return pd.concat([tail[tail.index < first], frame])

    def _evaluate(self, X: pd.DataFrame, start: Any = None) -> dict[str, Any]:
        check_is_fitted(self, "threshold_")
        frame = validate_series_frame(X, what="frame to score")
        position = {name: index for index, name in enumerate(self.series_)}
        unknown = [name for name in frame.columns if name not in position]
        if unknown:
            raise DetectorInputError(
                f"series {unknown[:10]} were not in this model's training data (it knows {len(position)} series, "
                f"such as {self.series_[:10]})"
            )
        columns = [position[name] for name in frame.columns]
        first_scored = frame.index[0] if start is None else pd.Timestamp(start).normalize()
        if first_scored > frame.index[-1]:
            raise DetectorInputError(
                f"start {first_scored.date()} is after the last day of the frame ({frame.index[-1].date()})"
            )
        combined = self._with_history(frame, columns)
        history_before = (combined.index < first_scored).sum()
        gap_after_training = combined.index[0] > pd.Timestamp(self.history_end_) + pd.Timedelta(days=1)
        if gap_after_training and history_before < self.required_history_days:
            raise DetectorInputError(
                f"scoring from {first_scored.date()} needs the {self.required_history_days} days before it: "
                f"the model's training ended on {self.history_end_} and the frame starts on "
                f"{combined.index[0].date()}; include more history in the frame"
            )
        decomposition = self._decompose(combined)
        keep = combined.index >= max(first_scored, frame.index[0])
        scores = StepScorer(self.score_breaks_, self.score_steps_).score(
            np.clip(decomposition.zscore[keep], -_Z_CLIP, _Z_CLIP)
        )
        return self._assemble(combined[keep], decomposition, keep, scores, columns)

    def _assemble(
        self,
        frame: pd.DataFrame,
        decomposition: CausalDecomposition,
        keep: np.ndarray | slice,
        scores: np.ndarray,
        columns: list[int],
    ) -> dict[str, Any]:
        """Values, expectations, scores and flags of the days of ``frame`` (rows ``keep`` of the decomposition)."""
        expected = decomposition.expected[keep]
        residual = decomposition.residual[keep]
        threshold = self.threshold_[columns]
        with np.errstate(invalid="ignore"):
            flags = (scores > threshold) & ~decomposition.continuing[keep]
            if self.direction == "up":
                flags &= residual > 0
            elif self.direction == "down":
                flags &= residual < 0
            flags &= np.abs(residual) >= self.min_deviation
            flags &= np.abs(residual) >= self.min_relative_deviation * np.abs(expected)
        return {
            "index": frame.index,
            "series": list(frame.columns),
            VALUE: frame.to_numpy(),
            EXPECTED: expected,
            RESIDUAL: residual,
            ANOMALY_SCORE: scores,
            THRESHOLD: np.broadcast_to(threshold, scores.shape),
            IS_ANOMALY: flags,
            CONTINUING: decomposition.continuing[keep] & ~flags,
        }

    def score_samples(self, X: pd.DataFrame) -> pd.DataFrame:
        """Anomaly score per day and series: higher is more anomalous.

        This is the Isolation Forest paper's ``s(x)`` (about 0.5 for ordinary days, towards 1 for anomalies);
        scikit-learn's ``IsolationForest.score_samples`` returns its negative. NaN during the warm-up.
        """
        result = self._evaluate(X)
        return pd.DataFrame(result[ANOMALY_SCORE], index=result["index"], columns=result["series"])

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """-1 for anomalous days and 1 for the others, as scikit-learn's outlier detectors."""
        result = self._evaluate(X)
        return pd.DataFrame(
            np.where(result[IS_ANOMALY], -1, 1), index=result["index"], columns=result["series"]
        )

    def detect(self, X: pd.DataFrame, start: Any = None) -> pd.DataFrame:
        """Long-format results (one row per date and series) for the days of ``X`` from ``start`` on.

        Columns: usage_date, series, value, expected, residual, anomaly_score, threshold, is_anomaly, continuing.
        Days before ``start`` in ``X`` only serve as history.
        """
        return _long_format(self._evaluate(X, start=start))

    def fit_detect(self, X: pd.DataFrame, y: None = None) -> pd.DataFrame:
        """``fit(X)``, then the results of ``detect`` for the training days, decomposing ``X`` only once.

        Training days are scored causally too; the first ``warm_up_days`` of them have no expected value.
        """
        history = self._validated_history(X)
        decomposition, scores = self._fit(history)
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
            "period": int(self.period),
            "training_start": self.training_start_,
            "training_end": self.training_end_,
            "n_training_days": int(self.n_training_days_),
            "versions": dict(self.versions_),
        }
