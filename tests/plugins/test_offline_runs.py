"""Reading an offline W&B run without W&B: what the hook wrote is what the run page gets."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_snowstorm.plugins.offline_runs import find_run, list_runs, read_run, run_id_of
from tests.plugins.conftest import OfflineRunFixture


def test_config_metrics_charts_and_model_come_back(offline_run: OfflineRunFixture) -> None:
    run = read_run(offline_run.folder)

    assert (run.run_id, run.name, run.project, run.group, run.job_type) == (
        offline_run.run_id,
        "train-compute",
        "snowstorm",
        "manual__1",
        "train",
    )
    assert run.config == {"series": "compute", "model_name": "snowstorm-compute", "detector": {"period": 7}}
    assert run.metrics == {"anomaly_threshold": 0.66, "training_days": 721}  # no _step, _runtime, media
    assert [path.name.split("_")[0] for path in run.images] == ["decomposition"]
    assert [(artifact["name"], artifact["type"]) for artifact in run.artifacts] == [
        ("snowstorm-compute", "model")
    ]
    assert "latest" in run.artifacts[0]["aliases"]
    assert run.finished


def test_runs_are_found_by_id_only(offline_run: OfflineRunFixture) -> None:
    assert find_run(offline_run.run_dir, offline_run.run_id) == offline_run.folder
    assert run_id_of(offline_run.folder) == offline_run.run_id
    assert find_run(offline_run.run_dir, "nosuchrun") is None
    assert find_run(offline_run.run_dir, "../../etc") is None  # not a run id: never a path


def test_runs_are_listed_newest_first(tmp_path: Path) -> None:
    names = ("offline-run-20260101_000000-aaa", "offline-run-20260301_000000-c-1", "run-20260401_000000-ddd")
    for name in names:
        (tmp_path / "wandb" / name).mkdir(parents=True)

    # An online attempt's folder (run-...) is not an offline run; an id may hold a dash.
    assert [run_id_of(folder) for folder in list_runs(tmp_path)] == ["c-1", "aaa"]
    assert find_run(tmp_path, "c-1") == tmp_path / "wandb" / names[1]
    assert list_runs(tmp_path / "missing") == []
