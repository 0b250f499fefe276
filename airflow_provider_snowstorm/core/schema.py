"""Column names shared by the modelling core, the operators and the report.

One place for them, so the detector's output, the predictions table and the report cannot drift apart.
"""

from __future__ import annotations

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

# Added by batch scoring when predictions are written to the results table.
MODEL_NAME = "model_name"
MODEL_VERSION = "model_version"
SCORED_AT = "scored_at"
RESULT_COLUMNS: tuple[str, ...] = (*PREDICTION_COLUMNS, MODEL_NAME, MODEL_VERSION, SCORED_AT)

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
# Hourly warehouse features: one row per hour and warehouse, every hour explicit (0 while suspended).
USAGE_HOUR = "usage_hour"
WAREHOUSE = "warehouse_name"
CREDITS = "credits_used"
