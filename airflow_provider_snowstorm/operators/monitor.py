"""``ModelDriftOperator``: has the data, the alarm rate or the age of each deployed model drifted past its limits?

For each series it loads the deployed model's record (``production`` by default): the reference profile of the end
of its training data, its alarm budget, its training end and the features it was trained from (``core.drift``
compares them). Recent features come from the same source as scoring; recent alarms from the predictions table. When
something drifted, the task emits an event of ``drift_asset`` (through an ``AssetAlias``, so an event exists only
when there is drift) whose extra holds the reason and the categories to retrain; it always returns the full check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
from airflow.sdk import Asset, AssetAlias

from airflow_provider_snowstorm.core.schema import DATE, IS_ANOMALY, SERIES
from airflow_provider_snowstorm.hooks.wandb import WandbHook
from airflow_provider_snowstorm.operators.base import SeriesInputError
from airflow_provider_snowstorm.operators.score import BatchScoreOperator, _day, model_metadata
from airflow_provider_snowstorm.registry import PRODUCTION_ALIAS, ModelNotFoundError
from airflow_provider_snowstorm.utils.sql import (
    distinct_values,
    read_dataframe,
    table_columns,
    validate_identifier,
    validate_table_name,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["ModelDriftOperator", "drift_alias"]


def drift_alias(asset: Asset) -> AssetAlias:
    """The alias through which drift events of ``asset`` are emitted (only when something drifted)."""
    return AssetAlias(f"{asset.name}__when_drifted")


class ModelDriftOperator(BatchScoreOperator):
    """Check data drift, score drift and model age of each series' deployed model over the last ``window_days``.

    :param series: The deployed categories (a list). Templated.
    :param model_alias: Which model is deployed (``production``).
    :param window_end: Last day checked (default: the last feature day); ``window_days`` (28) days are checked.
    :param results_table: The predictions table, for the alarm rate (optional).
    :param limits: ``core.drift.DriftLimits`` fields (``level_tolerance``, ``profile_tolerance``, ``max_missing_days``,
        ``max_lateness_days``, ``alarm_p_value``, ``max_age_days``). Templated.
    :param expected_last_day: The day the features should reach by now (late data is drift); default not checked.
    :param drift_asset: The Asset whose event announces drift (extra: ``reason``, ``cost_models``, ``findings``).

    Returns (XCom) ``core.drift.DriftReport.as_dict()`` plus ``cost_models`` (what to retrain: drifted and new
    series) and the checked window.
    """

    template_fields: Sequence[str] = (*BatchScoreOperator.template_fields, "limits", "expected_last_day")
    operator_extra_links = ()  # no W&B run of its own
    ui_color = "#f6eef8"
    supports_chunk_model = False  # per series: drift is measured per series

    def __init__(
        self,
        *,
        model_alias: str = PRODUCTION_ALIAS,
        window_days: int = 28,
        limits: Mapping[str, Any] | None = None,
        expected_last_day: str | None = None,
        drift_asset: Asset | None = None,
        **kwargs: Any,
    ) -> None:
        if drift_asset is not None:
            kwargs["outlets"] = [*kwargs.get("outlets", []), drift_alias(drift_asset)]
        super().__init__(model_alias=model_alias, window_days=window_days, log_to_wandb=False, **kwargs)
        self.limits = limits
        self.expected_last_day = expected_last_day
        self.drift_asset = drift_asset

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_snowstorm.core.drift import DriftLimits, check_drift

        names = self.check_inputs()
        if self.limits is not None and not isinstance(self.limits, Mapping):
            raise SeriesInputError(f"limits must be a mapping of DriftLimits fields, got {self.limits!r}")
        try:
            limits = DriftLimits(**(self.limits or {}))
        except TypeError as error:
            raise SeriesInputError(f"limits: {error}") from None
        expected = (
            _day(self.expected_last_day, "expected_last_day").date() if self.expected_last_day else None
        )
        registry = WandbHook(wandb_conn_id=self.wandb_conn_id).registry
        records, versions = {}, {}
        for series in names:
            try:
                deployed = registry.resolve(self.model_name_for(series), alias=self.model_alias)
            except ModelNotFoundError as error:
                raise ModelNotFoundError(
                    f"no {self.model_alias!r} model of {series!r} to monitor: {error}"
                ) from None
            records[series], versions[series] = model_metadata(deployed), deployed.version
        start, end, features = self._window(names, 0)
        recent = features[(features.index >= start) & (features.index <= end)]
        report = check_drift(
            recent,
            {
                series: record.get("reference") or {}
                for series, record in records.items()
                if record.get("reference")
            },
            predictions=self._recent_alarms(names, start, end),
            alarm_budgets={
                s: r["params"]["alarm_budget"]
                for s, r in records.items()
                if "alarm_budget" in r.get("params", {})
            },
            training_ends={series: record["training_end"] for series, record in records.items()},
            feature_columns=self._feature_columns(),
            known_series=sorted(
                {
                    name
                    for record in records.values()
                    for name in ((record.get("lineage") or {}).get("features_event") or {}).get("series")
                    or []
                }
            ),
            expected_last_day=expected,
            limits=limits,
        )
        result = {
            **report.as_dict(),
            "cost_models": [*report.drifted_series, *report.new_series],
            "window_start": start.date().isoformat(),
            "window_end": end.date().isoformat(),
            "model_versions": versions,
        }
        self.log.info("Drift check %s..%s: %s", result["window_start"], result["window_end"], report.reason)
        if report.drifted and self.drift_asset is not None:
            context["outlet_events"][drift_alias(self.drift_asset)].add(
                self.drift_asset,
                extra={
                    "reason": report.reason,
                    "cost_models": result["cost_models"],
                    "findings": result["findings"],
                },
            )
        return result

    def _feature_columns(self) -> list[str]:
        """Every series of the features: the columns, or the long layout's series (new usage types and accounts
        show up here first)."""
        if self.features is not None or self.sql or not self.features_table:
            return []
        table = validate_table_name(self.features_table, what="features_table")
        hook = self.get_db_hook()
        if self.features_layout == "long":
            series_column = validate_identifier(self.series_column, what="series_column")
            return [name.lower() for name in distinct_values(hook, table, series_column)]
        date_column = self.date_column.strip('"').lower()
        return [c.lower() for c in table_columns(hook, table) if c.lower() != date_column]

    def _recent_alarms(self, names: list[str], start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame | None:
        if not self.results_table:
            return None
        hook = self.get_db_hook(self.results_conn_id)
        table = validate_table_name(self.results_table, what="results_table")
        placeholder = hook.placeholder
        rows = read_dataframe(
            hook,
            f"SELECT {DATE.upper()}, {SERIES.upper()}, {IS_ANOMALY.upper()} FROM {table} "  # noqa: S608
            f"WHERE {DATE.upper()} BETWEEN {placeholder} AND {placeholder}",
            [start.date(), end.date()],
        ).rename(columns=str.lower)
        rows = rows[rows[SERIES].astype(str).isin(names)]
        return rows.assign(**{IS_ANOMALY: rows[IS_ANOMALY].astype(bool)})
