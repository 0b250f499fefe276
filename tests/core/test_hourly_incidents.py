from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_provider_snowstorm.core.hourly_incidents import (
    alarm_runs,
    find_warehouse_incidents,
    render_warehouse_report,
    warehouse_incident_message,
)


def detections(values: list[float], flags: list[bool], *, start: str = "2026-11-27 10:00") -> pd.DataFrame:
    hours = pd.date_range(start, periods=len(values), freq="h")
    return pd.DataFrame(
        {
            "usage_date": hours,
            "series": "ETL_WH",
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
    assert incident.incident_id == "ETL_WH@2026-11-27T11"
    assert (incident.start.hour, incident.first_alarm.hour, incident.last_hour.hour) == (11, 12, 13)
    assert incident.open
    assert incident.hours == 3
    assert incident.credits == 24.0
    assert incident.extra_credits == 21.0
    assert incident.cost == pytest.approx(72.0)
    assert incident.hours_left_today == 10  # 14:00 to 23:00
    assert incident.projected_cost == pytest.approx((24.0 + 10 * 8.0) * 3.0)
    message = warehouse_incident_message(incident)
    assert "ETL_WH" in message
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
    assert "| ETL_WH | 2026-11-27 10:00 |" in report


def test_drops_and_short_runs_open_nothing() -> None:
    assert find_warehouse_incidents(detections([0.0, 0.0, 0.0], [True] * 3), min_hours=2) == []
    assert find_warehouse_incidents(detections([8.0, 1.0, 8.0], [True, False, True]), min_hours=2) == []
