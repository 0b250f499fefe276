from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

from benchmarks import quality
from benchmarks.families import FAMILIES
from benchmarks.metrics import EventCounts


def test_ours_scores_hourly_families_on_their_hourly_index() -> None:
    data = FAMILIES["hourly_warehouse"](1, 2)
    scored = quality.run_ours(data)
    assert scored.error is None
    assert scored.scores.shape == (len(data.values) - data.train_rows, 2)
    assert np.isfinite(scored.scores).all()


def test_the_ablation_names_only_candidates() -> None:
    assert set(quality.ABLATION) <= set(quality.OURS_CANDIDATES)
    assert quality.ABLATION[0] == next(iter(quality.OURS_CANDIDATES))


def _evaluation(found: int, missed: int, false_alarms: int) -> quality.Evaluation:
    return quality.Evaluation(counts=EventCounts(found, missed, false_alarms, 1, 30))


def test_selection_uses_only_the_other_families() -> None:
    per_setting = {
        "a": {"x": _evaluation(9, 1, 0), "y": _evaluation(0, 10, 0)},
        "b": {"x": _evaluation(0, 10, 0), "y": _evaluation(9, 1, 0)},
    }
    assert quality.select(per_setting, ["x"]) == "a"
    assert quality.select(per_setting, ["y"]) == "b"
    lofo = quality.leave_one_family_out({"d": per_setting}, ["x", "y"])
    # Held out x: chosen on y, so b, which does badly on x.
    assert lofo["d"]["x"].counts.f1 == 0.0
    assert lofo["d"]["y"].counts.f1 == 0.0


def test_failed_candidates_are_not_selected() -> None:
    failed = _evaluation(9, 1, 0)
    failed.error = "TypeError: unexpected keyword"
    per_setting = {"bad": {"x": failed}, "good": {"x": _evaluation(1, 9, 5)}}
    assert quality.select(per_setting, ["x"]) == "good"


def test_ablation_only_settings_are_in_the_ablation_table() -> None:
    assert set(quality.ABLATION_ONLY) <= set(quality.ABLATION)
    assert quality.ABLATION[0] not in quality.ABLATION_ONLY


def test_uncalibrated_or_episode_free_candidates_are_ablation_only() -> None:
    # A fixed cut ignores the false-alarm budget and alarm_gap=0 alarms on every dip of one incident: never defaults.
    for option, params in quality.OURS_CANDIDATES.items():
        if params.get("threshold_cutoff") is not None or params.get("alarm_gap") == 0:
            assert option in quality.ABLATION_ONLY, option


def test_lofo_never_selects_an_ablation_only_setting() -> None:
    fixed_cut, defaults = quality.ABLATION_ONLY[0], quality.ABLATION[0]
    per_setting = {
        defaults: {"x": _evaluation(5, 5, 5), "y": _evaluation(5, 5, 5)},
        fixed_cut: {"x": _evaluation(10, 0, 0), "y": _evaluation(10, 0, 0)},
    }
    lofo = quality.leave_one_family_out({quality.OURS: per_setting}, ["x", "y"])
    assert lofo[quality.OURS]["x"] is per_setting[defaults]["x"]
    assert lofo[quality.OURS]["y"] is per_setting[defaults]["y"]
    # A peer's options are all cutoffs of its score: every one stays selectable.
    peer = quality.leave_one_family_out({quality.STL_PEER: per_setting}, ["x", "y"])
    assert peer[quality.STL_PEER]["x"] is per_setting[fixed_cut]["x"]


def test_peers_score_hourly_data_with_period_24() -> None:
    data = FAMILIES["hourly_warehouse"](1, 2)
    scored = quality.run_same_position(data)
    assert scored.scores.shape == (len(data.values) - data.train_rows, 2)
    assert quality._step(data) == 168


@pytest.mark.slow
def test_quick_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    quality.main(["--quick"])  # about 20 s on 2 idle cores
    output = capsys.readouterr().out
    assert "## As shipped" in output
    assert "| **pooled, daily families** | defaults | " in output
    assert "## Pooled over held-out families" in output
    assert "daily families alone, pooled" in output
    assert "## Worst family beside pooled" in output
    assert "With one family" not in output
    for name in FAMILIES:
        assert f"### {name}" in output
    ablation = output.split("## Ablation")[1].split("\n## ")[0]
    header = next(line for line in ablation.splitlines() if line.startswith("| "))
    # One label column: the variant's name says what it changes.
    assert header.startswith("| Variant | Event precision |")
    for option in quality.ABLATION:
        assert f"| {quality.markdown_cell(option)} | " in ablation
    # Settings such as "plain |z|" keep the table's columns: every row has the header's number of cells.
    table = [line for line in ablation.splitlines() if line.startswith("|")]
    assert {len(re.split(r"(?<!\\)\|", line)) for line in table} == {len(re.split(r"(?<!\\)\|", header))}
    spans = output.split("## Short training spans")[1].split("\n## ")[0]
    for name in FAMILIES:
        for span in ("40% (the protocol above)", *quality.SHORT_SPANS):
            assert f"| {name} | {span} | " in spans
    fits = output.split("## One model per series")[1].split("\n## ")[0]
    for name in [*FAMILIES, "**pooled**"]:
        for models in ("one model per family (the protocol above)", "one model per series"):
            assert f"| {name} | {models} | " in fits


def test_one_family_alone_says_its_settings_are_chosen_on_itself(capsys: pytest.CaptureFixture[str]) -> None:
    quality.main(["--quick", "--families", "smooth_storage", "--workers", "1"])
    assert "With one family there are no others" in capsys.readouterr().out


def test_short_spans_train_on_fifteen_percent_or_the_minimum_history() -> None:
    data = FAMILIES["lognormal_weekly"](1, 2)
    assert quality.short_span(data, quality.SHORT_SPANS[0]).train_rows == round(0.15 * len(data.values))
    minimum = quality.short_span(data, quality.SHORT_SPANS[1])
    assert minimum.train_rows == 21
    scored = quality.run_ours(minimum)
    assert scored.error is None
    assert scored.scores.shape == (len(data.values) - 21, 2)


def test_one_model_per_series_scores_as_the_family_model_and_thresholds_as_each_series_alone() -> None:
    data = FAMILIES["heavy_tail"](1, 3)
    apart = quality.run_ours_per_series(data)
    assert apart.error is None
    # A series' scores never depend on the other series of its model.
    np.testing.assert_allclose(apart.scores, quality.run_ours(data).scores)
    alone = quality.run_ours(replace(data, values=data.values.iloc[:, [1]]))
    assert apart.thresholds[1] == alone.thresholds[0]
    np.testing.assert_array_equal(apart.flags[:, 1], alone.flags[:, 0])
