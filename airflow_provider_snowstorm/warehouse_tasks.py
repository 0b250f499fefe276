"""The hourly warehouse path's reusable steps: plain functions of a SQL hook that the ``snowstorm_warehouse_*`` DAGs
call (as ``pipeline_tasks`` is for the daily path).

Extract a window of hours of ``WAREHOUSE_METERING_HISTORY`` into the project schema (times to UTC, each row with its
account), write and read the hourly features (one row per hour, account and warehouse, every hour explicit), train
one model per warehouse series ``ACCOUNT:WAREHOUSE``, write predictions, and keep the incidents table that says which
incidents were reported and when. Every write replaces its rows in one transaction (``utils.sql``), so a re-run
replaces, never duplicates. Audit times are UTC.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_snowstorm.core.schema import (
    ACCOUNT,
    ANOMALY_SCORE,
    CONTINUING,
    CREDITS,
    DATE,
    EXPECTED,
    IS_ANOMALY,
    METERING_COLUMNS,
    SERIES,
    THRESHOLD,
    USAGE_HOUR,
    VALUE,
    WAREHOUSE,
    default_model_name,
)
from airflow_provider_snowstorm.utils.sql import (
    read_dataframe,
    replace_rows,
    transaction,
    validate_table_name,
)

if TYPE_CHECKING:
    import pandas as pd
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    from airflow_provider_snowstorm.core.hourly_incidents import WarehouseIncident
    from airflow_provider_snowstorm.hooks.wandb import WandbHook

__all__ = [
    "FEATURE_TABLE_COLUMNS",
    "INCIDENT_TABLE_COLUMNS",
    "METERING_TABLE_COLUMNS",
    "PREDICTION_TABLE_COLUMNS",
    "create_table_sql",
    "read_hourly_features",
    "read_incidents",
    "read_metering_rows",
    "read_predictions",
    "replace_metering_window",
    "score_warehouses",
    "train_warehouses",
    "warehouse_chunks",
    "warehouse_model_name",
    "write_hourly_features",
    "write_incidents",
    "write_predictions",
]

METERING_TABLE_COLUMNS: Mapping[str, str] = {
    "START_TIME": "TIMESTAMP_NTZ NOT NULL",  # UTC
    "END_TIME": "TIMESTAMP_NTZ NOT NULL",
    "WAREHOUSE_ID": "NUMBER(38, 0)",
    "WAREHOUSE_NAME": "VARCHAR NOT NULL",
    "ACCOUNT_NAME": "VARCHAR NOT NULL",
    "CREDITS_USED": "NUMBER(38, 9)",
    "CREDITS_USED_COMPUTE": "NUMBER(38, 9)",
    "CREDITS_USED_CLOUD_SERVICES": "NUMBER(38, 9)",
    "CREDITS_ATTRIBUTED_COMPUTE_QUERIES": "NUMBER(38, 9)",
    "LOADED_AT": "TIMESTAMP_NTZ NOT NULL",
}
FEATURE_TABLE_COLUMNS: Mapping[str, str] = {
    USAGE_HOUR.upper(): "TIMESTAMP_NTZ NOT NULL",
    ACCOUNT.upper(): "VARCHAR NOT NULL",
    WAREHOUSE.upper(): "VARCHAR NOT NULL",
    CREDITS.upper(): "FLOAT NOT NULL",
}
PREDICTION_TABLE_COLUMNS: Mapping[str, str] = {
    USAGE_HOUR.upper(): "TIMESTAMP_NTZ NOT NULL",
    ACCOUNT.upper(): "VARCHAR NOT NULL",
    WAREHOUSE.upper(): "VARCHAR NOT NULL",
    VALUE.upper(): "FLOAT",
    EXPECTED.upper(): "FLOAT",
    ANOMALY_SCORE.upper(): "FLOAT",
    THRESHOLD.upper(): "FLOAT",
    IS_ANOMALY.upper(): "BOOLEAN",
    CONTINUING.upper(): "BOOLEAN",
    "MODEL_VERSION": "VARCHAR",
    "SCORED_AT": "TIMESTAMP_NTZ",
}
INCIDENT_TABLE_COLUMNS: Mapping[str, str] = {
    "INCIDENT_ID": "VARCHAR NOT NULL",
    "ACCOUNT_NAME": "VARCHAR NOT NULL",
    "WAREHOUSE_NAME": "VARCHAR NOT NULL",
    "START_HOUR": "TIMESTAMP_NTZ NOT NULL",
    "FIRST_ALARM_HOUR": "TIMESTAMP_NTZ NOT NULL",
    "LAST_HOUR": "TIMESTAMP_NTZ NOT NULL",
    "IS_OPEN": "BOOLEAN",
    "CREDITS": "FLOAT",
    "EXPECTED_CREDITS": "FLOAT",
    "COST": "FLOAT",
    "PROJECTED_COST": "FLOAT",
    "CURRENCY": "VARCHAR",
    "REPORTED_AT": "TIMESTAMP_NTZ NOT NULL",  # UTC, the first report; kept by later updates
    "UPDATED_AT": "TIMESTAMP_NTZ NOT NULL",
    "UPDATES": "NUMBER(38, 0)",
    "EPISODES": "NUMBER(38, 0)",  # runs of anomalous hours joined into the incident (a resize, night after night)
}
# A warehouse series ``ACCOUNT:WAREHOUSE`` in SQL, for the tables above.
_SERIES_SQL = f"{ACCOUNT.upper()} || ':' || {WAREHOUSE.upper()}"


def _bindable(value: Any) -> datetime | None:
    """A time as the plain ``datetime`` the Snowflake connector binds (it refuses pandas Timestamps)."""
    import pandas as pd

    return None if value is None else pd.Timestamp(value).to_pydatetime()


def create_table_sql(table: str, columns: Mapping[str, str]) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for one of this module's tables (``*_TABLE_COLUMNS``)."""
    definitions = ", ".join(f"{name} {kind}" for name, kind in columns.items())
    return f"CREATE TABLE IF NOT EXISTS {validate_table_name(table)} ({definitions})"


def replace_metering_window(
    hook: DbApiHook,
    source_table: str,
    table: str,
    start: datetime,
    end: datetime,
    *,
    account: str | None = None,
) -> dict[str, Any]:
    """Replace ``table``'s hours from ``start`` (inclusive) to ``end`` (exclusive) with ``source_table``'s, in one
    transaction: idempotent by hour. Times become UTC (the view's are TIMESTAMP_LTZ); ``LOADED_AT`` is UTC.

    Each row keeps its ``ACCOUNT_NAME`` when the source has one (the ``ORGANIZATION_USAGE`` twin); from an
    ``ACCOUNT_USAGE`` view, without it, rows get ``account``, else the account the connection is in
    (``CURRENT_ACCOUNT_NAME()``)."""
    table = validate_table_name(table, what="metering table")
    source_table = validate_table_name(source_table, what="metering source table")
    utc = "CONVERT_TIMEZONE('UTC', {})::TIMESTAMP_NTZ"
    expressions = {"START_TIME": utc.format("START_TIME"), "END_TIME": utc.format("END_TIME")}
    window = {"start": start, "end": end, "account": account}
    in_source = f"{expressions['START_TIME']} >= %(start)s AND {expressions['START_TIME']} < %(end)s"
    in_table = "START_TIME >= %(start)s AND START_TIME < %(end)s"
    with transaction(hook, lock_table=table) as cursor:
        cursor.execute(f"SELECT * FROM {source_table} LIMIT 0")  # noqa: S608 - validated
        source_columns = {str(column[0]).upper() for column in cursor.description}
        if "ACCOUNT_NAME" in source_columns:
            expressions["ACCOUNT_NAME"] = "ACCOUNT_NAME"
        else:
            expressions["ACCOUNT_NAME"] = "%(account)s" if account else "CURRENT_ACCOUNT_NAME()"
        selected = ", ".join(
            expressions.get(column, column) for column in METERING_TABLE_COLUMNS if column != "LOADED_AT"
        )
        cursor.execute(f"DELETE FROM {table} WHERE {in_table}", window)  # noqa: S608 - validated, bound
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(METERING_TABLE_COLUMNS)}) "  # noqa: S608
            f"SELECT {selected}, SYSDATE() FROM {source_table} WHERE {in_source}",
            window,
        )
    rows, last, warehouses = hook.get_first(
        f"SELECT COUNT(*), MAX(START_TIME), COUNT(DISTINCT {_SERIES_SQL}) FROM {table} WHERE {in_table}",  # noqa: S608
        parameters=window,
    )
    return {
        "rows": int(rows),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "last_hour": last.isoformat() if last else None,
        "warehouses": int(warehouses),
    }


def read_metering_rows(
    hook: DbApiHook, table: str, *, start: datetime, end: datetime
) -> tuple[pd.DataFrame, list[str]]:
    """The project metering table's rows from ``start`` to ``end`` (hours, inclusive), and every warehouse series
    (``ACCOUNT:WAREHOUSE``) the table knows (a warehouse suspended the whole window still gets its hours, at 0)."""
    from airflow_provider_snowstorm.core.warehouse import warehouse_series

    table = validate_table_name(table, what="metering table")
    rows = read_dataframe(
        hook,
        f"SELECT ACCOUNT_NAME, {', '.join(METERING_COLUMNS)} FROM {table} "  # noqa: S608
        "WHERE START_TIME BETWEEN %(s)s AND %(e)s",
        {"s": start, "e": end},
    )
    names = hook.get_records(f"SELECT DISTINCT ACCOUNT_NAME, WAREHOUSE_NAME FROM {table}")  # noqa: S608
    return rows, sorted(warehouse_series(str(account), str(name)) for account, name in names)


def write_hourly_features(hook: DbApiHook, table: str, wide: pd.DataFrame) -> int:
    """Replace ``table``'s hours of ``wide`` (``core.warehouse.hourly_features``) with its rows, one per hour,
    account and warehouse."""
    from airflow_provider_snowstorm.core.warehouse import split_warehouse_series

    names = [split_warehouse_series(series) for series in wide.columns]
    records = [
        (hour.to_pydatetime(), *name, float(value))
        for hour, values in zip(wide.index, wide.to_numpy(), strict=True)
        for name, value in zip(names, values, strict=True)
    ]
    return replace_rows(
        hook,
        table,
        list(FEATURE_TABLE_COLUMNS),
        records,
        where=f"{USAGE_HOUR.upper()} BETWEEN {hook.placeholder} AND {hook.placeholder}",
        where_parameters=[wide.index[0].to_pydatetime(), wide.index[-1].to_pydatetime()],
    )


def read_hourly_features(
    hook: DbApiHook,
    table: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    warehouses: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The features from ``start`` to ``end`` (inclusive) as one column per warehouse series (``ACCOUNT:WAREHOUSE``;
    ``warehouses`` picks them), every hour explicit."""
    from airflow_provider_snowstorm.core.warehouse import hourly_features

    table = validate_table_name(table, what="features table")
    hour = USAGE_HOUR.upper()
    bounds = [(">=", start), ("<=", end)]
    conditions = [
        f"{hour} {operator} %({name})s"
        for (operator, value), name in zip(bounds, ("s", "e"), strict=False)
        if value
    ]
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    frame = read_dataframe(
        hook,
        f"SELECT {hour} AS START_TIME, {ACCOUNT.upper()}, {WAREHOUSE.upper()}, {CREDITS.upper()} "  # noqa: S608
        f"FROM {table}{where}",
        {"s": _bindable(start), "e": _bindable(end)},
    )
    if frame.empty:
        raise ValueError(
            f"{table} has no hourly features between {start or 'the start'} and {end or 'the end'}"
        )
    return hourly_features(frame, start=start, end=end, warehouses=warehouses)


def warehouse_chunks(series: Sequence[str], size: int) -> list[list[str]]:
    """The training DAG's map: ``series`` in chunks of at most ``size`` (one mapped task and W&B run each)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"SNOWSTORM_WAREHOUSE_CHUNK_SIZE must be a whole number of at least 1, got {size!r}")
    return [list(series[index : index + size]) for index in range(0, len(series), size)]


def warehouse_model_name(series: str, prefix: str = "snowstorm-warehouse") -> str:
    """``PROD:ETL_WH`` -> ``snowstorm-warehouse-prod.etl_wh`` (registry-safe, as every series' model name)."""
    return default_model_name(series, prefix)


def train_warehouses(
    wandb: WandbHook,
    features: pd.DataFrame,
    *,
    params: Mapping[str, Any],
    dag_run_id: str,
    run_name: str,
) -> list[dict[str, Any]]:
    """Fit one ``DecomposeIsolationForest`` per warehouse series (column) of ``features`` and register each as
    ``warehouse_model_name(warehouse)``, in one W&B run for the chunk. A task retry replaces its own versions
    (idempotency alias: the DAG run id)."""
    from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest
    from airflow_provider_snowstorm.core.persistence import save_detector

    # Check every warehouse's history before anything is registered: one bad column fails the chunk up front.
    detectors = {}
    for warehouse in features.columns:
        try:
            detectors[warehouse] = DecomposeIsolationForest(**params).fit(features[[warehouse]])
        except ValueError as error:
            raise ValueError(f"cannot train a model for warehouse {warehouse!r}: {error}") from error
    summaries = []
    config = {"warehouses": list(features.columns), "params": dict(params), "dag_run_id": dag_run_id}
    with (
        wandb.start_run(run_name, group=dag_run_id, job_type="train-warehouses", config=config) as run,
        tempfile.TemporaryDirectory(prefix="snowstorm-warehouse-") as workdir,
    ):
        for warehouse, detector in detectors.items():
            path = save_detector(detector, Path(workdir, f"{warehouse_model_name(warehouse)}.skops"))
            version = wandb.registry.register(
                run,
                path,
                warehouse_model_name(warehouse),
                metadata={**detector.metadata, "dag_run_id": dag_run_id, "warehouse": warehouse},
                idempotency_alias=dag_run_id,
            )
            threshold = float(detector.thresholds[warehouse])
            wandb.log_metrics({f"threshold/{warehouse}": threshold}, run=run)
            summaries.append(
                {
                    "warehouse": warehouse,
                    "model_name": warehouse_model_name(warehouse),
                    "model_version": version.version,
                    "threshold": threshold,
                    "training_start": detector.training_start_,
                    "training_end": detector.training_end_,
                }
            )
    return summaries


def score_warehouses(
    wandb: WandbHook, features: pd.DataFrame, *, start: pd.Timestamp
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Score the hours of ``features`` from ``start`` on with each warehouse's ``latest`` model (the hours before
    ``start`` are history). Returns the detections (long format) and the model version that scored each warehouse;
    a warehouse without a model yet is left out (named in the versions as ``None``)."""
    import pandas as pd

    from airflow_provider_snowstorm.core.persistence import load_detector
    from airflow_provider_snowstorm.registry.store import ModelNotFoundError

    results, versions = [], {}
    with tempfile.TemporaryDirectory(prefix="snowstorm-warehouse-score-") as workdir:
        for warehouse in features.columns:
            try:
                path, version = wandb.registry.fetch(
                    warehouse_model_name(warehouse), dest_dir=Path(workdir, warehouse_model_name(warehouse))
                )
            except ModelNotFoundError:
                versions[warehouse] = None
                continue
            detector = load_detector(path)
            results.append(detector.detect(features[[warehouse]], start=start))
            versions[warehouse] = version.version
    if not results:
        return pd.DataFrame(columns=[DATE, SERIES, VALUE, EXPECTED, IS_ANOMALY, CONTINUING]), versions
    return pd.concat(results, ignore_index=True), versions


def write_predictions(
    hook: DbApiHook, table: str, detections: pd.DataFrame, versions: Mapping[str, str | None]
) -> int:
    """Replace the scored hours of the scored warehouses in ``table`` with ``detections``; ``SCORED_AT`` is UTC."""
    import pandas as pd

    from airflow_provider_snowstorm.core.warehouse import split_warehouse_series

    if detections.empty:
        return 0
    scored_at = pd.Timestamp.now("UTC").tz_localize(None).to_pydatetime()
    records = [
        (
            pd.Timestamp(row[DATE]).to_pydatetime(),
            *split_warehouse_series(row[SERIES]),
            *(
                None if pd.isna(row[name]) else float(row[name])
                for name in (VALUE, EXPECTED, ANOMALY_SCORE, THRESHOLD)
            ),
            bool(row[IS_ANOMALY]),
            bool(row[CONTINUING]),
            versions.get(str(row[SERIES])),
            scored_at,
        )
        for row in detections.to_dict("records")
    ]
    hours = pd.DatetimeIndex(detections[DATE])
    warehouses = sorted({str(name) for name in detections[SERIES]})
    placeholder = hook.placeholder
    return replace_rows(
        hook,
        table,
        list(PREDICTION_TABLE_COLUMNS),
        records,
        where=f"{USAGE_HOUR.upper()} BETWEEN {placeholder} AND {placeholder} AND {_SERIES_SQL} IN "
        f"({', '.join([placeholder] * len(warehouses))})",
        where_parameters=[hours.min().to_pydatetime(), hours.max().to_pydatetime(), *warehouses],
    )


def read_predictions(hook: DbApiHook, table: str, *, start: datetime, end: datetime) -> pd.DataFrame:
    """Stored predictions from ``start`` to ``end`` (inclusive) in the detector's long format (``series`` is
    ``ACCOUNT:WAREHOUSE``)."""
    table = validate_table_name(table, what="predictions table")
    columns = {USAGE_HOUR.upper(): DATE}
    skipped = (ACCOUNT.upper(), WAREHOUSE.upper(), "MODEL_VERSION", "SCORED_AT")
    names = [f"{_SERIES_SQL} AS {SERIES.upper()}"]
    names += [name for name in PREDICTION_TABLE_COLUMNS if name not in skipped]
    frame = read_dataframe(
        hook,
        f"SELECT {', '.join(names)} FROM {table} WHERE {USAGE_HOUR.upper()} BETWEEN %(s)s AND %(e)s",  # noqa: S608
        {"s": _bindable(start), "e": _bindable(end)},
    )
    frame = frame.rename(columns=lambda column: columns.get(str(column).upper(), str(column).lower()))
    for flag in (IS_ANOMALY, CONTINUING):
        frame[flag] = frame[flag].astype(bool)
    return frame


def read_incidents(hook: DbApiHook, table: str) -> dict[str, dict[str, Any]]:
    """The incidents table's rows by incident id (all of them: ids are stable while an incident continues)."""
    table = validate_table_name(table, what="incidents table")
    query = f"SELECT INCIDENT_ID, START_HOUR, LAST_HOUR, IS_OPEN, REPORTED_AT, UPDATES FROM {table}"  # noqa: S608
    frame = read_dataframe(hook, query)
    frame.columns = [str(column).upper() for column in frame.columns]
    return {row["INCIDENT_ID"]: row for row in frame.to_dict("records")}


def write_incidents(
    hook: DbApiHook,
    table: str,
    incidents: Sequence[WarehouseIncident],
    known: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Insert new incidents and update those already reported (first report time kept, updates counted), in one
    transaction. Returns each incident's record with ``reported_at``, ``updated_at``, ``updates`` and ``new``."""
    import pandas as pd

    now = pd.Timestamp.now("UTC").tz_localize(None).floor("s").to_pydatetime()
    records, rows = [], []
    for incident in incidents:
        previous = known.get(incident.incident_id)
        reported_at = pd.Timestamp(previous["REPORTED_AT"]).to_pydatetime() if previous else now
        updates = int(previous["UPDATES"]) + 1 if previous else 0
        rows.append(
            (
                incident.incident_id,
                incident.account,
                incident.warehouse,
                incident.start.to_pydatetime(),
                incident.first_alarm.to_pydatetime(),
                incident.last_hour.to_pydatetime(),
                incident.open,
                incident.credits,
                incident.expected_credits,
                incident.cost,
                incident.projected_cost,
                incident.currency,
                reported_at,
                now,
                updates,
                incident.episodes,
            )
        )
        records.append(
            {
                **incident.as_record(),
                "reported_at": reported_at.isoformat(),
                "updated_at": now.isoformat(),
                "updates": updates,
                "new": previous is None,
            }
        )
    if rows:
        placeholder = hook.placeholder
        replace_rows(
            hook,
            table,
            list(INCIDENT_TABLE_COLUMNS),
            rows,
            where=f"INCIDENT_ID IN ({', '.join([placeholder] * len(rows))})",
            where_parameters=[row[0] for row in rows],
        )
    return records


def read_credit_rates(hook: DbApiHook, usage_table: str, currency: str | None = None) -> pd.Series:
    """The effective price of a credit per day (``core.warehouse.credit_rates``) from the daily path's copy of
    ``USAGE_IN_CURRENCY_DAILY`` in the monitored currency; empty while the daily path has loaded no usage (the
    table is created empty, with the daily path's definition, if it is not there)."""
    import pandas as pd

    from airflow_provider_snowstorm.core.warehouse import credit_rates
    from airflow_provider_snowstorm.pipeline_tasks import create_raw_usage_table_sql, monitored_currency

    hook.run(create_raw_usage_table_sql(usage_table))
    if not count_rows(hook, usage_table):
        return pd.Series(dtype="float64")
    chosen, _ = monitored_currency(hook, usage_table, currency)
    rows = read_dataframe(
        hook,
        f"SELECT USAGE_DATE, USAGE_TYPE, USAGE, USAGE_IN_CURRENCY, CURRENCY FROM {usage_table} "  # noqa: S608
        "WHERE CURRENCY = %(currency)s",
        {"currency": chosen},
    )
    return credit_rates(rows)


def count_rows(hook: DbApiHook, table: str) -> int:
    """Rows in ``table``."""
    return int(hook.get_first(f"SELECT COUNT(*) FROM {validate_table_name(table)}")[0])  # noqa: S608


def score_and_report(
    hook: DbApiHook,
    *,
    until: datetime,
    window_hours: int,
    min_hours: int,
    rejoin_hours: int | None = None,
    tables: Mapping[str, str],
    wandb_conn_id: str,
    slack_conn_id: str | None,
    channel: str | None,
    report_path: str | None,
    currency: str | None = None,
) -> dict[str, Any]:
    """The hourly scoring DAG's step: score ``window_hours`` hours up to ``until`` (the last complete hour, or the
    features' last hour if earlier), replace their predictions, find the incidents touching the window (read back
    from the earliest start of an incident still open or ended within ``rejoin_hours``, default
    ``DEFAULT_REJOIN_HOURS``, which it may continue), record them, write the report and post or update them in
    Slack."""
    import pandas as pd

    from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest
    from airflow_provider_snowstorm.core.hourly_incidents import (
        DEFAULT_REJOIN_HOURS,
        find_warehouse_incidents,
        render_warehouse_report,
    )
    from airflow_provider_snowstorm.core.warehouse import DEFAULT_HOURLY_PARAMS, rate_on
    from airflow_provider_snowstorm.hooks.wandb import WandbHook
    from airflow_provider_snowstorm.notifications.warehouse_slack import WarehouseIncidentSlack
    from airflow_provider_snowstorm.utils.paths import snowstorm_home

    rejoin_hours = DEFAULT_REJOIN_HOURS if rejoin_hours is None else rejoin_hours
    if window_hours < 1 or min_hours < 1 or rejoin_hours < 0:
        raise ValueError(
            "window_hours and min_hours must be at least 1 and rejoin_hours at least 0, got "
            f"{window_hours}, {min_hours} and {rejoin_hours}"
        )
    slack = WarehouseIncidentSlack(slack_conn_id=slack_conn_id, channel=channel)  # checks channel up front
    for name in ("predictions", "incidents"):
        columns = PREDICTION_TABLE_COLUMNS if name == "predictions" else INCIDENT_TABLE_COLUMNS
        hook.run(create_table_sql(tables[name], columns))
    features_table = validate_table_name(tables["features"], what="features table")
    (last,) = hook.get_first(f"SELECT MAX({USAGE_HOUR.upper()}) FROM {features_table}")  # noqa: S608
    if last is None:
        raise ValueError(
            f"{tables['features']} has no hourly features yet: run snowstorm_warehouse_data_engineering"
        )
    until = min(pd.Timestamp(until), pd.Timestamp(last))
    start = until - pd.Timedelta(hours=window_hours - 1)
    history = DecomposeIsolationForest(**DEFAULT_HOURLY_PARAMS).required_history_days
    features = read_hourly_features(
        hook, tables["features"], start=start - pd.Timedelta(hours=history), end=until
    )
    wandb = WandbHook(wandb_conn_id=wandb_conn_id)
    detections, versions = score_warehouses(wandb, features, start=start)
    write_predictions(hook, tables["predictions"], detections, versions)

    known = read_incidents(hook, tables["incidents"])
    rejoin_from = start - pd.Timedelta(hours=rejoin_hours + 1)
    live_starts = [
        pd.Timestamp(row["START_HOUR"])
        for row in known.values()
        if row["IS_OPEN"] or pd.Timestamp(row["LAST_HOUR"]) >= rejoin_from
    ]
    stored = read_predictions(hook, tables["predictions"], start=min([rejoin_from, *live_starts]), end=until)
    rates = read_credit_rates(hook, tables["usage"], currency)
    incidents = [
        incident
        for incident in find_warehouse_incidents(
            stored,
            min_hours=min_hours,
            rejoin_hours=rejoin_hours,
            rate=(lambda hour: rate_on(rates, hour)) if len(rates) else None,
            currency=str(rates.name) if len(rates) and rates.name else None,
        )
        if incident.open or incident.last_hour >= start or incident.incident_id in known
    ]
    records = write_incidents(hook, tables["incidents"], incidents, known)

    folder = Path(report_path) if report_path else snowstorm_home() / "reports"
    markdown = (folder if folder.suffix != ".md" else folder.parent) / "warehouse_report.md"
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(render_warehouse_report(incidents, scored_until=until))
    slack_outcome = slack.deliver_incidents(incidents, markdown)
    return {
        "window_start": start.isoformat(),
        "scored_until": until.isoformat(),
        "warehouses": sorted(versions),
        "unscored_warehouses": sorted(name for name, version in versions.items() if version is None),
        "incidents": records,
        "report": str(markdown),
        "slack": slack_outcome,
    }
