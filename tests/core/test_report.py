"""The anomaly report: incidents from predictions, markdown, and Slack messages within Slack's limits."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest

from airflow_provider_snowstorm.core.report import (
    ROOT_CAUSE_COLUMNS,
    build_report,
    data_notes,
    explain,
    feedback_sql,
    find_incidents,
    normalise_usage,
    parent_series,
    render_markdown,
    root_cause_records,
    usage_currency,
)
from airflow_provider_snowstorm.notifications.slack_layout import SlackLimits, slack_messages
from tests.scoring_results import START, make_rows
from tests.scoring_results import make_result as build_result


def make_result(series: str, values: list[float], expected: list[float], flags: list[int]) -> dict[str, Any]:
    return build_result(
        series, values, expected, flags, run_url=f"https://wandb.example/snowstorm/runs/{series}"
    )


@pytest.fixture
def results() -> list[dict[str, Any]]:
    """compute: a two-day spike (days 3-4); storage: a one-day drop (day 4); data_transfer: clean."""
    return [
        make_result("compute", [100, 100, 300, 250, 100, 100, 100], [100] * 7, [0, 0, 1, 1, 0, 0, 0]),
        make_result("storage", [50, 50, 50, 10, 50, 50, 50], [50] * 7, [0, 0, 0, 1, 0, 0, 0]),
        make_result("data_transfer", [5] * 7, [5] * 7, [0] * 7),
    ]


def frame(*results: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([row for result in results for row in result["rows"]])


def many_incident_results(count: int) -> list[dict[str, Any]]:
    """``count`` series, each with one one-day spike of a different size."""
    return [
        make_result(f"warehouse_{n:03d}", [10, 10 + n + 1, 10], [10, 10, 10], [0, 1, 0]) for n in range(count)
    ]


# -- incidents ----------------------------------------------------------------------------------------------


def test_consecutive_flagged_days_merge_into_one_incident(results) -> None:
    compute = [i for i in find_incidents(frame(results[0])) if i.series == "compute"]
    assert [(i.start, i.end, i.days) for i in compute] == [(date(2026, 1, 3), date(2026, 1, 4), 2)]


def test_incident_amounts_and_percentage(results) -> None:
    (incident,) = find_incidents(frame(results[0]))
    assert incident.observed == 550
    assert incident.expected == 200
    assert incident.extra_cost == incident.delta == 350
    assert incident.delta_pct == pytest.approx(175.0)
    assert incident.peak_day == date(2026, 1, 3)
    assert incident.peak_delta == 200


def test_categories_flagged_on_the_same_day_are_separate_incidents(results) -> None:
    incidents = find_incidents(frame(*results))
    assert sorted(i.series for i in incidents) == ["compute", "storage"]


def test_a_drop_has_negative_extra_cost(results) -> None:
    (drop,) = find_incidents(frame(results[1]))
    assert drop.direction == "drop"
    assert drop.extra_cost == -40
    assert drop.delta_pct == pytest.approx(-80.0)


def test_a_day_without_flag_splits_incidents() -> None:
    result = make_result("compute", [100, 300, 100, 300, 100], [100] * 5, [0, 1, 0, 1, 0])
    assert [(i.start.day, i.end.day) for i in find_incidents(frame(result))] == [(2, 2), (4, 4)]


def test_a_spike_directly_followed_by_a_drop_is_two_incidents() -> None:
    result = make_result("compute", [100, 300, 20, 100], [100] * 4, [0, 1, 1, 0])
    incidents = find_incidents(frame(result))
    assert sorted((i.start.day, i.direction) for i in incidents) == [(2, "spike"), (3, "drop")]


def test_incidents_are_ordered_by_impact(results) -> None:
    big_drop = make_result("storage", [500, 0, 500], [500, 500, 500], [0, 1, 0])
    incidents = find_incidents(frame(results[0], big_drop))
    assert [(i.series, i.extra_cost) for i in incidents] == [("storage", -500), ("compute", 350)]


def test_percentage_is_undefined_when_nothing_was_expected() -> None:
    result = make_result("compute", [0, 40, 0], [0, 0, 0], [0, 1, 0])
    report = build_report([result])
    assert report.incidents[0].delta_pct is None
    assert "| n/a |" in report.markdown


def test_string_flags_are_read_as_booleans() -> None:
    predictions = frame(make_result("compute", [100, 300], [100, 100], [0, 1]))
    predictions["is_anomaly"] = ["false", "true"]
    assert [i.start.day for i in find_incidents(predictions)] == [2]


def test_missing_prediction_columns_are_named() -> None:
    predictions = frame(make_result("compute", [100], [100], [0])).drop(columns=["expected"])
    with pytest.raises(ValueError, match=r"missing column\(s\) \['expected'\]"):
        find_incidents(predictions)


def test_duplicate_rows_without_scored_at_are_rejected() -> None:
    predictions = frame(make_result("compute", [100], [100], [1]))
    with pytest.raises(ValueError, match="several rows for series 'compute' on 2026-01-01"):
        find_incidents(pd.concat([predictions, predictions]))


# -- the report ---------------------------------------------------------------------------------------------


def test_build_report_collects_window_models_and_missing_results(results) -> None:
    report = build_report([*results, None])
    assert (report.window_start, report.window_end) == (date(2026, 1, 1), date(2026, 1, 7))
    assert report.series_count == 3
    assert report.missing_results == 1
    assert report.extra_cost == 350
    assert report.shortfall == 40
    assert [m.series for m in report.affected_models] == ["compute", "storage"]


def test_a_result_without_series_is_named() -> None:
    with pytest.raises(ValueError, match=r"results\[1\] has no 'series'"):
        build_report([make_result("compute", [1], [1], [0]), {"rows": []}])


def test_markdown_headline_table_models_and_window(results) -> None:
    markdown = build_report(results, currency="USD").markdown
    first_line = markdown.splitlines()[0]
    assert first_line == (
        "# Snowflake spend anomalies: 2 incidents in 2 cost categories, est. extra cost +350.00 USD"
    )
    assert "Scored window 2026-01-01 to 2026-01-07 · 3 cost categories scored · amounts in USD." in markdown
    assert (
        "| 1 | compute | 2026-01-03 → 2026-01-04 | 2 | spike | 550.00 USD | 200.00 USD | +350.00 USD "
        "| +175.0% | 2026-01-03 |" in markdown
    )
    assert "| 2 | storage | 2026-01-04 | 1 | drop | 10.00 USD | 50.00 USD | -40.00 USD | -80.0% |" in markdown
    assert (
        "| compute | snowstorm-compute v3 | offline (no URL) "
        "| [scoring run](https://wandb.example/snowstorm/runs/compute) |" in markdown
    )
    assert "1 other cost category scored without anomalies." in markdown


def test_markdown_all_clear_is_short(results) -> None:
    markdown = render_markdown(build_report([results[2]]))
    assert markdown == (
        "# Snowflake spend anomalies: all clear\n\n"
        "No anomalies in the scored window 2026-01-01 to 2026-01-07 (1 cost category scored).\n"
    )


def test_data_notes_name_settling_restated_days_and_other_currencies() -> None:
    notes = data_notes(
        settling=[date(2026, 11, 26), date(2026, 11, 25)],
        restated=[f"2026-10-{day:02d}" for day in range(1, 8)],
        other_currencies=["EUR"],
    )
    assert notes == [
        "Still settling, not scored yet: 2026-11-25, 2026-11-26 (Snowflake's usage figures arrive over up to 72 "
        "hours)",
        "Restated by Snowflake after they were scored, re-scored: 2026-10-01 to 2026-10-07 (7 days)",
        "Spend in EUR is not in this report (amounts in different currencies are never added up; run a pipeline "
        "per currency with SNOWSTORM_CURRENCY)",
    ]
    assert data_notes() == []


def test_data_notes_name_the_drift_that_retrains_the_models() -> None:
    reason = "compute: level moved +62% (limit 50%)"
    assert data_notes(drift=reason) == [f"Drift, models retraining: {reason}"]
    assert data_notes(drift=None) == []


FEEDBACK_TABLE = "SNOWSTORM.ANALYTICS.COST_ANOMALY_FEEDBACK"


def test_feedback_statement_has_a_row_per_detected_incident(results) -> None:
    sql = feedback_sql(build_report(results, feedback_table=FEEDBACK_TABLE))
    assert sql.splitlines() == [
        f"INSERT INTO {FEEDBACK_TABLE} (SERIES, START_DATE, END_DATE, VERDICT, NOTE, REPORTED_BY, REPORTED_AT) "
        "VALUES",
        "    ('compute', '2026-01-03', '2026-01-04', 'real', 'incident 1', CURRENT_USER(), CURRENT_TIMESTAMP()),",
        "    ('storage', '2026-01-04', '2026-01-04', 'real', 'incident 2', CURRENT_USER(), CURRENT_TIMESTAMP());",
    ]
    with pytest.raises(ValueError, match="no feedback_table"):
        feedback_sql(build_report(results))


def test_a_report_with_incidents_says_how_to_give_feedback(results) -> None:
    report = build_report(results, feedback_table=FEEDBACK_TABLE)
    markdown = render_markdown(report)
    line = f"Real incident or false alarm? Record it in {FEEDBACK_TABLE} (verdict 'real' or 'false_alarm')"
    assert line in markdown.split("## Incidents", 1)[0]
    assert markdown.index("## Models") < markdown.index("## Feedback")
    assert f"```sql\n{feedback_sql(report)}\n```\n" in markdown
    assert line in section_texts(slack_messages(report))[0]
    # Without a table, or without incidents, nothing about feedback.
    assert "feedback" not in render_markdown(build_report(results)).lower()
    all_clear = build_report([results[2]], feedback_table=FEEDBACK_TABLE)
    assert "feedback" not in render_markdown(all_clear).lower()
    assert "feedback" not in " ".join(section_texts(slack_messages(all_clear))).lower()


def test_notes_show_under_the_summary_in_every_report(results) -> None:
    notes = ["Still settling, not scored yet: 2026-01-08."]
    all_clear = build_report([results[2]], notes=notes)
    assert render_markdown(all_clear).endswith("\n\nStill settling, not scored yet: 2026-01-08.\n")
    assert section_texts(slack_messages(all_clear))[0].endswith(
        "\nStill settling, not scored yet: 2026-01-08"
    )
    with_incidents = render_markdown(build_report(results, notes=notes))
    summary = with_incidents.split("## Incidents", 1)[0]
    assert summary.rstrip().endswith("Still settling, not scored yet: 2026-01-08.")
    with pytest.raises(TypeError, match="notes must be a list of strings"):
        build_report(results, notes="one line")


# -- Slack --------------------------------------------------------------------------------------------------


def section_texts(messages) -> list[str]:
    return [b["text"]["text"] for m in messages for b in m.blocks if b["type"] == "section"]


def test_short_report_is_one_slack_message_with_the_table_in_a_code_block(results) -> None:
    (message,) = slack_messages(build_report(results), report_location="/reports/anomaly_report.md")
    texts = section_texts([message])
    assert message.text.startswith("Snowflake spend anomalies: 2 incidents")
    table = next(t for t in texts if t.startswith("```"))
    lines = table.splitlines()
    assert lines[1].split() == ["#", "Category", "When", "Days", "Actual", "Expected", "Extra", "vs", "exp."]
    assert lines[3].split() == [
        "1",
        "compute",
        "2026-01-03→01-04",
        "2",
        "550.00",
        "200.00",
        "+350.00",
        "+175.0%",
    ]
    assert "<https://wandb.example/snowstorm/runs/compute|scoring run>" in texts[-1]
    assert "`/reports/anomaly_report.md`" in texts[0]


def test_long_report_is_split_between_rows_and_repeats_the_table_header() -> None:
    report = build_report(many_incident_results(60))
    limits = SlackLimits(max_blocks=4, max_section_chars=600, max_message_chars=1500)
    messages = slack_messages(report, limits=limits, max_incidents=60)

    assert len(messages) > 2
    assert all(len(m.blocks) <= limits.max_blocks for m in messages)
    assert all(m.chars <= limits.max_message_chars for m in messages)
    assert all(len(t) <= limits.max_section_chars for t in section_texts(messages))
    tables = [t for t in section_texts(messages) if t.startswith("```")]
    assert len(tables) > 2
    header = tables[0].splitlines()[1:3]
    assert all(t.splitlines()[1:3] == header and t.endswith("\n```") for t in tables)
    rows = [line for t in tables for line in t.splitlines()[3:-1]]
    assert [int(r.split()[0]) for r in rows] == list(range(1, 61))
    row_pattern = r"\d+ +warehouse_\d{3} +2026-01-02 +1 +[\d.]+ +10.00 +\+[\d.]+ +\+[\d.]+%"
    assert all(re.fullmatch(row_pattern, r.strip()) for r in rows)
    parts = [m.text.rsplit(" ", 1)[-1] for m in messages]
    assert parts == [f"{n}/{len(messages)})" for n in range(1, len(messages) + 1)]


def test_incidents_beyond_max_incidents_are_summarised() -> None:
    report = build_report(many_incident_results(12))
    texts = section_texts(slack_messages(report, max_incidents=5, report_location="s3://bucket/r.md"))
    rows = [line for t in texts if t.startswith("```") for line in t.splitlines()[3:-1]]
    assert len(rows) == 5
    hidden = sum(i.extra_cost for i in report.incidents[5:])
    assert f"…and 7 more incidents (net +{hidden:,.2f} vs expected), see `s3://bucket/r.md`." in texts


def test_slack_all_clear_is_one_short_message(results) -> None:
    (message,) = slack_messages(build_report([results[2]]))
    assert section_texts([message]) == [
        ":white_check_mark: *Snowflake spend anomalies: all clear*\n"
        "No anomalies in the scored window 2026-01-01 to 2026-01-07 (1 cost category scored)."
    ]


def test_slack_control_characters_in_names_are_escaped() -> None:
    result = make_result("R&D <sandbox>", [100, 300], [100, 100], [0, 1]) | {"run_url": None}
    texts = section_texts(slack_messages(build_report([result])))
    assert any("R&amp;D &lt;sandbox&gt;" in t for t in texts)
    assert not any("<sandbox>" in t for t in texts)


def test_continuing_days_extend_the_incident_they_follow() -> None:
    rows = make_rows("compute", [100, 300, 280, 260, 100], [100] * 5, [0, 1, 0, 0, 0])
    for row, continuing in zip(rows, [False, False, True, True, False], strict=True):
        row["continuing"] = continuing
    (incident,) = find_incidents(pd.DataFrame(rows))
    assert (incident.start, incident.end) == (START + timedelta(days=1), START + timedelta(days=3))
    assert incident.extra_cost == pytest.approx(200 + 180 + 160)


def test_continuing_days_without_an_alarm_before_them_are_no_incident() -> None:
    rows = make_rows("compute", [300, 280, 100], [100] * 3, [0, 0, 0])
    for row in rows[:2]:
        row["continuing"] = True
    assert find_incidents(pd.DataFrame(rows)) == []


# -- the hierarchy of costs: each cost counted once ----------------------------------------------------------


def burst_results() -> list[dict[str, Any]]:
    """One compute burst on days 3-5 (+100/day) that also shows in total_usage, plus an unrelated storage drop."""
    total_values = [500, 500, 600, 610, 590, 500, 500]
    compute_values = [300, 300, 400, 400, 400, 300, 300]
    return [
        make_result("total_usage", total_values, [500] * 7, [0, 0, 1, 1, 1, 0, 0]),
        make_result("compute", compute_values, [300] * 7, [0, 0, 1, 1, 1, 0, 0]),
        make_result("storage", [50, 50, 50, 50, 50, 50, 20], [50] * 7, [0, 0, 0, 0, 0, 0, 1]),
    ]


def test_an_incident_in_the_total_and_its_category_is_counted_once() -> None:
    report = build_report(burst_results(), currency="USD")
    assert len(report.incidents) == 3
    assert [(g.series, g.categories, g.direction) for g in report.groups] == [
        ("total_usage", ("compute",), "spike"),
        ("storage", ("storage",), "drop"),
    ]
    # The total's own extra cost (300), not total + compute (600).
    assert report.extra_cost == 300
    assert report.shortfall == 30
    assert report.markdown.splitlines()[0] == (
        "# Snowflake spend anomalies: 2 incidents in 2 cost categories, est. extra cost +300.00 USD"
    )
    assert "| 1 | total_usage (compute) | 2026-01-03 → 2026-01-05 | 3 | spike |" in report.markdown


def test_a_category_incident_outside_the_total_incident_leads_its_own_group() -> None:
    results = [
        make_result("total_usage", [500, 600, 500, 500], [500] * 4, [0, 1, 0, 0]),
        make_result("compute", [300, 300, 300, 400], [300] * 4, [0, 0, 0, 1]),
    ]
    groups = build_report(results).groups
    assert sorted((g.series, g.start.day) for g in groups) == [("compute", 4), ("total_usage", 2)]
    assert build_report(results).extra_cost == 200


def test_per_account_series_nest_under_their_account_total_and_the_total() -> None:
    assert parent_series("PROD:compute") == "PROD:total_usage"
    assert parent_series("PROD:total_usage") == "total_usage"
    assert parent_series("compute") == "total_usage"
    assert parent_series("total_usage") is None
    results = [
        make_result("PROD:total_usage", [100, 200, 100], [100] * 3, [0, 1, 0]),
        make_result("PROD:compute", [50, 150, 50], [50] * 3, [0, 1, 0]),
    ]
    (group,) = build_report(results).groups
    assert (group.series, group.categories) == ("PROD:total_usage", ("PROD:compute",))


# -- root cause from per-account usage ----------------------------------------------------------------------


def usage_rows(weeks_before: int = 4) -> pd.DataFrame:
    """Per-account rows from ``weeks_before`` weeks before START to day 7: weekday 100, weekend 40 for PROD compute,
    DEV compute 20 a day, PROD storage 10 a day; PROD compute +100 on days 3-5 (as burst_results)."""
    records = []
    first = START - timedelta(weeks=weeks_before)
    for offset in range((START - first).days + 7):
        day = first + timedelta(days=offset)
        burst = 100 if START + timedelta(days=2) <= day <= START + timedelta(days=4) else 0
        weekday_cost = 100 if day.weekday() < 5 else 40
        for account, usage_type, cost in (
            ("PROD", "compute", weekday_cost + burst),
            ("DEV", "compute", 20),
            ("PROD", "storage", 10),
        ):
            records.append(
                {
                    "USAGE_DATE": day,
                    "ACCOUNT_NAME": account,
                    "USAGE_TYPE": usage_type,
                    "USAGE_IN_CURRENCY": cost,
                    "CURRENCY": "EUR",
                }
            )
    return pd.DataFrame(records)


def test_root_cause_names_the_account_and_usage_type_with_amount_and_share() -> None:
    report = build_report(burst_results(), usage=usage_rows())
    group = report.groups[0]
    assert group.breakdown is not None
    (top, *others) = group.contributors
    assert (top.account, top.usage_type) == ("PROD", "compute")
    assert top.extra_cost == pytest.approx(300)
    assert top.share == pytest.approx(1.0)
    assert others == []  # nothing else moved
    assert report.currency == "EUR"
    assert report.extra_cost == pytest.approx(300)
    # The usage rows show no storage drop (the model saw one): the model's amounts stay, without a root cause.
    storage = report.groups[1]
    assert (storage.series, storage.breakdown, storage.contributors) == ("storage", None, ())
    assert report.shortfall == 30
    markdown = report.markdown
    assert "| PROD | compute | " in markdown
    assert "| +300.00 EUR | 100% |" in markdown
    assert "median of the same weekday in the 4 weeks before the incident" in markdown
    texts = section_texts(slack_messages(report))
    assert any("#1 drivers:* PROD · compute +300.00 (100%)" in text for text in texts)


def test_root_cause_baseline_is_the_same_weekday_before_the_incident() -> None:
    """Weekend days inside an incident are compared with weekends before it, never with the incident's own days."""
    usage = normalise_usage(usage_rows())
    saturday = next(START + timedelta(days=k) for k in range(7) if (START + timedelta(days=k)).weekday() == 5)
    (totals, contributors) = explain(usage, START, saturday, "spike")
    prod = next(c for c in contributors if c.usage_type == "compute" and c.account == "PROD")
    weekdays = sum(1 for k in range((saturday - START).days + 1) if (START + timedelta(days=k)).weekday() < 5)
    assert prod.expected == pytest.approx(100 * weekdays + 40)
    assert totals[0] - totals[1] == pytest.approx(100)  # only the burst's first day (the Saturday) is inside


def test_without_history_before_the_incident_there_is_no_root_cause() -> None:
    report = build_report(burst_results(), usage=usage_rows(weeks_before=0).iloc[6:])
    assert report.groups[0].breakdown is None
    assert report.extra_cost == 300


def test_usage_rows_need_their_columns() -> None:
    with pytest.raises(ValueError, match="usage_in_currency"):
        build_report(burst_results(), usage=pd.DataFrame({"USAGE_DATE": [START], "ACCOUNT_NAME": ["A"]}))


def test_mixed_currencies_are_not_guessed() -> None:
    usage = usage_rows()
    usage.loc[0, "CURRENCY"] = "USD"
    assert usage_currency(usage) is None
    assert usage_currency(usage_rows()) == "EUR"


def test_contributors_below_one_percent_of_the_deviation_are_left_out() -> None:
    usage = usage_rows().astype({"USAGE_IN_CURRENCY": float})
    days = pd.to_datetime(usage["USAGE_DATE"])
    inside = (days >= pd.Timestamp(START + timedelta(days=2))) & (
        days <= pd.Timestamp(START + timedelta(days=4))
    )
    usage.loc[inside & (usage["ACCOUNT_NAME"] == "DEV"), "USAGE_IN_CURRENCY"] += 0.5  # 1.5 of ~310: 0.5%
    usage.loc[inside & (usage["USAGE_TYPE"] == "storage"), "USAGE_IN_CURRENCY"] += 3  # 9 of ~310: 3%
    group = build_report(burst_results(), usage=usage).groups[0]
    assert [(c.account, c.usage_type) for c in group.contributors] == [
        ("PROD", "compute"),
        ("PROD", "storage"),
    ]
    assert group.extra_cost == pytest.approx(310.5)


# -- onset: the days of an excursion before its first alarm ----------------------------------------------------


def test_days_before_the_first_alarm_that_already_deviate_belong_to_the_incident() -> None:
    """A burst alarmed on its third day: its first two days (deviating >= half the mean) count, the quiet one not."""
    result = make_result("compute", [100, 140, 260, 300, 400, 300, 100], [100] * 7, [0, 0, 0, 0, 1, 0, 0])
    (incident,) = find_incidents(frame(result))
    assert (incident.start, incident.alarm_day, incident.end) == (
        START + timedelta(days=2),
        START + timedelta(days=4),
        START + timedelta(days=4),
    )
    assert incident.extra_cost == 160 + 200 + 300
    markdown = build_report([result]).markdown
    assert "(first alarm 2026-01-05)" in markdown
    assert "est. extra cost +660.00" in markdown.splitlines()[0]


def test_onset_stops_at_a_day_moving_the_other_way_and_can_be_turned_off() -> None:
    result = make_result("compute", [100, 300, 50, 300, 400, 100, 100], [100] * 7, [0, 0, 0, 0, 1, 0, 0])
    (incident,) = find_incidents(frame(result))
    assert incident.start == START + timedelta(days=3)  # day 2 dropped below expected: not part of the burst
    (plain,) = find_incidents(frame(result), onset_fraction=0)
    assert (plain.start, plain.first_alarm) == (START + timedelta(days=4), None)


def test_onset_never_takes_days_of_the_previous_incident() -> None:
    result = make_result("compute", [100, 400, 400, 400, 100], [100] * 5, [0, 1, 0, 1, 0])
    incidents = sorted(find_incidents(frame(result)), key=lambda i: i.start)
    assert [(i.start.day, i.end.day) for i in incidents] == [(2, 2), (3, 4)]


def test_root_cause_records_are_one_row_per_incident_and_contributor() -> None:
    report = build_report(burst_results(), usage=usage_rows())
    (record,) = root_cause_records(report)
    assert set(record) == set(ROOT_CAUSE_COLUMNS)
    assert record["incident_start"] == START + timedelta(days=2)
    assert (record["series"], record["categories"], record["account_name"], record["usage_type"]) == (
        "total_usage",
        "compute",
        "PROD",
        "compute",
    )
    assert (record["extra_cost"], record["share"], record["currency"]) == (300.0, 1.0, "EUR")
    assert root_cause_records(build_report(burst_results())) == []  # no usage, no root cause


def test_the_group_first_alarm_is_the_earliest_of_its_series() -> None:
    """total_usage alarmed on day 5 (its excursion began on day 3); compute alarmed on day 3: no late alarm."""
    results = [
        make_result("total_usage", [500, 500, 700, 700, 700, 500, 500], [500] * 7, [0, 0, 0, 0, 1, 0, 0]),
        make_result("compute", [300, 300, 500, 500, 500, 300, 300], [300] * 7, [0, 0, 1, 1, 1, 0, 0]),
    ]
    (group,) = build_report(results).groups
    assert (group.lead.alarm_day, group.first_alarm, group.start) == (
        START + timedelta(days=4),
        START + timedelta(days=2),
        START + timedelta(days=2),
    )
    assert "first alarm" not in build_report(results).markdown


def test_incidents_and_the_slack_layout_still_import_from_the_report_module() -> None:
    """Incidents moved to core.incidents (re-exported); the Slack layout to notifications (deprecated here)."""
    from airflow_provider_snowstorm.core import incidents, report
    from airflow_provider_snowstorm.notifications import slack_layout

    for name in (
        "Incident",
        "IncidentGroup",
        "Contributor",
        "find_incidents",
        "group_incidents",
        "parent_series",
    ):
        assert getattr(report, name) is getattr(incidents, name)
    for name in ("SlackLimits", "SlackMessage", "slack_messages"):
        with pytest.warns(
            DeprecationWarning, match=f"moved to airflow_provider_snowstorm.notifications.slack_layout.{name}"
        ):
            assert getattr(report, name) is getattr(slack_layout, name)
    with pytest.raises(AttributeError):
        report.no_such_name  # noqa: B018
