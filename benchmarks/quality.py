"""Detection quality on labelled synthetic spend: ours, the seed's method and common peers side by side (issue #6).

Protocol: ``generate_cost_series`` (every anomaly kind, incidents also in the training span) for several seeds;
each detector fits on the first ``TRAIN_DAYS`` days and then scores each following week seeing only data up to
that week. Tuning seeds and held-out seeds are disjoint: peers' cutoffs and our detector's defaults were chosen on
the tuning seeds only; the table reports the held-out seeds.

Run from the repository root: ``.venv/bin/python -m benchmarks.quality [--quick] [--tune] [--no-prophet]``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest
from airflow_provider_snowstorm.core.synthetic import KINDS, SyntheticSeries, generate_cost_series
from benchmarks.metrics import EventCounts, average_precision, count_events
from benchmarks.peers import prophet_available, prophet_interval_scores, same_weekday_scores, stl_scores
from benchmarks.seed_method import seed_causal

DAYS = 548  # 18 months
TRAIN_DAYS = 365  # fit on a year, then score 26 weeks one week at a time
CUTOFF_GRID = (2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 15.0, 20.0, 30.0)
WORKERS = 2


@dataclass(frozen=True)
class Config:
    tuning_seeds: tuple[int, ...]
    heldout_seeds: tuple[int, ...]
    n_series: int


FULL = Config(tuning_seeds=(101, 102), heldout_seeds=(1, 2, 3, 4), n_series=75)
QUICK = Config(tuning_seeds=(101,), heldout_seeds=(1,), n_series=24)


@dataclass
class Scored:
    """One detector's output on one seed: scores and flags for the scored days (days x series), and its time."""

    scores: np.ndarray
    flags: np.ndarray | None  # None: flags are ``scores > cutoff`` with a cutoff tuned on the tuning seeds
    seconds: float


@dataclass
class Result:
    counts: EventCounts = field(default_factory=lambda: EventCounts(0, 0, 0, 0, 0))
    scores: list[np.ndarray] = field(default_factory=list)
    labelled: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0
    per_kind: dict[str, list[int]] = field(default_factory=dict)


def dataset(seed: int, n_series: int) -> SyntheticSeries:
    return generate_cost_series(n_series, DAYS, seed=seed)


def scored_labels(data: SyntheticSeries) -> tuple[pd.DataFrame, np.ndarray]:
    """Labels of incidents that touch the scored days, and the scored days' label mask."""
    first_scored = data.values.index[TRAIN_DAYS]
    labels = data.labels[pd.to_datetime(data.labels["end"]) >= first_scored]
    return labels, data.label_mask().to_numpy()[TRAIN_DAYS:]


# -- detectors -------------------------------------------------------------------------------------------------


def run_ours(data: SyntheticSeries, **params: Any) -> Scored:
    started = time.perf_counter()
    detector = DecomposeIsolationForest(random_state=0, **params).fit(data.values.iloc[:TRAIN_DAYS])
    # Scores are causal: scoring all new weeks at once equals scoring them week by week (tested in tests/core).
    result = detector.detect(data.values.iloc[TRAIN_DAYS:])
    seconds = time.perf_counter() - started
    shape = (len(data.values) - TRAIN_DAYS, data.values.shape[1])
    return Scored(
        scores=result["anomaly_score"].to_numpy().reshape(shape),
        flags=result["is_anomaly"].to_numpy().reshape(shape),
        seconds=seconds,
    )


def _per_series(function: Callable[..., np.ndarray], values: np.ndarray, *args: Any) -> list[np.ndarray]:
    return [function(values[:, column], *args) for column in range(values.shape[1])]


def run_seed(data: SyntheticSeries) -> Scored:
    values = data.values.to_numpy()
    started = time.perf_counter()
    pairs = _per_series(seed_causal, values, TRAIN_DAYS)
    seconds = time.perf_counter() - started
    return Scored(
        scores=np.column_stack([scores for scores, _ in pairs]),
        flags=np.column_stack([flags for _, flags in pairs]),
        seconds=seconds,
    )


def run_stl(data: SyntheticSeries) -> Scored:
    values = data.values.to_numpy()
    started = time.perf_counter()
    scores = np.column_stack(_per_series(stl_scores, values, TRAIN_DAYS))
    return Scored(scores=scores, flags=None, seconds=time.perf_counter() - started)


def run_same_weekday(data: SyntheticSeries) -> Scored:
    started = time.perf_counter()
    scores = same_weekday_scores(data.values.to_numpy(), TRAIN_DAYS)
    return Scored(scores=scores, flags=None, seconds=time.perf_counter() - started)


def _prophet_one(args: tuple[np.ndarray, pd.DatetimeIndex]) -> tuple[np.ndarray, float]:
    values, index = args
    np.random.seed(0)  # Prophet draws its interval samples from numpy's global generator
    started = time.perf_counter()
    scores = prophet_interval_scores(values, index, TRAIN_DAYS)
    return scores, time.perf_counter() - started


def run_prophet(data: SyntheticSeries) -> Scored:
    values = data.values.to_numpy()
    tasks = [(values[:, column], data.values.index) for column in range(values.shape[1])]
    with ProcessPoolExecutor(max_workers=WORKERS) as pool:
        outputs = list(pool.map(_prophet_one, tasks))
    # CPU seconds summed over the workers, so that the per-series cost is comparable with the serial detectors.
    scores = np.column_stack([scores for scores, _ in outputs])
    return Scored(scores=scores, flags=scores > 1.0, seconds=sum(seconds for _, seconds in outputs))


# -- evaluation ------------------------------------------------------------------------------------------------


def _index_flags(data: SyntheticSeries, flags: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(flags, index=data.values.index[TRAIN_DAYS:], columns=data.values.columns)


def _accumulate(result: Result, data: SyntheticSeries, scored: Scored, flags: np.ndarray) -> None:
    labels, mask = scored_labels(data)
    frame = _index_flags(data, flags)
    result.counts = result.counts + count_events(frame, labels)
    result.scores.append(scored.scores.reshape(-1))
    result.labelled.append(mask.reshape(-1))
    result.seconds += scored.seconds
    for kind in KINDS:
        subset = labels[labels["kind"] == kind]
        counts = count_events(frame, subset)
        found, total = result.per_kind.get(kind, [0, 0])
        result.per_kind[kind] = [found + counts.found, total + counts.found + counts.missed]


def tune_cutoff(runs: Sequence[tuple[SyntheticSeries, Scored]]) -> float:
    """The cutoff from ``CUTOFF_GRID`` with the best event F1 over the tuning runs."""
    best, best_f1 = CUTOFF_GRID[0], -1.0
    for cutoff in CUTOFF_GRID:
        total = EventCounts(0, 0, 0, 0, 0)
        for data, scored in runs:
            labels, _ = scored_labels(data)
            total = total + count_events(_index_flags(data, scored.scores > cutoff), labels)
        if total.f1 > best_f1:
            best, best_f1 = cutoff, total.f1
    return best


def summarise(name: str, result: Result, n_series: int, seed_f1: float | None) -> dict[str, Any]:
    counts = result.counts
    ap = average_precision(np.concatenate(result.scores), np.concatenate(result.labelled))
    return {
        "Detector": name,
        "Event precision": f"{counts.precision:.3f}",
        "Event recall": f"{counts.recall:.3f}",
        "Event F1": f"{counts.f1:.3f}",
        "F1 vs seed": "" if seed_f1 is None else (f"{counts.f1 / seed_f1:.1f}x" if seed_f1 else "inf"),
        "Average precision": f"{ap:.3f}",
        "False alarms / series / month": f"{counts.false_alarms_per_series_month:.3f}",
        "Seconds / series": f"{result.seconds / n_series:.4f}",
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(row[key]) for key in header) + " |" for row in rows]
    return "\n".join(lines)


# Candidate settings of our detector, compared on the tuning seeds only by ``--tune``.
OURS_CANDIDATES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "threshold_cutoff=3 (seed's cutoff)": {"threshold_cutoff": 3.0},
    "threshold_cutoff=4": {"threshold_cutoff": 4.0},
    "additive seasonality": {"seasonality": "additive"},
    "no lagged baseline": {"baseline_lag": 0},
    "no run suppression (rebase_after=0)": {"rebase_after": 0},
    "no day-of-month adjustment": {"monthly_periods": 0},
    "none of the three (v0 decomposition)": {
        "baseline_lag": 0,
        "rebase_after": 0,
        "monthly_periods": 0,
        "seasonality": "additive",
        "threshold_cutoff": 3.0,
    },
}


def tune_ours(config: Config) -> None:
    datasets = [dataset(seed, config.n_series) for seed in config.tuning_seeds]
    rows = []
    for name, params in OURS_CANDIDATES.items():
        result = Result()
        for data in datasets:
            scored = run_ours(data, **params)
            _accumulate(result, data, scored, scored.flags)
        rows.append(summarise(f"ours {name}", result, config.n_series * len(datasets), None))
        rows[-1]["Per-kind recall"] = " ".join(
            f"{kind}={found / max(total, 1):.2f}" for kind, (found, total) in result.per_kind.items()
        )
    print(markdown(rows))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: one tuning and one held-out seed")
    parser.add_argument(
        "--tune", action="store_true", help="compare our detector's candidate settings on tuning seeds"
    )
    parser.add_argument("--no-prophet", action="store_true", help="leave Prophet out")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    if args.tune:
        tune_ours(config)
        return
    started = time.perf_counter()
    with_prophet = not args.no_prophet and prophet_available()
    tunable: dict[str, Callable[[SyntheticSeries], Scored]] = {
        "Robust STL + median/MAD z-score": run_stl,
        "Same-weekday z-score (8 weeks, dbt-style)": run_same_weekday,
    }
    cutoffs = {
        name: tune_cutoff(
            [(data, run(data)) for data in (dataset(s, config.n_series) for s in config.tuning_seeds)]
        )
        for name, run in tunable.items()
    }
    detectors: dict[str, Callable[[SyntheticSeries], Scored]] = {
        "Seed method (seasonal_decompose + IsolationForest, as published)": run_seed,
        **tunable,
    }
    if with_prophet:
        detectors["Prophet 99% interval (refit every 4 weeks)"] = run_prophet
    detectors["Ours: DecomposeIsolationForest (defaults)"] = run_ours
    results = {name: Result() for name in detectors}
    for seed in config.heldout_seeds:
        data = dataset(seed, config.n_series)
        for name, run in detectors.items():
            scored = run(data)
            flags = scored.flags if scored.flags is not None else scored.scores > cutoffs[name]
            _accumulate(results[name], data, scored, flags)
    n_series = config.n_series * len(config.heldout_seeds)
    seed_name = next(iter(detectors))
    seed_f1 = results[seed_name].counts.f1
    rows = [
        summarise(name, result, n_series, None if name == seed_name else seed_f1)
        for name, result in results.items()
    ]
    incidents = results[seed_name].counts.found + results[seed_name].counts.missed
    print(
        f"Held-out seeds {list(config.heldout_seeds)} x {config.n_series} series x {DAYS} days "
        f"(train {TRAIN_DAYS} days, then {DAYS - TRAIN_DAYS} days scored week by week): {n_series} series, "
        f"{incidents} incidents in the scored span. Tuning seeds {list(config.tuning_seeds)}.\n"
    )
    print(markdown(rows))
    print("\nRecall per anomaly kind (held-out seeds):\n")
    print(
        markdown(
            [
                {
                    "Detector": name,
                    **{kind: f"{f / max(t, 1):.2f} ({f}/{t})" for kind, (f, t) in r.per_kind.items()},
                }
                for name, r in results.items()
            ]
        )
    )
    print(
        "\nCutoffs tuned on the tuning seeds (best event F1 over "
        f"{list(CUTOFF_GRID)}): " + ", ".join(f"{name}: |z| > {value}" for name, value in cutoffs.items())
    )
    if not with_prophet:
        print(
            "Prophet: not run ("
            + ("--no-prophet" if args.no_prophet else "not installed in this venv")
            + ")."
        )
    print(f"Total benchmark time: {time.perf_counter() - started:.0f} s on {os.cpu_count()} cores.")


if __name__ == "__main__":
    main()
