from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.metrics import EventCounts, average_precision, count_events, false_alarm_runs

DAYS = pd.date_range("2025-01-01", periods=10, freq="D")


def flags_frame(**flagged_days: list[int]) -> pd.DataFrame:
    frame = pd.DataFrame(False, index=DAYS, columns=["a", "b"])
    for series, days in flagged_days.items():
        frame.iloc[days, frame.columns.get_loc(series)] = True
    return frame


def labels(*incidents: tuple[str, int, int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series": [series for series, _, _ in incidents],
            "start": [DAYS[0] + pd.Timedelta(days=start) for _, start, _ in incidents],
            "end": [DAYS[0] + pd.Timedelta(days=end) for _, _, end in incidents],
        }
    )


def test_an_incident_counts_once_however_many_of_its_days_are_flagged() -> None:
    counts = count_events(flags_frame(a=[2, 3, 4]), labels(("a", 2, 4)))
    assert (counts.found, counts.missed, counts.false_alarms) == (1, 0, 0)


def test_one_flagged_day_of_an_incident_is_enough() -> None:
    counts = count_events(flags_frame(a=[4]), labels(("a", 2, 4)))
    assert (counts.found, counts.missed) == (1, 0)


def test_flags_in_another_series_do_not_find_an_incident() -> None:
    counts = count_events(flags_frame(b=[3]), labels(("a", 2, 4)))
    assert (counts.found, counts.missed, counts.false_alarms) == (0, 1, 1)


def test_each_run_of_flags_outside_incidents_is_one_false_alarm() -> None:
    counts = count_events(flags_frame(a=[0, 1, 5, 6, 7, 9], b=[9]), labels())
    assert counts.false_alarms == 4


def test_flags_continuing_after_an_incident_are_a_false_alarm() -> None:
    counts = count_events(flags_frame(a=[2, 3, 4, 5, 6]), labels(("a", 2, 4)))
    assert (counts.found, counts.false_alarms) == (1, 1)


def test_incidents_outside_the_scored_days_are_ignored() -> None:
    before = labels(("a", -5, -1))
    before_and_in = labels(("a", -2, 0))
    assert count_events(flags_frame(), before).missed == 0
    assert count_events(flags_frame(a=[0]), before_and_in).found == 1


def test_unknown_series_in_labels_is_refused() -> None:
    with pytest.raises(ValueError, match="not scored"):
        count_events(flags_frame(), labels(("zz", 1, 1)))


def test_precision_recall_f1_and_false_alarm_rate() -> None:
    counts = EventCounts(found=3, missed=1, false_alarms=1, series=2, days=2 * 61)
    assert counts.precision == pytest.approx(0.75)
    assert counts.recall == pytest.approx(0.75)
    assert counts.f1 == pytest.approx(0.75)
    assert counts.false_alarms_per_series_month == pytest.approx(1 / (122 / 30.44))


def test_counts_add_up_across_runs() -> None:
    total = EventCounts(1, 2, 3, 4, 5) + EventCounts(10, 20, 30, 40, 50)
    assert total == EventCounts(11, 22, 33, 44, 55)


def test_no_alarm_gives_zero_precision_not_an_error() -> None:
    assert EventCounts(found=0, missed=3, false_alarms=0, series=1, days=10).precision == 0.0


def test_false_alarm_runs_on_a_single_series() -> None:
    assert false_alarm_runs(np.array([1, 1, 0, 1, 1, 1, 0], bool), np.array([0, 0, 0, 0, 1, 0, 0], bool)) == 3


def test_average_precision_ranks_labelled_days_and_puts_nan_last() -> None:
    labelled = np.array([True, False, False, True])
    assert average_precision(np.array([0.9, 0.1, 0.2, 0.8]), labelled) == pytest.approx(1.0)
    assert average_precision(np.array([0.9, 0.5, 0.2, np.nan]), labelled) == pytest.approx((1 + 2 / 4) / 2)


def test_average_precision_needs_a_labelled_day() -> None:
    with pytest.raises(ValueError, match="at least one labelled day"):
        average_precision(np.array([0.1, 0.2]), np.array([False, False]))


def test_incidents_outside_the_scored_rows_are_not_counted() -> None:
    counts = count_events(flags_frame(a=[0]), labels(("a", -5, -2), ("b", 12, 14)))
    assert (counts.found, counts.missed, counts.false_alarms) == (0, 0, 1)


def test_an_incident_straddling_the_first_scored_row_counts_on_its_scored_rows() -> None:
    counts = count_events(flags_frame(a=[1]), labels(("a", -3, 1)))
    assert (counts.found, counts.missed, counts.false_alarms) == (1, 0, 0)


def test_no_flags_and_no_labels_give_zero_everything() -> None:
    counts = count_events(flags_frame(), labels())
    assert (counts.precision, counts.recall, counts.f1, counts.false_alarms_per_series_month) == (0, 0, 0, 0)


def test_labels_naming_unknown_series_are_an_error() -> None:
    with pytest.raises(ValueError, match="not scored"):
        count_events(flags_frame(), labels(("zz", 1, 2)))


def test_hourly_rows_count_as_series_days() -> None:
    hours = pd.date_range("2025-01-01", periods=48, freq="h")
    flags = pd.DataFrame(False, index=hours, columns=["a"])
    flags.iloc[[5, 6, 30], 0] = True
    frame = pd.DataFrame({"series": ["a"], "start": [hours[30]], "end": [hours[33]]})
    counts = count_events(flags, frame, rows_per_day=24)
    assert (counts.found, counts.false_alarms, counts.days) == (1, 1, 2)
    with pytest.raises(ValueError, match="rows_per_day"):
        count_events(flags, frame, rows_per_day=0)


def test_average_precision_of_tied_scores_is_the_base_rate() -> None:
    labelled = np.array([True, False, False, False])
    assert average_precision(np.full(4, 0.5), labelled) == pytest.approx(0.25)
