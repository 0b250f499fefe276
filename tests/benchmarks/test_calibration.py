"""The pure-noise calibration benchmark: its noise laws, its count of alarms and its report."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_provider_snowstorm.core.thresholds import MIN_THRESHOLD
from benchmarks.calibration import (
    LAWS,
    NOISE_MAD,
    REGIMES,
    Calibration,
    calibrate,
    main,
    noise_series,
    report,
)

DAILY, HOURLY, FIVE_MINUTE = REGIMES


@pytest.mark.parametrize("law", [law for law in LAWS if law != "poisson_20"])
def test_continuous_laws_share_one_median_absolute_deviation(law: str) -> None:
    frame = noise_series(HOURLY, law, 6, seed=1)
    expected = 1000.0 * (1.0 + 0.3 * np.sin(2.0 * np.pi * (np.arange(len(frame)) % 24) / 24))
    relative = frame.to_numpy() / expected[:, None]
    relative /= np.median(relative, axis=0)  # each series' level
    mad = np.median(np.abs(relative - 1.0))
    assert mad == pytest.approx(NOISE_MAD, rel=0.1)


def test_series_are_deterministic_per_seed_and_positive() -> None:
    first = noise_series(DAILY, "student_t3", 5, seed=2)
    assert first.equals(noise_series(DAILY, "student_t3", 5, seed=2))
    assert not first.equals(noise_series(DAILY, "student_t3", 5, seed=3))
    assert (first.to_numpy() > 0).all()
    assert len(first) == DAILY.days
    assert len(noise_series(FIVE_MINUTE, "gaussian", 1, 1)) == 288 * FIVE_MINUTE.days


def test_daily_gaussian_noise_keeps_the_budget() -> None:
    result = calibrate(DAILY, "gaussian", 20, seed=1)
    assert result.budget == 0.1
    assert result.median_threshold >= MIN_THRESHOLD
    assert result.alarms_per_series_month <= 2 * result.budget


def test_heavy_tailed_noise_alarms_more_than_gaussian_noise() -> None:
    # The count is of alarms, not rows: on the same seed, Student-t(3) noise crosses more often than Gaussian noise.
    gaussian = calibrate(DAILY, "gaussian", 20, seed=1)
    heavy = calibrate(DAILY, "student_t3", 20, seed=1)
    assert heavy.alarms_per_series_month > gaussian.alarms_per_series_month
    assert heavy.median_threshold > gaussian.median_threshold


def test_report_marks_what_exceeds_twice_the_budget() -> None:
    results = [
        Calibration("daily", "gaussian", 0.05, 0.1, 3.0),
        Calibration("hourly", "student_t5", 1.2, 0.1, 5.0),
    ]
    text = report(results)
    assert "| daily | gaussian | 0.050 | 0.5x | 3.00 |" in text
    assert "| hourly | student_t5 | 1.200 | 12.0x (over 2x) | 5.00 |" in text
    assert "1 of 2 regimes and laws; worst: hourly student_t5 at 12.0x." in text


def test_main_prints_every_regime_and_law(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--series", "3"])
    out = capsys.readouterr().out
    for regime in REGIMES:
        for law in LAWS:
            assert f"| {regime.name} | {law} |" in out
    assert "regimes and laws; worst:" in out
