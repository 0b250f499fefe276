"""One real offline W&B run, written by the hook as the training operator writes it, for the plugin's tests."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_provider_snowstorm.plugins.offline_runs import read_run

FLUSH_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class OfflineRunFixture:
    run_dir: Path
    run_id: str
    folder: Path


@pytest.fixture(scope="session")
def offline_run(tmp_path_factory: pytest.TempPathFactory) -> OfflineRunFixture:
    """Config, metrics, a decomposition chart and a registered model, like a training task's run."""
    import matplotlib.pyplot as plt

    from airflow_provider_snowstorm.hooks.wandb import WandbHook

    run_dir = tmp_path_factory.mktemp("wandb-runs")
    hook = WandbHook(mode="offline", run_dir=run_dir, model_store=run_dir / "store", project="snowstorm")
    model = run_dir / "model.skops"
    model.write_bytes(b"model bytes")
    figure, axis = plt.subplots()
    axis.plot([1, 2, 3])
    with hook.start_run(
        "train-compute",
        group="manual__1",
        job_type="train",
        config={"series": "compute", "model_name": "snowstorm-compute", "detector": {"period": 7}},
    ) as run:
        hook.log_metrics({"anomaly_threshold": 0.66, "training_days": 721})
        hook.log_image("decomposition", figure)
        hook.registry.register(run, model, "snowstorm-compute")
        run_id = run.id
    plt.close(figure)
    (folder,) = (run_dir / "wandb").glob(f"offline-run-*-{run_id}")
    deadline = time.monotonic() + FLUSH_TIMEOUT_S
    while not read_run(folder).finished:  # wandb's service writes the run file a moment after finish()
        assert time.monotonic() < deadline, f"wandb did not write {folder} within {FLUSH_TIMEOUT_S} s"
        time.sleep(0.1)
    return OfflineRunFixture(run_dir, run_id, folder)
