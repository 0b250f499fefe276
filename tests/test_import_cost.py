"""DAG files import the operators on every parse: the heavy libraries must load only when a task runs."""

from __future__ import annotations

import json
import subprocess
import sys

PARSE_TIME_MODULES = (
    "airflow_provider_snowstorm.operators.train",
    "airflow_provider_snowstorm.operators.score",
    "airflow_provider_snowstorm.operators.evaluate",
    "airflow_provider_snowstorm.operators.monitor",
    "airflow_provider_snowstorm.notifications.anomaly_report",
    "airflow_provider_snowstorm.hooks.wandb",
    "airflow_provider_snowstorm.links.wandb",
    "airflow_provider_snowstorm.example_pipeline",
    "airflow_provider_snowstorm.pipeline_tasks",
)
HEAVY = ("sklearn", "matplotlib", "skops", "wandb", "statsmodels")


def test_importing_the_airflow_layer_loads_no_heavy_library() -> None:
    code = (
        "import json, sys\n"
        + "".join(f"import {module}\n" for module in PARSE_TIME_MODULES)
        + f"print(json.dumps(sorted(name for name in {HEAVY!r} if name in sys.modules)))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert json.loads(loaded.strip().splitlines()[-1]) == []
