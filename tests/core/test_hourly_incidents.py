from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_provider_snowstorm.core.hourly_incidents import (
    alarm_runs,
    find_warehouse_incidents,
    incident_spans,
    render_warehouse_report,
    warehouse_incident_message,
)


def detections(values: list[float], flags: list[bool], *, start: str = "2026-11-27 10:00") -> pd.DataFrame:
    hours = pd.date_range(start, periods=len(values), freq="h")
    return pd.DataFrame(
        {
            "usage_date": hours,
            "series": "PROD:ETL_WH",
            "value": values,
            "expected": 1.0,
            "is_anomaly": flags,
            "continuing": False,
        }
    )


def test_runs_open_at_the_min_hours_th_hour() -> None:
    flags = np.array([0, 1, 1, 1, 0, 1, 0, 1, 1], dtype=bool)
    assert alarm_runs(flags, 2) == [(1, 2, 3), (7, 8, 8)]
    assert alarm_runs(flags, 1) == [(1, 1, 3), (5, 5, 5), (7, 7, 8)]
    with pytest.raises(ValueError, match="min_hours"):
        alarm_runs(flags, 0)


def test_an_open_incident_has_cost_so_far_and_a_projection_to_midnight() -> None:
    frame = detections([1.0, 8.0, 8.0, 8.0], [False, True, True, True])
    (incident,) = find_warehouse_incidents(frame, min_hours=2, rate=3.0, currency="USD")
    assert incident.incident_id == "PROD:ETL_WH@2026-11-27T11"
    assert (incident.account, incident.warehouse) == ("PROD", "ETL_WH")
    assert (incident.start.hour, incident.first_alarm.hour, incident.last_hour.hour) == (11, 12, 13)
    assert incident.open
    assert incident.hours == 3
    assert incident.credits == 24.0
    assert incident.extra_credits == 21.0
    assert incident.cost == pytest.approx(72.0)
    assert incident.hours_left_today == 10  # 14:00 to 23:00
    assert incident.projected_cost == pytest.approx((24.0 + 10 * 8.0) * 3.0)
    message = warehouse_incident_message(incident)
    assert "ETL_WH (account PROD)" in message  # both names: a warehouse name may repeat across accounts
    assert "Recurring" not in message
    assert "2026-11-27 11:00" in message
    assert "312.00 USD" in message


def test_an_ended_incident_projects_nothing_more_and_the_id_survives_a_later_hour() -> None:
    first = find_warehouse_incidents(detections([8.0, 8.0, 8.0], [True] * 3), min_hours=2)
    later = find_warehouse_incidents(detections([8.0, 8.0, 8.0, 8.0, 1.0], [True] * 4 + [False]), min_hours=2)
    assert first[0].incident_id == later[0].incident_id
    assert not later[0].open
    assert later[0].projected_credits == later[0].credits == 32.0
    assert later[0].cost is None  # no credit price: credits only
    report = render_warehouse_report(later, scored_until=pd.Timestamp("2026-11-27 14:00"))
    assert "0 open, 1 ended" in report
    assert "| ETL_WH | PROD | 2026-11-27 10:00 |" in report


def test_drops_and_short_runs_open_nothing() -> None:
    assert find_warehouse_incidents(detections([0.0, 0.0, 0.0], [True] * 3), min_hours=2) == []
    assert find_warehouse_incidents(detections([8.0, 1.0, 8.0], [True, False, True]), min_hours=2) == []


def test_spans_join_runs_that_come_back_within_rejoin_hours() -> None:
    flags = np.zeros(60, dtype=bool)
    flags[[2, 3, 4, 25, 26, 27, 50]] = True
    # A lone hour continues an incident (50 is 22 hours after 27) ...
    assert incident_spans(flags, 2, rejoin_hours=24) == [(2, 3, 50, [(2, 4), (25, 27), (50, 50)])]
    # ... but opens none (20 quiet hours join 4 and 25, 22 do not join 27 and 50).
    assert incident_spans(flags, 2, rejoin_hours=20) == [(2, 3, 27, [(2, 4), (25, 27)])]
    assert incident_spans(flags, 2, rejoin_hours=0) == [(2, 3, 4, [(2, 4)]), (25, 26, 27, [(25, 27)])]
    with pytest.raises(ValueError, match="rejoin_hours"):
        incident_spans(flags, 2, rejoin_hours=-1)


def test_a_resized_nightly_warehouse_is_one_incident_updated_each_night() -> None:
    """A nightly batch (01:00-04:00) on a warehouse resized 4x runs anomalously every night, suspended by day."""
    hours = pd.date_range("2026-11-24 00:00", periods=4 * 24, freq="h")
    night = (hours.hour >= 1) & (hours.hour < 4)
    frame = pd.DataFrame(
        {
            "usage_date": hours,
            "series": "PROD:ETL_WH",
            "value": np.where(night, 32.0, 0.0),
            "expected": np.where(night, 8.0, 0.0),
            "is_anomaly": night,
            "continuing": False,
        }
    )
    two_nights = find_warehouse_incidents(frame.iloc[: 24 + 4], min_hours=2, rate=2.0)
    (incident,) = find_warehouse_incidents(frame, min_hours=2, rate=2.0)
    assert (
        incident.incident_id == two_nights[0].incident_id == "PROD:ETL_WH@2026-11-24T01"
    )  # updated, not re-posted
    assert incident.episodes == 4
    assert incident.hours == 12  # the anomalous hours, not the days in between
    assert incident.credits == 12 * 32.0
    assert incident.extra_credits == 12 * 24.0
    assert not incident.open  # quiet by day; the next night continues it
    message = warehouse_incident_message(incident)
    assert "Recurring: 4 episodes" in message
    assert "retrain" in message
    # Without joining, each night opens a new incident (the old behaviour, still available).
    assert len(find_warehouse_incidents(frame, min_hours=2, rejoin_hours=0)) == 4
