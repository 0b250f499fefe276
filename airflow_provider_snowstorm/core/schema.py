"""Column names shared by the modelling core, the operators and the report.

One place for them, so the detector's output, the predictions table and the report cannot drift apart.
"""

from __future__ import annotations

import re

# A series name: the daily path's cost series (``compute``, ``PROD:compute``) and the hourly path's warehouses
# (``ACCOUNT:WAREHOUSE``). Model names are derived from it (``default_model_name``).
SERIES_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_:]{0,200}")


def default_model_name(series: str, prefix: str = "snowstorm") -> str:
    """``compute`` -> ``snowstorm-compute``; ``PROD:compute`` -> ``snowstorm-prod.compute`` (registry-safe)."""
    return f"{prefix}-{series.lower().replace(':', '.')}"


# Rows of SNOWFLAKE.ORGANIZATION_USAGE.USAGE_IN_CURRENCY_DAILY that feature building needs (upper case, as Snowflake).
USAGE_COLUMNS: tuple[str, ...] = (
    "ORGANIZATION_NAME",
    "ACCOUNT_NAME",
    "USAGE_DATE",
    "USAGE_TYPE",
    "USAGE_IN_CURRENCY",
)
# The example pipeline's copy of the view (``USAGE_IN_CURRENCY_DAILY`` in the project schema): the usage columns,
# the currency and quantity the report and users read, and when a row was loaded.
RAW_USAGE_COLUMNS: tuple[str, ...] = (
    "ORGANIZATION_NAME",
    "ACCOUNT_NAME",
    "USAGE_DATE",
    "USAGE_TYPE",
    "CURRENCY",
    "USAGE",
    "USAGE_IN_CURRENCY",
    "LOADED_AT",
)

TOTAL_USAGE = "total_usage"

# Long-format scoring output: one row per date and series.
DATE = "usage_date"
SERIES = "series"
VALUE = "value"
EXPECTED = "expected"
RESIDUAL = "residual"
ANOMALY_SCORE = "anomaly_score"
THRESHOLD = "threshold"
IS_ANOMALY = "is_anomaly"
# A day that continues an alarm already raised (a level shift or a long burst): not alarmed on again, but part of
# the incident, so the report shows its full length and cost.
CONTINUING = "continuing"
PREDICTION_COLUMNS: tuple[str, ...] = (
    DATE,
    SERIES,
    VALUE,
    EXPECTED,
    RESIDUAL,
    ANOMALY_SCORE,
    THRESHOLD,
    IS_ANOMALY,
    CONTINUING,
)

# Added by batch scoring when predictions are written to the results table. Lineage: the model version and the W&B
# run that trained it (whose config names the training data span and the features Asset event).
MODEL_NAME = "model_name"
MODEL_VERSION = "model_version"
TRAINING_RUN = "training_run"
SCORED_AT = "scored_at"
RESULT_COLUMNS: tuple[str, ...] = (*PREDICTION_COLUMNS, MODEL_NAME, MODEL_VERSION, TRAINING_RUN, SCORED_AT)

# SNOWFLAKE.ACCOUNT_USAGE.WAREHOUSE_METERING_HISTORY: one row per warehouse and hour it ran (START_TIME, END_TIME in
# UTC here; TIMESTAMP_LTZ in Snowflake), the columns the hourly path reads.
METERING_COLUMNS: tuple[str, ...] = (
    "START_TIME",
    "END_TIME",
    "WAREHOUSE_ID",
    "WAREHOUSE_NAME",
    "CREDITS_USED",
    "CREDITS_USED_COMPUTE",
    "CREDITS_USED_CLOUD_SERVICES",
    "CREDITS_ATTRIBUTED_COMPUTE_QUERIES",
)
# The account a metering row belongs to: a column of the ``ORGANIZATION_USAGE`` twin of the view (several accounts);
# the project's copy always has it (for ``ACCOUNT_USAGE``, the account the view is read in).
ACCOUNT = "account_name"
# Hourly warehouse features: one row per hour, account and warehouse, every hour explicit (0 while suspended). A
# warehouse's series is ``ACCOUNT:WAREHOUSE`` (``core.warehouse.warehouse_series``): names repeat across accounts.
USAGE_HOUR = "usage_hour"
WAREHOUSE = "warehouse_name"
CREDITS = "credits_used"

# Feedback users give on incidents (the labels evaluation uses): a span of one series marked a real incident or a
# false alarm, by whom and when. ``real`` spans are the incidents a model should find.
FEEDBACK_COLUMNS: tuple[str, ...] = (
    "series",
    "start_date",
    "end_date",
    "verdict",
    "note",
    "reported_by",
    "reported_at",
)
REAL_INCIDENT = "real"
FALSE_ALARM = "false_alarm"
FEEDBACK_VERDICTS: tuple[str, ...] = (REAL_INCIDENT, FALSE_ALARM)

# One row per model version, series and evaluated span (``core.evaluation.EvaluationMetrics`` fields in between).
EVALUATION_KEY_COLUMNS: tuple[str, ...] = (
    "model_name",
    "model_version",
    "configuration",
    "series",
    "span",
    "span_start",
    "span_end",
)
EVALUATION_COLUMNS: tuple[str, ...] = (
    *EVALUATION_KEY_COLUMNS,
    "days",
    "incidents",
    "found",
    "missed",
    "false_alarms",
    "precision",
    "recall",
    "f1",
    "false_alarms_per_month",
    "average_precision",
    "labels_source",
    "dag_run_id",
    "evaluated_at",
)
