"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point.

Keep this module free of heavy imports: every Airflow CLI command loads it.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_snowstorm import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-snowstorm",
        "name": "Snowstorm",
        "description": "Anomaly detection and alerting for Snowflake spend, with W&B model tracking.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Snowstorm",
                "external-doc-url": "https://github.com/snowstorm/airflow-provider-snowstorm",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "Snowstorm",
                "python-modules": [
                    "airflow_provider_snowstorm.operators.train",
                    "airflow_provider_snowstorm.operators.score",
                    "airflow_provider_snowstorm.operators.evaluate",
                    "airflow_provider_snowstorm.operators.monitor",
                ],
            }
        ],
        "hooks": [
            {
                "integration-name": "Snowstorm",
                "python-modules": ["airflow_provider_snowstorm.hooks.wandb"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "wandb",
                "hook-class-name": "airflow_provider_snowstorm.hooks.wandb.WandbHook",
                "hook-name": "Weights & Biases",
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "schema", "port"],
                    "relabeling": {"host": "W&B base URL", "password": "API key"},
                    "placeholders": {
                        "host": "leave empty for W&B's default host, or https://wandb.example.com",
                        "password": "leave empty to run offline",
                        "project": "snowstorm",
                        "mode": "online",
                        "model_store": "default: $AIRFLOW_HOME/snowstorm/model-store; s3://... when shared",
                        "run_dir": "default: $AIRFLOW_HOME/snowstorm/wandb",
                    },
                },
                "conn-fields": {
                    "entity": {
                        "label": "Entity",
                        "description": "W&B team or user that owns the project.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "project": {
                        "label": "Project",
                        "description": "W&B project for runs and model artifacts (default: snowstorm).",
                        "schema": {"type": ["string", "null"], "default": "snowstorm"},
                    },
                    "mode": {
                        "label": "Mode",
                        "description": "offline writes runs locally (upload later with `wandb sync`).",
                        "schema": {"type": "string", "enum": ["online", "offline"], "default": "online"},
                    },
                    "model_store": {
                        "label": "Model store",
                        "description": (
                            "Path or URL (file://, s3://, gs://) of the model store; shared storage when workers "
                            "run on several machines. Default: $SNOWSTORM_HOME/model-store, else "
                            "$AIRFLOW_HOME/snowstorm/model-store."
                        ),
                        "schema": {"type": ["string", "null"]},
                    },
                    "run_dir": {
                        "label": "Run directory",
                        "description": "Local directory where wandb writes run files (offline runs too).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "registry": {
                        "label": "Registry",
                        "description": "Models are linked to wandb-registry-<registry>/<model name> online.",
                        "schema": {"type": ["string", "null"], "default": "model"},
                    },
                    "init_timeout": {
                        "label": "Init timeout (s)",
                        "description": "Seconds to wait for W&B before falling back to offline.",
                        "schema": {"type": ["number", "null"], "minimum": 1, "default": 30},
                    },
                },
            }
        ],
        "extra-links": ["airflow_provider_snowstorm.links.wandb.WandbRunLink"],
        "notifications": ["airflow_provider_snowstorm.notifications.anomaly_report.AnomalyReportNotifier"],
    }
