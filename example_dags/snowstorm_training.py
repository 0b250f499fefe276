"""Training: every model configuration of every cost category, in parallel (dynamic task mapping over category x
configuration), then each new model evaluated on the same labelled span.

Triggered manually, or by monitoring: ``snowstorm_prediction`` triggers it with a ``reason`` when a model's data,
scores or age drift. The categories come from the model Asset's ``cost_models`` extra (overridable by the
``cost_models`` param), the configurations from ``configurations`` (default: today's detector and a challenger with
the forest scorer). Each version is registered as a candidate (aliased ``latest``, its configuration's name and the
DAG run id), never in production: ``snowstorm_promotion`` moves ``production``. Every model records its training
span, the features Asset event it was trained from and the reason it was trained (W&B config and registry
metadata). Training runs on the ``ml`` worker queue (``SNOWSTORM_TRAINING_QUEUE``). Emits the model Asset.

With ``SNOWSTORM_SERIES_LEVEL=account`` each category is a series per account (``PROD:compute``, ...; a
``cost_models`` entry may also name one such series), and each mapped task trains and evaluates a batch of
``SNOWSTORM_SERIES_PER_TASK`` series, one model per series.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_provider_snowstorm.example_pipeline import (
    DEFAULT_ARGS,
    EVALUATIONS_TABLE,
    FEATURES_LAYOUT,
    FEATURES_TABLE,
    FEEDBACK_TABLE,
    MODEL_CONFIGURATIONS,
    SERIES_LABEL,
    SNOWFLAKE_CONN_ID,
    TRAINING_QUEUE,
    WANDB_CONN_ID,
    batch_series,
    cost_models_param,
    drift,
    features,
    isolation_forest_model,
    modelled_series,
)
from airflow_provider_snowstorm.notifications.base import as_result_list
from airflow_provider_snowstorm.operators.evaluate import ModelEvaluationOperator
from airflow_provider_snowstorm.operators.train import DecomposeIsolationForestOperator

with DAG(
    dag_id="snowstorm_training",
    description="Train every model configuration per cost category as candidates, and evaluate them",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
    render_template_as_native_obj=True,
    params={
        "cost_models": cost_models_param(),
        "configurations": Param(
            MODEL_CONFIGURATIONS,
            type="object",
            minProperties=1,
            description="Model configurations to train for every category: name -> detector parameters.",
        ),
        "training_end": Param(None, type=["null", "string"], format="date", description="Last training day."),
        "alarm_budget": Param(
            0.1,
            type="number",
            exclusiveMinimum=0,
            description="False alarms per cost category per month accepted on normal data (unless a "
            "configuration sets its own).",
        ),
        "evaluation_days": Param(
            365,
            type="integer",
            minimum=28,
            description="Days of labelled history each new model is evaluated on.",
        ),
        "reason": Param("manual", type="string", description="Why this training runs (set by monitoring)."),
    },
    tags=["snowstorm", "training", "mlops"],
    doc_md=__doc__,
) as dag:

    def _features_event(inlet_events: Any) -> dict[str, Any] | None:
        """The latest features Asset event (what the models are trained from), JSON-safe."""
        events = inlet_events[features] if inlet_events is not None else []
        if not events:
            return None
        latest = events[-1]
        return {
            "asset": features.name,
            "id": latest.id,
            "timestamp": latest.timestamp.isoformat(),
            "source_dag_id": latest.source_dag_id,
            "source_run_id": latest.source_run_id,
            "cutoff_date": (latest.extra or {}).get("cutoff_date"),
            "series": (latest.extra or {}).get("series"),
        }

    @task(inlets=[features, drift])
    def training_plan(params: dict[str, Any], inlet_events: Any = None) -> list[dict[str, Any]]:
        """Category (or batch of account series) x configuration, each with its lineage: the features Asset event
        and why it is trained (the ``reason`` param; monitoring's drift Asset event, whose extra holds the same
        reason, is recorded too)."""
        drifts = inlet_events[drift] if inlet_events is not None else []
        last_drift = drifts[-1] if drifts else None
        lineage = {
            "features_event": _features_event(inlet_events),
            "reason": params["reason"],
            "last_drift_event": None
            if last_drift is None
            else {
                "id": last_drift.id,
                "timestamp": last_drift.timestamp.isoformat(),
                **(last_drift.extra or {}),
            },
        }
        return [
            {
                "series": series,
                "configuration": name,
                "detector_params": {"alarm_budget": params["alarm_budget"], **configuration},
                "lineage": lineage,
            }
            for series in batch_series(modelled_series(params["cost_models"]))
            for name, configuration in params["configurations"].items()
        ]

    @task(inlets=[features], multiple_outputs=True)
    def evaluation_span(params: dict[str, Any], inlet_events: Any = None) -> dict[str, str]:
        """The labelled span every new model is evaluated on: ``evaluation_days`` up to the last feature day."""
        event = _features_event(inlet_events) or {}
        end = date.fromisoformat(
            event.get("cutoff_date") or params["training_end"] or date.today().isoformat()
        )
        start = end - timedelta(days=params["evaluation_days"] - 1)
        return {"window_start": start.isoformat(), "window_end": end.isoformat()}

    span = evaluation_span()
    trained = DecomposeIsolationForestOperator.partial(
        task_id="train",
        map_index_template=SERIES_LABEL + " {{ task.configuration }}",  # the UI's label, not 0, 1, ...
        queue=TRAINING_QUEUE,
        conn_id=SNOWFLAKE_CONN_ID,
        features_table=FEATURES_TABLE,
        features_layout=FEATURES_LAYOUT,
        training_end="{{ params.training_end or '' }}",
        wandb_conn_id=WANDB_CONN_ID,
    ).expand_kwargs(training_plan())

    def _evaluation(trained: dict[str, Any] | list[dict[str, Any]]) -> dict[str, Any]:
        """A series' new version, or a batch's: each series' version of this DAG run (its run alias)."""
        if isinstance(trained, dict):
            return {"series": trained["series"], "model_version": trained["model_version"]}
        return {"series": [m["series"] for m in trained], "model_alias": trained[0]["run_alias"]}

    evaluated = ModelEvaluationOperator.partial(
        task_id="evaluate",
        map_index_template=SERIES_LABEL + " {{ task.model_version or task.model_alias }}",
        queue=TRAINING_QUEUE,
        conn_id=SNOWFLAKE_CONN_ID,
        features_table=FEATURES_TABLE,
        features_layout=FEATURES_LAYOUT,
        window_start=span["window_start"],
        window_end=span["window_end"],
        feedback_table=FEEDBACK_TABLE,
        evaluations_table=EVALUATIONS_TABLE,
        wandb_conn_id=WANDB_CONN_ID,
    ).expand_kwargs(trained.output.map(_evaluation))

    @task(outlets=[isolation_forest_model])
    def publish_models(
        summaries: list[dict[str, Any]], evaluations: list[dict[str, Any]], outlet_events: Any = None
    ) -> list[dict[str, Any]]:
        # One slice request: iterating the lazy XCom sequence reads until a miss, which Airflow logs as an error.
        models = as_result_list(
            summaries[:], "the return value (XCom) of task 'train'"
        )  # a batch's, flattened
        evaluated = as_result_list(evaluations[:], "the return value (XCom) of task 'evaluate'")
        scores = {(e["series"], e["model_version"]): e for e in evaluated}
        for model in models:
            model["evaluation"] = scores.get((model["series"], model["model_version"]))
        outlet_events[isolation_forest_model].extra = {
            "cost_models": list(dict.fromkeys(model["series"] for model in models)),
            "candidates": {
                model["series"]: {
                    m["configuration"]: m["model_version"] for m in models if m["series"] == model["series"]
                }
                for model in models
            },
            "training_end": max(model["training_end"] for model in models),
        }
        return models

    publish_models(trained.output, evaluated.output)
