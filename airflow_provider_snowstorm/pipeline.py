"""Deprecated: the example pipeline's settings and Assets are in ``airflow_provider_snowstorm.example_pipeline``.

``airflow_provider_snowstorm.local.pipeline`` is the local runner, a different thing; this module kept the old name
for the example DAGs' shared settings and re-exports them with a ``DeprecationWarning``.
"""

from __future__ import annotations

import warnings

from airflow_provider_snowstorm.example_pipeline import *  # noqa: F403
from airflow_provider_snowstorm.example_pipeline import __all__  # noqa: F401

warnings.warn(
    "airflow_provider_snowstorm.pipeline is deprecated: import airflow_provider_snowstorm.example_pipeline instead",
    DeprecationWarning,
    stacklevel=2,
)
