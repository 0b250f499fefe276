"""Where Snowstorm keeps local state when a connection does not say: one place per machine, not per working directory.

A model trained by one task must be found by scoring in another, which Airflow may run from any working directory
(and, on Celery or Kubernetes, on another machine: there, set the W&B connection's ``model_store`` to shared
storage such as ``s3://bucket/snowstorm/model-store``).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_model_store", "default_run_dir", "snowstorm_home"]

SNOWSTORM_HOME_VARIABLE = "SNOWSTORM_HOME"


def snowstorm_home() -> Path:
    """``$SNOWSTORM_HOME``, else ``$AIRFLOW_HOME/snowstorm`` (Airflow's home defaults to ``~/airflow``)."""
    configured = os.environ.get(SNOWSTORM_HOME_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("AIRFLOW_HOME") or "~/airflow").expanduser() / "snowstorm"


def default_model_store() -> str:
    """The model store when the W&B connection names none: ``<snowstorm home>/model-store``."""
    return str(snowstorm_home() / "model-store")


def default_run_dir() -> str:
    """The W&B run folder when the connection names none: ``<snowstorm home>/wandb``."""
    return str(snowstorm_home() / "wandb")
