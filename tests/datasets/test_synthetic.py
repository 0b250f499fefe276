from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from airflow_provider_snowstorm.core import features
from airflow_provider_snowstorm.core.schema import DATE, USAGE_COLUMNS
from airflow_provider_snowstorm.datasets import (
    KINDS,
    USAGE_ROW_COLUMNS,
    SyntheticSeries,
    SyntheticUsage,
    generate_cost_series,
    generate_organization_usage,
)

START = "2024-01-01"
TWO_YEARS = 730
SEED = 7


def cents(frame: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """Currency as integer cents, so that label arithmetic can be compared exactly."""
    return (frame * 100).round().astype("int64")


def window(frame: pd.DataFrame, label: pd.Series, end_column: str = "end") -> pd.Series:
    return frame.loc[pd.Timestamp(label["start"]) : pd.Timestamp(label[end_column]), label["series"]]


def effect_mask(values: pd.DataFrame, labels: pd.DataFrame) -> np.ndarray:
    """True from each incident's start to its effect_end (level shifts persist) in its series."""
    mask = np.zeros(values.shape, dtype=bool)
    for label in labels.itertuples():
        first = (pd.Timestamp(label.start) - values.index[0]).days
        last = (pd.Timestamp(label.effect_end) - values.index[0]).days
        mask[first : last + 1, values.columns.get_loc(label.series)] = True
    return mask


def intensity(values: pd.DataFrame, label: pd.Series) -> float:
    """Labelled-window cost with the incident divided by the same cost without it."""
    with_incident = window(values, label).sum()
    return with_incident / (with_incident - label["extra_cost"])


@pytest.fixture(scope="module")
def usage() -> SyntheticUsage:
    return generate_organization_usage(START, TWO_YEARS, seed=SEED)


@pytest.fixture(scope="module")
def clean_usage() -> SyntheticUsage:
    return generate_organization_usage(START, TWO_YEARS, seed=SEED, anomalies=False)


@pytest.fixture(scope="module")
def series() -> SyntheticSeries:
    return generate_cost_series(200, TWO_YEARS, seed=SEED)


# ---------------------------------------------------------------------------------------------------
# Organisation usage
# ---------------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_usage(usage: SyntheticUsage) -> None:
    again = generate_organization_usage(START, TWO_YEARS, seed=SEED)
    pd.testing.assert_frame_equal(again.rows, usage.rows)
    pd.testing.assert_frame_equal(again.labels, usage.labels)


def test_different_seeds_give_different_usage(usage: SyntheticUsage) -> None:
    other = generate_organization_usage(START, TWO_YEARS, seed=SEED + 1)
    assert not usage.org_series()["compute"].equals(other.org_series()["compute"])
    assert not usage.labels["start"].equals(other.labels["start"])


def test_rows_have_the_snowflake_view_columns(usage: SyntheticUsage) -> None:
    assert list(usage.rows.columns) == list(USAGE_ROW_COLUMNS)
    assert set(USAGE_COLUMNS) <= set(usage.rows.columns)


def test_rows_have_snowflake_types_and_precision(usage: SyntheticUsage) -> None:
    rows = usage.rows
    assert all(type(value) is date for value in rows["USAGE_DATE"])
    assert rows["USAGE_IN_CURRENCY"].dtype == np.float64
    assert rows["USAGE"].dtype == np.float64
    assert rows["IS_ADJUSTMENT"].dtype == bool
    assert not rows["IS_ADJUSTMENT"].any()
    assert np.allclose(rows["USAGE_IN_CURRENCY"], rows["USAGE_IN_CURRENCY"].round(2), rtol=0, atol=1e-9)
    assert np.allclose(rows["USAGE"], rows["USAGE"].round(3), rtol=0, atol=1e-9)
    assert set(rows["CURRENCY"]) == {"USD"}
    assert set(rows["ORGANIZATION_NAME"]) == {"SNOWSTORM_DEMO"}
    assert set(rows["BILLING_TYPE"]) == {"consumption"}
    assert rows["ACCOUNT_NAME"].nunique() == 3


def test_usage_types_are_snowflake_spelled_and_realistic(usage: SyntheticUsage) -> None:
    usage_types = set(usage.rows["USAGE_TYPE"])
    assert {"compute", "storage", "cloud services", "data transfer"} <= usage_types
    assert all(value == value.lower() and "_" not in value for value in usage_types)
    assert set(usage.rows["RATING_TYPE"]) <= {"compute", "storage", "data transfer"}


def test_no_cost_is_negative(usage: SyntheticUsage) -> None:
    assert (usage.rows["USAGE_IN_CURRENCY"] >= 0).all()
    assert (usage.rows["USAGE"] >= 0).all()


def test_compute_dominates_spend(clean_usage: SyntheticUsage) -> None:
    totals = clean_usage.org_series().sum()
    assert totals.idxmax() == "compute"
    assert totals["compute"] > 0.5 * totals.sum()


def test_storage_grows_slowly_and_smoothly(clean_usage: SyntheticUsage) -> None:
    storage = clean_usage.org_series()["storage"]
    assert storage.pct_change().abs().max() < 0.05
    assert storage.iloc[-30:].mean() > storage.iloc[:30].mean()


def test_weekdays_are_busier_than_weekends(clean_usage: SyntheticUsage) -> None:
    compute = clean_usage.org_series()["compute"]
    weekend = compute.index.day_of_week >= 5
    assert compute[~weekend].mean() > 1.3 * compute[weekend].mean()


def test_duplicate_rows_differ_only_by_balance_source(usage: SyntheticUsage) -> None:
    rows = usage.rows
    assert not rows.duplicated(["ACCOUNT_NAME", "USAGE_DATE", "USAGE_TYPE", "BALANCE_SOURCE"]).any()
    shared = rows[rows.duplicated(["ACCOUNT_NAME", "USAGE_DATE", "USAGE_TYPE"], keep=False)]
    assert not shared.empty
    sources = shared.groupby(["ACCOUNT_NAME", "USAGE_DATE", "USAGE_TYPE"])["BALANCE_SOURCE"].agg(frozenset)
    assert set(sources) <= {frozenset({"capacity", "overage"}), frozenset({"capacity", "rollover"})}


def test_rows_pass_feature_validation_with_matching_series_names(usage: SyntheticUsage) -> None:
    features.validate_usage_rows(usage.rows)
    assert set(usage.org_series().columns) == {
        features.snake_case_usage_type(value) for value in usage.rows["USAGE_TYPE"].unique()
    }
    assert all(
        features.snake_case_usage_type(label.usage_type) == label.series
        for label in usage.labels.itertuples()
    )


@pytest.mark.parametrize("seed", range(5))
def test_every_kind_appears_in_a_default_two_year_draw(seed: int) -> None:
    labels = generate_organization_usage(START, TWO_YEARS, seed=seed).labels
    assert set(labels["kind"]) == set(KINDS)


def test_labels_have_the_documented_columns_and_values(usage: SyntheticUsage) -> None:
    labels = usage.labels
    assert list(labels.columns) == [
        "incident_id",
        "kind",
        "account_name",
        "usage_type",
        "series",
        "start",
        "end",
        "effect_end",
        "extra_cost",
        "direction",
    ]
    assert labels["incident_id"].is_unique
    assert all(type(value) is date for value in labels["start"])
    assert (labels["end"] >= labels["start"]).all()
    assert set(labels["account_name"]) <= set(usage.rows["ACCOUNT_NAME"])
    assert set(labels["usage_type"]) <= set(usage.rows["USAGE_TYPE"])
    drops = labels["kind"] == "outage"
    assert (labels.loc[drops, "direction"] == "drop").all()
    assert (labels.loc[drops, "extra_cost"] < 0).all()
    assert (labels.loc[~drops, "direction"] == "spike").all()
    assert (labels.loc[~drops, "extra_cost"] > 0).all()


def test_label_windows_do_not_overlap_within_a_series(usage: SyntheticUsage) -> None:
    for _, group in usage.labels.groupby("series"):
        ordered = group.sort_values("start")
        assert (ordered["start"].iloc[1:].to_numpy() > ordered["end"].iloc[:-1].to_numpy()).all()


def test_label_durations_follow_the_kind(usage: SyntheticUsage) -> None:
    labels = usage.labels
    days = (pd.to_datetime(labels["end"]) - pd.to_datetime(labels["start"])).dt.days + 1
    limits = {
        "runaway_spike": (1, 1),
        "burst": (3, 7),
        "outage": (1, 3),
        "level_shift": (3, 3),
        "weekend_job": (1, 2),
    }
    for kind, (shortest, longest) in limits.items():
        assert days[labels["kind"] == kind].between(shortest, longest).all(), kind


def test_weekend_jobs_are_weekend_compute(usage: SyntheticUsage) -> None:
    jobs = usage.labels[usage.labels["kind"] == "weekend_job"]
    assert not jobs.empty
    assert (jobs["series"] == "compute").all()
    assert all(day.weekday() >= 5 for day in [*jobs["start"], *jobs["end"]])


def test_spike_days_are_far_above_the_clean_series(
    usage: SyntheticUsage, clean_usage: SyntheticUsage
) -> None:
    anomalous, clean = usage.org_series(), clean_usage.org_series()
    spikes = usage.labels[usage.labels["kind"] == "runaway_spike"]
    assert not spikes.empty
    for _, label in spikes.iterrows():
        assert (window(anomalous, label) >= 2.9 * window(clean, label)).all()


def test_data_outside_incidents_equals_the_clean_draw(
    usage: SyntheticUsage, clean_usage: SyntheticUsage
) -> None:
    anomalous, clean = cents(usage.org_series()), cents(clean_usage.org_series())
    assert len(usage.rows) == len(clean_usage.rows)
    changed = (anomalous != clean).to_numpy()
    assert not (changed & ~effect_mask(anomalous, usage.labels)).any()
    assert changed[usage.label_mask().to_numpy()].all()


def test_extra_cost_is_exactly_the_change_on_labelled_days() -> None:
    transient = tuple(kind for kind in KINDS if kind != "level_shift")
    anomalous = generate_organization_usage(START, TWO_YEARS, seed=SEED, kinds=transient, anomaly_rate=12)
    clean = generate_organization_usage(START, TWO_YEARS, seed=SEED, anomalies=False)
    difference = cents(anomalous.org_series()) - cents(clean.org_series())
    assert set(anomalous.labels["kind"]) == set(transient)
    for _, label in anomalous.labels.iterrows():
        assert window(difference, label).sum() == round(label["extra_cost"] * 100)


def test_level_shift_persists_and_its_extra_cost_covers_the_labelled_days() -> None:
    shifted = generate_organization_usage(START, TWO_YEARS, seed=SEED, kinds=("level_shift",), anomaly_rate=3)
    clean = generate_organization_usage(START, TWO_YEARS, seed=SEED, anomalies=False)
    difference = cents(shifted.org_series()) - cents(clean.org_series())
    labels = shifted.labels
    assert (labels["effect_end"] == date(2025, 12, 30)).all()
    first_per_series = labels.sort_values("start").drop_duplicates("series")
    for _, label in first_per_series.iterrows():
        assert window(difference, label).sum() == round(label["extra_cost"] * 100)
        after = shifted.org_series().loc[pd.Timestamp(label["end"]) + pd.Timedelta(days=1) :, label["series"]]
        before = clean.org_series().loc[after.index, label["series"]]
        assert after.sum() > 1.35 * before.sum()


def test_incidents_are_material_at_organisation_level(usage: SyntheticUsage) -> None:
    values = usage.org_series()
    for _, label in usage.labels.iterrows():
        ratio = intensity(values, label)
        assert (ratio <= 0.8) if label["direction"] == "drop" else (ratio >= 1.4), label.to_dict()


def test_label_mask_matches_labels(usage: SyntheticUsage) -> None:
    mask = usage.label_mask()
    days = (pd.to_datetime(usage.labels["end"]) - pd.to_datetime(usage.labels["start"])).dt.days + 1
    assert int(mask.to_numpy().sum()) == int(days.sum())
    for _, label in usage.labels.iterrows():
        assert window(mask, label).all()


def test_anomalies_false_has_no_labels(clean_usage: SyntheticUsage) -> None:
    assert clean_usage.labels.empty
    assert "extra_cost" in clean_usage.labels.columns
    assert not clean_usage.label_mask().to_numpy().any()


def test_clean_days_keep_the_start_free_of_incidents() -> None:
    labels = generate_organization_usage(START, TWO_YEARS, seed=SEED, clean_days=365).labels
    assert not labels.empty
    assert (labels["start"] >= date(2024, 12, 31)).all()


def test_kinds_and_rate_control_the_incidents() -> None:
    labels = generate_organization_usage(START, TWO_YEARS, seed=SEED, kinds=("burst",), anomaly_rate=5).labels
    assert set(labels["kind"]) == {"burst"}
    assert len(labels) == 10


def test_more_accounts_give_more_account_names() -> None:
    rows = generate_organization_usage(date(2024, 3, 1), 60, accounts=12, seed=1).rows
    assert rows["ACCOUNT_NAME"].nunique() == 12
    assert "PROD" in set(rows["ACCOUNT_NAME"])


# ---------------------------------------------------------------------------------------------------
# Benchmark series
# ---------------------------------------------------------------------------------------------------


def test_cost_series_frame_shape(series: SyntheticSeries) -> None:
    values = series.values
    assert values.shape == (TWO_YEARS, 200)
    assert isinstance(values.index, pd.DatetimeIndex)
    assert values.index.name == DATE
    assert values.index[0] == pd.Timestamp(START)
    assert (values.index.to_series().diff().dropna() == pd.Timedelta(days=1)).all()
    assert list(values.columns[:2]) == ["s0000", "s0001"]
    assert (values.dtypes == np.float64).all()
    assert (values >= 0).all().all()


def test_cost_series_scales_are_heterogeneous(series: SyntheticSeries) -> None:
    typical = series.values.median()
    assert typical.min() < 20
    assert typical.max() > 5_000


def test_cost_series_is_deterministic_per_seed(series: SyntheticSeries) -> None:
    again = generate_cost_series(200, TWO_YEARS, seed=SEED)
    other = generate_cost_series(200, TWO_YEARS, seed=SEED + 1)
    pd.testing.assert_frame_equal(again.values, series.values)
    pd.testing.assert_frame_equal(again.labels, series.labels)
    assert not other.values.equals(series.values)


def test_cost_series_labels_cover_every_kind_with_documented_magnitudes(series: SyntheticSeries) -> None:
    labels = series.labels
    assert set(labels["kind"]) == set(KINDS)
    ranges = {
        "runaway_spike": (3.0, 10.0),
        "burst": (1.5, 3.2),
        "outage": (0.0, 0.2),
        "level_shift": (1.4, 2.0),
        "weekend_job": (2.0, 3.5),
    }
    ratios = labels.apply(lambda label: intensity(series.values, label), axis=1)
    for kind, (low, high) in ranges.items():
        assert ratios[labels["kind"] == kind].between(low - 1e-3, high + 1e-3).all(), kind


def test_cost_series_match_the_clean_draw_outside_incidents(series: SyntheticSeries) -> None:
    clean = generate_cost_series(200, TWO_YEARS, seed=SEED, anomaly_rate=0)
    assert clean.labels.empty
    changed = (cents(series.values) != cents(clean.values)).to_numpy()
    assert not (changed & ~effect_mask(series.values, series.labels)).any()
    assert changed[series.label_mask().to_numpy()].all()


def test_cost_series_extra_cost_is_exact() -> None:
    transient = tuple(kind for kind in KINDS if kind != "level_shift")
    anomalous = generate_cost_series(50, TWO_YEARS, seed=SEED, kinds=transient)
    clean = generate_cost_series(50, TWO_YEARS, seed=SEED, anomaly_rate=0)
    difference = cents(anomalous.values) - cents(clean.values)
    for _, label in anomalous.labels.iterrows():
        assert window(difference, label).sum() == round(label["extra_cost"] * 100)


def test_cost_series_label_mask_matches_labels(series: SyntheticSeries) -> None:
    mask = series.label_mask()
    assert mask.shape == series.values.shape
    assert mask.index.equals(series.values.index)
    assert mask.dtypes.map(pd.api.types.is_bool_dtype).all()
    days = (series.labels["end"] - series.labels["start"]).dt.days + 1
    assert int(mask.to_numpy().sum()) == int(days.sum())
    for _, label in series.labels.iterrows():
        assert window(mask, label).all()


def test_cost_series_clean_days_and_rate() -> None:
    none = generate_cost_series(20, 200, seed=3, anomaly_rate=0)
    guarded = generate_cost_series(100, TWO_YEARS, seed=3, anomaly_rate=6, clean_days=400)
    assert none.labels.empty
    assert not none.label_mask().to_numpy().any()
    assert (guarded.labels["start"] >= pd.Timestamp(START) + pd.Timedelta(days=400)).all()
    assert len(guarded.labels) > 100


def test_cost_series_names_widen_for_many_series() -> None:
    values = generate_cost_series(10_001, 3, seed=0).values
    assert values.columns[0] == "s00000"
    assert values.columns[-1] == "s10000"


# ---------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "01/02/2024"}, "start must be an ISO date"),
        ({"start": 20240101}, "start must be a date"),
        ({"days": 0}, "days must be a positive integer"),
        ({"accounts": 0}, "accounts must be an integer between 1 and 50"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"kinds": ("spike",)}, r"unknown anomaly kind\(s\) \['spike'\]"),
        ({"kinds": "burst"}, "kinds must be a sequence"),
        ({"anomaly_rate": -1.0}, "anomaly_rate must be a finite number"),
        ({"clean_days": 800}, "clean_days must be an integer between 0 and days"),
        ({"level_shift_label_days": 0}, "level_shift_label_days must be between 1 and 7"),
        ({"organization_name": ""}, "organization_name must be a non-empty string"),
    ],
)
def test_organization_usage_rejects_bad_input(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"start": START, "days": TWO_YEARS} | kwargs
    with pytest.raises(ValueError, match=message):
        generate_organization_usage(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_series": 0}, "n_series must be a positive integer"),
        ({"days": -5}, "days must be a positive integer"),
        ({"anomaly_rate": float("nan")}, "anomaly_rate must be a finite number"),
        ({"kinds": ("burst", "meteor")}, r"unknown anomaly kind\(s\) \['meteor'\]"),
    ],
)
def test_cost_series_rejects_bad_input(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"n_series": 3, "days": 30} | kwargs
    with pytest.raises(ValueError, match=message):
        generate_cost_series(**arguments)  # type: ignore[arg-type]


def test_old_core_synthetic_module_still_imports_with_a_deprecation_warning() -> None:
    import importlib
    import sys

    sys.modules.pop("airflow_provider_snowstorm.core.synthetic", None)
    with pytest.warns(DeprecationWarning, match="airflow_provider_snowstorm.datasets"):
        module = importlib.import_module("airflow_provider_snowstorm.core.synthetic")

    assert module.generate_organization_usage is generate_organization_usage
    assert module.generate_cost_series is generate_cost_series
    assert module.SyntheticUsage is SyntheticUsage
    assert module.SyntheticSeries is SyntheticSeries
    assert module.KINDS == KINDS
    assert module.USAGE_ROW_COLUMNS == USAGE_ROW_COLUMNS


def test_core_does_not_import_datasets() -> None:
    import json
    import pkgutil
    import subprocess
    import sys

    from airflow_provider_snowstorm import core

    modules = [
        f"airflow_provider_snowstorm.core.{info.name}"
        for info in pkgutil.iter_modules(core.__path__)
        if info.name != "synthetic"  # the deprecated re-export of ``datasets``
    ]
    code = (
        "import json, sys\n"
        + "".join(f"import {module}\n" for module in modules)
        + "print(json.dumps([name for name in sys.modules if name.startswith('airflow_provider_snowstorm.datasets')]))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert json.loads(loaded.strip().splitlines()[-1]) == []
