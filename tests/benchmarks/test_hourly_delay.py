"""The hourly delay benchmark: its XS subset and its before/after switches."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.families import FAMILIES
from benchmarks.hourly_delay import XS_CREDITS, extra_small, job_fleet, main


def test_extra_small_keeps_the_warehouses_that_bill_at_most_one_credit_an_hour() -> None:
    data = job_fleet(1, 40)
    small = extra_small(data)
    assert small is not None
    busiest = data.values.iloc[: data.train_rows].max()
    assert set(small.values.columns) == set(busiest.index[busiest <= XS_CREDITS])
    assert 0 < small.values.shape[1] < data.values.shape[1]
    assert set(small.labels["series"]) <= set(small.values.columns)
    assert len(small.labels) == data.labels["series"].isin(small.values.columns).sum()


@pytest.mark.parametrize(
    ("argv", "settings"),
    [
        ([], "'min_deviation_share': 0.5, "),
        (["--min-deviation-share", "none", "--rejoin-hours", "0"], "'min_deviation_share': None"),
    ],
)
def test_main_reports_the_settings_it_ran_with(capsys, argv: list[str], settings: str) -> None:
    main(["--warehouses", "12", *argv])
    out = capsys.readouterr().out
    assert settings in out
    assert f"rejoin_hours {argv[-1] if argv else 24}" in out
    assert "| held out, pooled (hourly_warehouse, job_fleet) | hourly |" in out


def test_job_fleet_here_is_the_family_s_warehouses_with_runaways_from_two_weeks_before_training_ends() -> (
    None
):
    here, family = job_fleet(1, 12), FAMILIES["job_fleet"](1, 12)
    assert here.period == 168
    pd.testing.assert_index_equal(here.values.index, family.values.index)
    assert (here.labels["start"] >= here.values.index[here.train_rows - 14 * 24]).all()
    assert (family.labels["start"] < family.values.index[family.train_rows - 14 * 24]).any()
