"""Detection metrics of the quality benchmark: the package's own (``airflow_provider_snowstorm.core.evaluation``).

Kept as a module so the benchmark's imports read as before; the one definition lives in the package, where the
evaluation operator uses it too.
"""

from __future__ import annotations

from airflow_provider_snowstorm.core.evaluation import (
    DAYS_PER_MONTH,
    EventCounts,
    average_precision,
    count_events,
    false_alarm_runs,
)

__all__ = ["DAYS_PER_MONTH", "EventCounts", "average_precision", "count_events", "false_alarm_runs"]
