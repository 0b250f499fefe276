"""Time-indexed frames of series: the checks the detector runs on what it is given, and ``to_grid`` for data
that fail them because rows are missing or off a fixed grid.

What a missing row means depends on the data, so the detector never guesses: a cost with no row had no usage
(zero), a metric with no sample was not measured (interpolate between its neighbours). ``to_grid`` does either,
on request.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import pandas as pd

from airflow_provider_snowstorm.core.schema import DATE

__all__ = [
    "DetectorInputError",
    "format_time",
    "freq_step",
    "freq_string",
    "row_unit",
    "to_grid",
    "validate_series_frame",
]

EPOCH = pd.Timestamp("1970-01-01")
ONE_DAY = pd.Timedelta(days=1)


_TO_GRID_HINT = (
    "core.series_frame.to_grid puts rows on a grid: fill='zero' for costs, fill='interpolate' for metrics"
)


class DetectorInputError(ValueError):
    """A frame the detector cannot fit or score; the message says what is wrong and where."""


def row_unit(step: pd.Timedelta) -> str:
    """What a row is called in messages: a "day" of daily data, else a "row"."""
    return "day" if step == ONE_DAY else "row"


def format_time(stamp: pd.Timestamp, step: pd.Timedelta) -> str:
    """``stamp`` in messages: its date for daily (or coarser) rows, else date and time."""
    return stamp.date().isoformat() if step >= ONE_DAY else stamp.isoformat()


def freq_step(freq: str | pd.Timedelta) -> pd.Timedelta:
    """The step of a fixed frequency ("D", "h", "5min", "W"), or an error naming it."""
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
        # Weeks anchored on a weekday ("W", "W-MON") are seven days apart, however pandas files them.
        return pd.Timedelta(weeks=offset.n) if isinstance(offset, pd.offsets.Week) else pd.Timedelta(offset)
    except (TypeError, ValueError) as error:
        raise DetectorInputError(
            f"freq {freq!r} is not a fixed frequency such as 'D', 'h' or 'W' (months and years vary in length)"
        ) from error


def freq_string(step: pd.Timedelta) -> str:
    """``step`` as a frequency string: "D", "h", "5min", and "7D" for weeks (not pandas' "168h")."""
    if step > ONE_DAY and step % ONE_DAY == pd.Timedelta(0):
        return f"{step // ONE_DAY}D"
    return pd.tseries.frequencies.to_offset(step).freqstr


def _index_step(
    index: pd.DatetimeIndex, freq: str | pd.Timedelta | None, what: str, *, jittered: bool = False
) -> pd.Timedelta:
    """The fixed step between rows, at least a second: ``freq`` if given, else the smallest gap (one day for a single
    date). ``jittered`` (``to_grid``'s rows, late or missing): the lower median gap instead, in whole units
    (``_round_step``), since at least half the gaps are one step either way."""
    if freq is not None:
        step = freq_step(freq)
    else:
        stamps = index.unique()
        if len(stamps) < 2:
            if jittered or not (stamps == stamps.normalize()).all():
                raise DetectorInputError(
                    f"{what} has a single timestamp: give freq to say how far apart rows are"
                )
            step = ONE_DAY
        else:
            gaps = np.diff(stamps.to_numpy())
            step = (
                _round_step(pd.Timedelta(np.quantile(gaps, 0.5, method="lower"))) if jittered else gaps.min()
            )
    step = pd.Timedelta(step)
    if step < pd.Timedelta(seconds=1):
        raise DetectorInputError(f"{what} has rows {step} apart: the finest step is one second")
    return step


Aggregate = Literal["sum", "mean"]
Fill = Literal["zero", "interpolate"]


def _time_indexed(frame: pd.DataFrame, what: str, freq: str | pd.Timedelta | None) -> pd.DataFrame:
    """``frame`` (or a Series as one column) with string column names and a sorted, naive UTC time index."""
    if not isinstance(frame, pd.DataFrame):
        if isinstance(frame, pd.Series):
            frame = frame.to_frame()
        else:
            raise DetectorInputError(
                f"{what} must be a pandas DataFrame of series, got {type(frame).__name__}"
            )
    if frame.empty or frame.shape[1] == 0:
        raise DetectorInputError(f"{what} is empty: it needs at least one series column and one row")
    names = [str(column) for column in frame.columns]
    if len(set(names)) != len(names):
        repeated = sorted({name for name in names if names.count(name) > 1})
        raise DetectorInputError(f"{what} has repeated series columns {repeated}")
    if pd.api.types.is_numeric_dtype(frame.index.dtype):
        # Row numbers, not times (pandas would read them as nanoseconds): with freq, row i is i steps after 1970.
        if freq is None:
            raise DetectorInputError(
                f"{what} is indexed by numbers ({frame.index[0]!r} to {frame.index[-1]!r}), not dates or times: "
                "index it by timestamp, or give freq (such as '5min') to say how far apart its rows are"
            )
        if not pd.api.types.is_integer_dtype(frame.index.dtype):
            raise DetectorInputError(f"{what} is indexed by non-integer numbers: index it by timestamp")
        index = pd.DatetimeIndex(EPOCH + frame.index.to_numpy() * freq_step(freq))
    else:
        try:
            index = pd.DatetimeIndex(pd.to_datetime(frame.index))
        except (TypeError, ValueError) as error:
            raise DetectorInputError(f"{what} must be indexed by date or time: {error}") from error
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return frame.set_axis(index, axis=0).set_axis(names, axis=1).sort_index()


def _as_float(data: pd.DataFrame, what: str, step: pd.Timedelta) -> pd.DataFrame:
    try:
        return data.astype("float64")
    except (TypeError, ValueError):
        numeric = data.apply(pd.to_numeric, errors="coerce")
        rows, columns = np.nonzero((numeric.isna() & data.notna()).to_numpy())
        raise DetectorInputError(
            f"{what} has non-numeric values, first {data.iat[rows[0], columns[0]]!r} in series "
            f"{data.columns[columns[0]]!r} on {format_time(data.index[rows[0]], step)}"
        ) from None


def validate_series_frame(
    frame: pd.DataFrame, *, what: str, freq: str | pd.Timedelta | None = None
) -> pd.DataFrame:
    """A float64 copy of ``frame`` with a regular time index (its ``freq`` set), or a ``DetectorInputError`` naming
    the fault and where it is."""
    data = _time_indexed(frame, what, freq)
    duplicated = data.index[data.index.duplicated()]
    if len(duplicated):
        raise DetectorInputError(
            f"{what} has duplicate dates or times {[str(t) for t in duplicated.unique()[:5]]}"
        )
    step = _index_step(data.index, freq, what)
    offset = (data.index - data.index[0]) % step
    if (offset != pd.Timedelta(0)).any():
        bad = data.index[offset != pd.Timedelta(0)]
        raise DetectorInputError(
            f"{what} has rows off its {step} grid, such as {[str(t) for t in bad[:5]]}: one row per period "
            f"({_TO_GRID_HINT})"
        )
    full = pd.date_range(data.index[0], data.index[-1], freq=step)
    gaps = full.difference(data.index)
    if len(gaps):
        raise DetectorInputError(
            f"{what} skips {len(gaps)} {row_unit(step)}(s) such as {[format_time(t, step) for t in gaps[:5]]}: "
            f"make missing rows explicit ({_TO_GRID_HINT}; build_usage_features zero-fills missing days)"
        )
    data.index = pd.DatetimeIndex(data.index, freq=step, name=DATE)
    data = _as_float(data, what, step)
    values = data.to_numpy()
    for problem, mask in (("NaN or infinite", ~np.isfinite(values)), ("negative", values < 0)):
        if mask.any():
            rows, columns = np.nonzero(mask)
            where = sorted({data.columns[c] for c in columns})[:5]
            first = format_time(data.index[rows.min()], step)
            raise DetectorInputError(
                f"{what} has {int(mask.sum())} {problem} value(s) in series {where} (first on {first})"
            )
    return data


def _round_step(gap: pd.Timedelta) -> pd.Timedelta:
    """``gap`` in whole days, hours, minutes or seconds: the coarsest unit that moves it by at most 5% (a median gap
    of 5 min 1 s between jittered samples is a 5-minute step)."""
    for unit in ("D", "h", "min", "s"):
        rounded = gap.round(unit)
        if rounded > pd.Timedelta(0) and abs(rounded - gap) <= 0.05 * gap:
            return rounded
    return gap.round("s")


def to_grid(
    frame: pd.DataFrame,
    freq: str | pd.Timedelta | None = None,
    *,
    aggregate: Aggregate = "sum",
    fill: Fill = "zero",
) -> pd.DataFrame:
    """``frame``'s series on a fixed grid of ``freq``, ready for the detector: what monitoring exports with missing
    samples or jittered timestamps need, and what the detector will not guess for them.

    A row belongs to the slot it falls in (slots start at midnight, so hourly slots are clock hours; time-zone-aware
    stamps are put in UTC first, as the detector does). Rows in one
    slot are combined by ``aggregate``: ``"sum"`` for costs and counts (the credits billed within the hour),
    ``"mean"`` for gauges (CPU, latency). Slots without a value get ``fill``: ``"zero"`` (a cost with no row had
    no usage) or ``"interpolate"`` (linear in time between the nearest values before and after). ``freq`` defaults
    to the (lower) median gap between rows in whole days, hours, minutes or seconds (the coarsest within 5%).
    """
    if aggregate not in get_args(Aggregate):
        raise DetectorInputError(f"aggregate must be one of {list(get_args(Aggregate))}, got {aggregate!r}")
    if fill not in get_args(Fill):
        raise DetectorInputError(f"fill must be one of {list(get_args(Fill))}, got {fill!r}")
    what = "frame to put on a grid"
    data = _time_indexed(frame, what, freq)
    step = _index_step(data.index, freq, what, jittered=True)
    slots = _as_float(data, what, step).resample(step, origin="start_day")
    gridded = slots.sum(min_count=1) if aggregate == "sum" else slots.mean()
    gridded = (
        gridded.fillna(0.0) if fill == "zero" else gridded.interpolate(method="time", limit_area="inside")
    )
    unknown = gridded.isna()
    if unknown.any().any():
        series = list(unknown.columns[unknown.any()][:5])
        raise DetectorInputError(
            f"{what}: series {series} have no value before (or after) their slots from "
            f"{format_time(unknown.any(axis=1).idxmax(), step)} to interpolate from: trim the frame to the time "
            "every series has values, or fill='zero'"
        )
    return validate_series_frame(gridded, what=f"{what} ({aggregate}, fill={fill!r})", freq=step)
