"""The detector interface: what the training and scoring operators need from a detector, and nothing more.

A detector is any class whose instances have these members; ``DecomposeIsolationForest`` is one. To plug in another
(a challenger, or your own), write one module with the class, register it for persistence with
``core.persistence.register_detector_class`` and pass it to the training operator's ``detector_class``. Scoring
loads whatever registered class the registry's model file holds, through this interface only.

Frames are wide: a ``DatetimeIndex`` of days (or hours) and one column per cost series. ``detect`` returns long rows
with ``core.schema.PREDICTION_COLUMNS`` (one per date and series).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["METADATA_KEYS", "AnomalyDetector"]

# Keys of ``metadata`` the operators read: ``series``, ``training_start`` and ``training_end`` (ISO dates) always;
# ``params`` (the constructor's arguments), ``period`` and ``n_training_days`` when the detector has them.
METADATA_KEYS: tuple[str, ...] = ("series", "training_start", "training_end")


@runtime_checkable
class AnomalyDetector(Protocol):
    """A fitted-then-scored anomaly detector over cost series (structural: no base class to inherit)."""

    def fit(self, frame: pd.DataFrame) -> Any:
        """Learn each column's normal behaviour from history; returns the detector."""
        ...

    def detect(self, frame: pd.DataFrame, start: Any = None) -> pd.DataFrame:
        """Score the rows of ``frame`` from ``start`` on (earlier rows are history), long format."""
        ...

    @property
    def metadata(self) -> dict[str, Any]:
        """JSON-safe facts about the fitted model (at least ``METADATA_KEYS``); stored with the registry version."""
        ...

    @property
    def required_history_days(self) -> int:
        """Rows before the first scored row that ``detect`` needs; scoring reads that much history."""
        ...

    @property
    def thresholds(self) -> pd.Series:
        """The anomaly-score threshold of each fitted series, indexed by series name."""
        ...

    series_: list[str]
    """Names of the fitted series."""
