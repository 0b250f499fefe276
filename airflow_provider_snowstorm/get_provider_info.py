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
    }
