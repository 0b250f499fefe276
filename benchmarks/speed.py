"""Speed and memory: our detector on 10,000 series x 730 days against a loop of the seed's method (issue #2).

Both fit and score every series: ours with ``fit_detect`` (one decomposition, one forest, the long result frame),
the seed with ``seasonal_decompose`` + ``IsolationForest`` fitted and scored per series. The seed loop is timed on a
sample of series and scaled linearly to all of them (per-series work is independent). Each side is repeated and the
median is reported, measured in the same run because the machine is shared. Our peak memory is the maximum resident
set size (``getrusage``) of a fresh subprocess that generates the data and runs ``fit_detect`` once.

Run from the repository root: ``.venv/bin/python -m benchmarks.speed [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest
from airflow_provider_snowstorm.datasets import generate_cost_series
from benchmarks.seed_method import seed_fit_score

SEED = 7


def time_ours(n_series: int, days: int) -> tuple[float, int]:
    """Seconds of ``fit_detect`` on ``n_series`` x ``days`` (data generation excluded), and the result's rows."""
    values = generate_cost_series(n_series, days, seed=SEED).values
    started = time.perf_counter()
    result = DecomposeIsolationForest(random_state=0).fit_detect(values)
    return time.perf_counter() - started, len(result)


def time_seed(sample: int, days: int) -> float:
    """Seconds per series of the seed's fit-and-score loop, over ``sample`` series."""
    values = generate_cost_series(sample, days, seed=SEED).values.to_numpy()
    started = time.perf_counter()
    for column in range(values.shape[1]):
        seed_fit_score(values[:, column])
    return (time.perf_counter() - started) / sample


def peak_memory_of_ours(n_series: int, days: int) -> dict[str, float]:
    """Run ``fit_detect`` once in a fresh interpreter; its seconds and maximum resident set size in MiB."""
    code = (
        "import json, resource; from benchmarks.speed import time_ours; "
        f"seconds, rows = time_ours({n_series}, {days}); "
        "print(json.dumps({'seconds': seconds, 'rows': rows, "
        "'maxrss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=os.getcwd()
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="1,000 series, a 50-series seed sample, 1 repeat"
    )
    parser.add_argument("--series", type=int, default=None)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--sample", type=int, default=None, help="series in the timed seed loop")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    n_series = args.series or (1_000 if args.quick else 10_000)
    sample = args.sample or (50 if args.quick else 200)
    repeats = args.repeats or (1 if args.quick else 3)

    memory = peak_memory_of_ours(n_series, args.days)
    ours, seed_per_series = [], []
    for _ in range(repeats):  # interleaved, so that load from other users hits both sides alike
        seconds, rows = time_ours(n_series, args.days)
        ours.append(seconds)
        seed_per_series.append(time_seed(sample, args.days))
    ours_median = statistics.median(ours)
    seed_median = statistics.median(seed_per_series) * n_series
    ratio = seed_median / ours_median
    print(
        f"{n_series:,} series x {args.days} days, fit and score every day; {repeats} interleaved repeat(s), "
        f"medians; {os.cpu_count()} cores. Seed loop timed on {sample} series and scaled linearly to {n_series:,}.\n"
    )
    print("| Method | Seconds (median) | Runs (s) | Per series (ms) | Peak memory |")
    print("|---|---|---|---|---|")
    print(
        f"| Seed: seasonal_decompose + IsolationForest per series | {seed_median:,.1f} (scaled) | "
        + ", ".join(f"{value * n_series:,.0f}" for value in seed_per_series)
        + f" | {statistics.median(seed_per_series) * 1e3:.1f} | n/a |"
    )
    print(
        f"| Ours: DecomposeIsolationForest.fit_detect | {ours_median:,.2f} | "
        + ", ".join(f"{value:.2f}" for value in ours)
        + f" | {ours_median / n_series * 1e3:.3f} | {memory['maxrss_mib']:,.0f} MiB |"
    )
    print(
        f"\nSpeed-up: {ratio:,.0f}x (seed median / ours median). Our peak memory: maximum resident set size "
        f"(getrusage ru_maxrss) of a fresh Python process that generates the {n_series:,} series and runs "
        f"fit_detect once ({memory['seconds']:.2f} s there; {rows:,} result rows), interpreter and data included."
    )


if __name__ == "__main__":
    main()
