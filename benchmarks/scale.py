"""Scale: nightly scoring of 1,000,000 series and training of 100,000 series on one process, chunked, against
today's one-model-per-series path (issue 15).

Scoring: every series has a year of daily history and one new day. The chunked path scores a chunk of series (its
size from ``core.chunking.series_per_chunk`` and ``SNOWSTORM_CHUNK_MEMORY_MB``) with one model file loaded per
chunk and one vectorised ``detect`` over only the ``required_history_days`` rows the score needs, and writes the
chunk's predictions with the bulk write (``BatchScoreOperator.write_predictions`` -> ``replace_rows`` with types: JSON
multi-row inserts) into the local Snowflake emulator, which this script starts and stops. Today's path, as
``BatchScoreOperator`` does per series: load that series' model file, ``detect`` its column, and write the rows
with ``executemany``; it is timed on a sample of series and scaled linearly (per-series work is independent).

Training: chunks of a year of history, one ``fit`` and one model file (skops) per chunk, against one fit and one
file per series (timed on a sample, scaled).

Data: one synthetic chunk (``generate_cost_series``) is generated once; each chunk scales its columns by random
factors, which changes the numbers but not the work, so generation does not dominate the run (it is excluded from
the timings, as in ``benchmarks.speed``). All scored chunks load the same model file, fitted on the first chunk a
week before the scored day (so scoring reads history from the frame, as a nightly run after a weekly training
does): training a million series is what the training half measures, at a tenth of the size.

Wall times, CPU times and peak memory (peak resident set size, ``VmHWM``) come from a fresh subprocess per path, run
one after the other in the same invocation; the machine is shared, so compare the ratios.

Run from the repository root: ``.venv/bin/python -m benchmarks.scale [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SEED = 7
HISTORY_DAYS = 365
TRAINED_DAYS_BEFORE = 7  # the model was trained a week before the scored day
_START = "2024-01-01"


def _quiet() -> None:
    """Hooks log every statement at INFO; a benchmark prints only its table."""
    logging.disable(logging.INFO)


def _base_frame(n_series: int, days: int) -> pd.DataFrame:
    from airflow_provider_snowstorm.datasets import generate_cost_series

    return generate_cost_series(n_series, days, seed=SEED, start=_START).values


def _chunk_frame(base: pd.DataFrame, chunk: int, size: int, names: list[str]) -> pd.DataFrame:
    """Chunk ``chunk``'s data: the base frame's first ``size`` columns scaled by per-series random factors."""
    factors = np.random.default_rng(chunk).lognormal(0.0, 1.0, size)
    return pd.DataFrame(base.to_numpy()[:, :size] * factors, index=base.index, columns=names[:size])


def prepare(workdir: str, chunk_size: int) -> dict[str, Any]:
    """Fit and save the chunk model (chunk_size series) and a one-series model, a week before the scored day."""
    from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest
    from airflow_provider_snowstorm.core.persistence import save_detector

    base = _base_frame(chunk_size, HISTORY_DAYS + 1)
    training = base.iloc[: -TRAINED_DAYS_BEFORE - 1]
    chunk_model = DecomposeIsolationForest().fit(training)
    save_detector(chunk_model, Path(workdir, "chunk.skops"))
    single = DecomposeIsolationForest().fit(training.iloc[:, :1])
    save_detector(single, Path(workdir, "series.skops"))
    return {"required_history_days": chunk_model.required_history_days, "names": list(base.columns)}


def _write(frame: pd.DataFrame, model_name: str, start: pd.Timestamp, scored_at: Any, bulk: bool) -> float:
    """Seconds to replace the scored day's rows of these series in the emulator's predictions table."""
    from airflow_provider_snowstorm.core.schema import (
        MODEL_NAME,
        MODEL_VERSION,
        SCORED_AT,
        SERIES,
        TRAINING_RUN,
    )
    from airflow_provider_snowstorm.operators.score import BatchScoreOperator

    frame = frame.assign(
        **{MODEL_NAME: model_name, MODEL_VERSION: "v0", TRAINING_RUN: None, SCORED_AT: scored_at}
    )
    frame[SERIES] = frame[SERIES].astype(str)
    operator = BatchScoreOperator(
        task_id="scale", series=["s"], conn_id="snowflake_default", results_table="SCALE_PREDICTIONS"
    )
    hook = operator.get_db_hook()
    if not bulk:  # today's write: executemany, one placeholder per series in the delete
        hook.conn_type = "snowflake-executemany"
    started = time.perf_counter()
    operator.write_predictions(hook, frame, start, start)
    return time.perf_counter() - started


def run_chunked_scoring(workdir: str, n_series: int, chunk_size: int, write: bool) -> dict[str, Any]:
    """Score ``n_series`` in chunks; compute and write seconds, rows written."""
    from airflow_provider_snowstorm.core.persistence import load_detector

    _quiet()
    info = json.loads(Path(workdir, "prepared.json").read_text())
    needed = info["required_history_days"]
    base = _base_frame(chunk_size, HISTORY_DAYS + 1).iloc[-(needed + 1) :]  # what the chunked path reads
    scored_day = base.index[-1]
    scored_at = pd.Timestamp.now("UTC").tz_localize(None).floor("s")
    compute = writing = 0.0
    rows = 0
    for chunk, first in enumerate(range(0, n_series, chunk_size)):
        size = min(chunk_size, n_series - first)
        frame = _chunk_frame(base, chunk, size, info["names"])
        started = time.perf_counter()
        detector = load_detector(Path(workdir, "chunk.skops"))
        predictions = detector.detect(frame, start=scored_day)
        compute += time.perf_counter() - started
        # Chunks share the model's series names: name them per chunk in the table.
        predictions["series"] = predictions["series"].cat.rename_categories(
            [f"c{chunk}_{name}" for name in predictions["series"].cat.categories]
        )
        if write:
            writing += _write(predictions, f"scale-chunk-{chunk}", scored_day, scored_at, bulk=True)
        rows += len(predictions)
        if chunk % 10 == 9:
            print(f"scored {first + size:,} series", file=sys.stderr, flush=True)
    return {"compute_seconds": compute, "write_seconds": writing, "rows": rows, "chunks": chunk + 1}


def run_per_series_scoring(workdir: str, sample: int, write: bool) -> dict[str, Any]:
    """Today's path on ``sample`` series: one model load and one ``detect`` per series, one executemany write."""
    from airflow_provider_snowstorm.core.persistence import load_detector

    _quiet()
    info = json.loads(Path(workdir, "prepared.json").read_text())
    needed = info["required_history_days"]
    base = _base_frame(sample, HISTORY_DAYS + 1).iloc[-(needed + 1) :]
    scored_day = base.index[-1]
    name = info["names"][0]
    started = time.perf_counter()
    frames = []
    for column in range(sample):
        detector = load_detector(Path(workdir, "series.skops"))
        series = base.iloc[:, [column]].set_axis([name], axis=1)
        frames.append(detector.detect(series, start=scored_day).assign(series=f"p{column}"))
    compute = time.perf_counter() - started
    scored_at = pd.Timestamp.now("UTC").tz_localize(None).floor("s")
    writing = 0.0
    if write:
        writing = _write(
            pd.concat(frames, ignore_index=True), "scale-series", scored_day, scored_at, bulk=False
        )
    return {"compute_seconds": compute, "write_seconds": writing, "rows": sample}


def run_chunked_training(workdir: str, n_series: int, chunk_size: int) -> dict[str, Any]:
    """Fit and save one model per chunk of ``n_series`` series with a year of history."""
    from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest
    from airflow_provider_snowstorm.core.persistence import save_detector

    base = _base_frame(chunk_size, HISTORY_DAYS)
    names = list(base.columns)
    seconds = 0.0
    for chunk, first in enumerate(range(0, n_series, chunk_size)):
        frame = _chunk_frame(base, chunk, min(chunk_size, n_series - first), names)
        started = time.perf_counter()
        detector = DecomposeIsolationForest().fit(frame)
        save_detector(detector, Path(workdir, "trained-chunk.skops"))
        seconds += time.perf_counter() - started
    return {"compute_seconds": seconds, "chunks": chunk + 1}


def run_per_series_training(workdir: str, sample: int) -> dict[str, Any]:
    """Today's path on ``sample`` series: one fit and one model file per series."""
    from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest
    from airflow_provider_snowstorm.core.persistence import save_detector

    base = _base_frame(sample, HISTORY_DAYS)
    started = time.perf_counter()
    for column in range(sample):
        detector = DecomposeIsolationForest().fit(base.iloc[:, [column]])
        save_detector(detector, Path(workdir, "trained-series.skops"))
    return {"compute_seconds": time.perf_counter() - started}


def peak_rss_mib() -> float:
    """This process's peak resident set size (``VmHWM``) in MiB.

    Not ``ru_maxrss``: on Linux that keeps the resident size the process had before ``exec``, i.e. the parent's at
    ``fork``, so a small child of a large parent would report the parent's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmHWM line: peak memory needs Linux")


def _in_fresh_process(function: str, *arguments: Any, env: dict[str, str]) -> dict[str, Any]:
    """Run ``benchmarks.scale.<function>(*arguments)`` in a new interpreter; its result, wall and CPU seconds
    (user + system: what the process needed of one core, whatever else the shared machine ran) and peak RSS
    (``peak_rss_mib``)."""
    code = (
        "import json, resource, time; from benchmarks import scale; started = time.perf_counter(); "
        f"result = scale.{function}(*{arguments!r}); "
        "result['wall_seconds'] = time.perf_counter() - started; "
        "usage = resource.getrusage(resource.RUSAGE_SELF); result['maxrss_mib'] = scale.peak_rss_mib(); "
        "result['cpu_seconds'] = usage.ru_utime + usage.ru_stime; "
        "print(json.dumps(result))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=os.getcwd(), env=env, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{function} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> None:
    from airflow_provider_snowstorm.core.chunking import chunk_memory_mb, series_per_chunk
    from airflow_provider_snowstorm.local.snowflake import airflow_environment, start_emulator, stop_emulator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 scored and 5,000 trained series")
    parser.add_argument("--series", type=int, default=None, help="series scored (default 1,000,000)")
    parser.add_argument("--train-series", type=int, default=None, help="series trained (default 100,000)")
    parser.add_argument("--sample", type=int, default=None, help="series in the timed per-series loops")
    parser.add_argument("--no-write", action="store_true", help="score without writing predictions")
    args = parser.parse_args(argv)
    n_score = args.series or (20_000 if args.quick else 1_000_000)
    n_train = args.train_series or (5_000 if args.quick else 100_000)
    sample = args.sample or (50 if args.quick else 300)
    write = not args.no_write
    budget = chunk_memory_mb()

    with tempfile.TemporaryDirectory(prefix="snowstorm-scale-") as workdir:
        env = dict(os.environ)
        if write:
            handle = start_emulator(Path(workdir, "emulator"), timeout=120.0)
            env.update(airflow_environment(handle))
        try:
            probe = prepare(workdir, 1_000)  # required_history_days does not depend on the data
            score_chunk = min(series_per_chunk(probe["required_history_days"] + 1, budget), n_score)
            train_chunk = min(series_per_chunk(HISTORY_DAYS, budget), n_train)
            started = time.perf_counter()
            prepared = prepare(workdir, score_chunk)
            Path(workdir, "prepared.json").write_text(json.dumps(prepared))
            print(f"(set-up: chunk model fitted in {time.perf_counter() - started:.0f} s)", file=sys.stderr)
            chunked = _in_fresh_process("run_chunked_scoring", workdir, n_score, score_chunk, write, env=env)
            single = _in_fresh_process("run_per_series_scoring", workdir, sample, write, env=env)
            trained = _in_fresh_process("run_chunked_training", workdir, n_train, train_chunk, env=env)
            single_train = _in_fresh_process("run_per_series_training", workdir, sample, env=env)
        finally:
            if write:
                stop_emulator(Path(workdir, "emulator"))
    _report(
        args,
        n_score,
        n_train,
        sample,
        budget,
        score_chunk,
        train_chunk,
        prepared,
        chunked,
        single,
        trained,
        single_train,
        write,
    )


def _report(
    args: argparse.Namespace,
    n_score: int,
    n_train: int,
    sample: int,
    budget: float,
    score_chunk: int,
    train_chunk: int,
    prepared: dict[str, Any],
    chunked: dict[str, Any],
    single: dict[str, Any],
    trained: dict[str, Any],
    single_train: dict[str, Any],
    write: bool,
) -> None:
    per_series_compute = single["compute_seconds"] / sample * n_score
    per_series_write = single["write_seconds"] / sample * n_score
    per_series_train = single_train["compute_seconds"] / sample * n_train
    chunked_total = chunked["compute_seconds"] + chunked["write_seconds"]
    today_total = per_series_compute + per_series_write
    print(
        f"Scoring {n_score:,} series (365 days of history, 1 new day; {prepared['required_history_days'] + 1} rows "
        f"read per series) and training {n_train:,} series (365 days) on one process; {os.cpu_count()} cores "
        f"(shared). Chunk memory budget {budget:,.0f} MiB: {score_chunk:,} series per scoring chunk "
        f"({chunked['chunks']} chunks), {train_chunk:,} per training chunk ({trained['chunks']} chunks). Today's "
        f"per-series path timed on {sample} series and scaled linearly.\n"
    )
    print("| Work | Path | Compute (s) | Write (s) | Total (s) | Rows written / s | Peak memory (process) |")
    print("|---|---|---|---|---|---|---|")
    rate = chunked["rows"] / chunked["write_seconds"] if chunked["write_seconds"] else float("nan")
    single_rate = sample / single["write_seconds"] if single["write_seconds"] else float("nan")
    print(
        f"| Score {n_score:,} | chunked: one detect + one bulk write per chunk | {chunked['compute_seconds']:,.0f} | "
        f"{chunked['write_seconds']:,.0f} | {chunked_total:,.0f} (process: wall {chunked['wall_seconds']:,.0f}, "
        f"CPU {chunked['cpu_seconds']:,.0f}) | "
        f"{rate:,.0f} | {chunked['maxrss_mib']:,.0f} MiB |"
    )
    print(
        f"| Score {n_score:,} | today: one model + one detect per series, executemany (scaled) | "
        f"{per_series_compute:,.0f} | {per_series_write:,.0f} | {today_total:,.0f} | {single_rate:,.0f} | "
        f"{single['maxrss_mib']:,.0f} MiB ({sample} series) |"
    )
    print(
        f"| Train {n_train:,} | chunked: one fit + one model file per chunk | {trained['compute_seconds']:,.0f} | "
        f"| {trained['compute_seconds']:,.0f} (process: wall {trained['wall_seconds']:,.0f}, "
        f"CPU {trained['cpu_seconds']:,.0f}) | | "
        f"{trained['maxrss_mib']:,.0f} MiB |"
    )
    print(
        f"| Train {n_train:,} | today: one fit + one model file per series (scaled) | {per_series_train:,.0f} | "
        f"| {per_series_train:,.0f} | | {single_train['maxrss_mib']:,.0f} MiB ({sample} series) |"
    )
    print(
        f"\nRatios (today / chunked): scoring compute {per_series_compute / chunked['compute_seconds']:,.0f}x"
        + (
            f", writing {per_series_write / chunked['write_seconds']:,.0f}x (rows per second), scoring total "
            f"{today_total / chunked_total:,.0f}x"
            if write
            else ""
        )
        + f"; training {per_series_train / trained['compute_seconds']:,.0f}x."
    )

    def verdict(seconds: float) -> str:
        return "met" if seconds < 600 and chunked["maxrss_mib"] < 8 * 1024 else "missed"

    print(
        f"Target (1,000,000 series scored in under 10 minutes within 8 GiB, one process) for {n_score:,} series: "
        f"{verdict(chunked['wall_seconds'])} on wall time ({chunked['wall_seconds']:,.0f} s), "
        f"{verdict(chunked['cpu_seconds'])} on the process's CPU time ({chunked['cpu_seconds']:,.0f} s; the "
        f"emulator's own CPU is not in it), {chunked['maxrss_mib']:,.0f} MiB peak. Data generation is in both. "
        "Peak memory: peak resident set size (VmHWM) of the fresh process (interpreter, data and results included)."
    )


if __name__ == "__main__":
    main()
