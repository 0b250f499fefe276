"""Promotion: move a category's ``production`` model to a version after comparing it with the champion.

Trigger it by hand with the category and the version, or an alias naming it (``airflow dags trigger
snowstorm_promotion --conf '{"category": "compute", "version": "challenger", "reason": "..."}'``, or the UI's
Trigger form). The champion (the version
``production`` names now) and the candidate are evaluated on the same labelled span with the same feedback labels
(``ModelEvaluationOperator``: each logged to its model's W&B run and written to the evaluations table), and, when
the candidate has scored in shadow beside the champion, both on the rows they wrote over those days (shown in the
decision as ``shadow_comparison``; not decisive, a shadow period is short); a candidate
that is worse (lower F1; then more false alarms per month; then lower average precision) is refused unless ``force``
is set: the ``promote`` task is then skipped, the comparison in its log and in XCom ``decision``. Who promoted what
and why is recorded: the run's conf and triggering user, the registry's alias history (W&B moves the alias online),
and a W&B ``promote`` run. Rolling back is the same DAG with an older version (and
usually ``force``, since an older model rarely beats the newer one on the newer data).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, BaseHook, Param, task
from airflow.sdk.exceptions import AirflowSkipException

from airflow_provider_snowstorm.example_pipeline import (
    DEFAULT_ARGS,
    EVALUATIONS_TABLE,
    FEATURES_LAYOUT,
    FEATURES_TABLE,
    FEEDBACK_TABLE,
    PREDICTIONS_TABLE,
    SHADOW_PREDICTIONS_TABLE,
    SNOWFLAKE_CONN_ID,
    TRAINING_QUEUE,
    WANDB_CONN_ID,
    features,
)
from airflow_provider_snowstorm.operators.evaluate import ModelEvaluationOperator, scored_span

with DAG(
    dag_id="snowstorm_promotion",
    description="Compare a candidate model with the champion and move production to it",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 0},
    render_template_as_native_obj=True,
    params={
        "category": Param(
            type="string",
            pattern="^[A-Za-z_][A-Za-z0-9_:]*$",
            description="Cost category (or an account's: PROD:compute).",
        ),
        "version": Param(
            type="string",
            pattern="^[A-Za-z0-9][A-Za-z0-9_.-]*$",
            description="Version to promote (v3), or an alias naming it (challenger).",
        ),
        "reason": Param(
            type="string", minLength=1, description="Why (kept in the registry's alias history)."
        ),
        "force": Param(False, type="boolean", description="Promote even if the candidate evaluates worse."),
        "evaluation_days": Param(
            365, type="integer", minimum=28, description="Days of labelled history compared."
        ),
        "evaluation_end": Param(
            None, type=["null", "string"], format="date", description="Default: last feature day."
        ),
    },
    tags=["snowstorm", "promotion", "mlops"],
    doc_md=__doc__,
) as dag:

    @task(inlets=[features])
    def plan(params: dict[str, Any], inlet_events: Any = None, ti: Any = None) -> list[dict[str, Any]]:
        """The candidate (must exist), the champion (``production`` now, if any) and the span both are judged on:
        one evaluation each (returned, to map over); the comparison's context under XCom key ``plan``."""
        from airflow_provider_snowstorm.hooks.wandb import WandbHook
        from airflow_provider_snowstorm.operators.base import default_model_name
        from airflow_provider_snowstorm.registry import PRODUCTION_ALIAS, ModelNotFoundError, validate_version

        registry = WandbHook(wandb_conn_id=WANDB_CONN_ID).registry
        name = default_model_name(params["category"])
        # A version (v3) or an alias naming one (challenger); fails clearly when it does not exist.
        selector = params["version"]
        try:
            chosen = {"version": validate_version(selector)}
        except ValueError:
            chosen = {"alias": selector}
        candidate = registry.resolve(name, **chosen).version
        try:
            champion: str | None = registry.resolve(name, alias=PRODUCTION_ALIAS).version
        except ModelNotFoundError:
            champion = None
        events = inlet_events[features] if inlet_events is not None else []
        cutoff = (events[-1].extra or {}).get("cutoff_date") if events else None
        end = date.fromisoformat(params["evaluation_end"] or cutoff or date.today().isoformat())
        window = {
            "window_start": (end - timedelta(days=params["evaluation_days"] - 1)).isoformat(),
            "window_end": end.isoformat(),
        }
        ti.xcom_push(
            key="plan", value={"model_name": name, "candidate": candidate, "champion": champion, **window}
        )
        versions = [v for v in dict.fromkeys([champion, candidate]) if v is not None]
        evaluations = [{"series": params["category"], "model_version": v, **window} for v in versions]
        # Also the days the candidate scored in shadow beside the champion: each on the rows it wrote then.
        hook = BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook()
        shadow = scored_span(hook, SHADOW_PREDICTIONS_TABLE, name, candidate, params["category"])
        live = champion and scored_span(hook, PREDICTIONS_TABLE, name, champion, params["category"])
        if shadow and live and champion != candidate and max(shadow[0], live[0]) <= min(shadow[1], live[1]):
            period = {
                "window_start": max(shadow[0], live[0]).isoformat(),
                "window_end": min(shadow[1], live[1]).isoformat(),
            }
            evaluations += [
                {
                    "series": params["category"],
                    "model_version": version,
                    "span": span,
                    "predictions_table": table,
                    **period,
                }
                for version, span, table in (
                    (champion, "production", PREDICTIONS_TABLE),
                    (candidate, "shadow", SHADOW_PREDICTIONS_TABLE),
                )
            ]
        return evaluations

    decided = plan()
    evaluated = ModelEvaluationOperator.partial(
        task_id="evaluate",
        map_index_template="{{ task.series }} {{ task.model_version }} {{ task.span }}",
        queue=TRAINING_QUEUE,
        conn_id=SNOWFLAKE_CONN_ID,
        features_table=FEATURES_TABLE,
        features_layout=FEATURES_LAYOUT,
        feedback_table=FEEDBACK_TABLE,
        evaluations_table=EVALUATIONS_TABLE,
        wandb_conn_id=WANDB_CONN_ID,
    ).expand_kwargs(decided)

    @task
    def promote(
        evaluations: list[dict[str, Any]],
        params: dict[str, Any],
        dag_run: Any = None,
        ti: Any = None,
    ) -> dict[str, Any]:
        """Move ``production`` when the candidate is at least as good (or forced); record who, what and why."""
        from airflow_provider_snowstorm.core.evaluation import compare_evaluations
        from airflow_provider_snowstorm.hooks.wandb import WandbHook
        from airflow_provider_snowstorm.registry import PRODUCTION_ALIAS

        planned = ti.xcom_pull(task_ids="plan", key="plan")
        results = evaluations[:]
        by_version = {e["model_version"]: e for e in results if e["span"] == "backtest"}
        live = {e["span"]: e for e in results if e["span"] != "backtest"}
        champion, candidate = planned["champion"], planned["candidate"]
        metric_names = ("f1", "precision", "recall", "false_alarms_per_month", "average_precision")
        summary = {v: {k: by_version[v][k] for k in metric_names} for v in by_version}
        if champion == candidate:
            accepted, comparison = True, f"{candidate} is already in production"
        else:
            accepted, comparison = compare_evaluations(
                by_version[champion] if champion else None, by_version[candidate]
            )
        decision = {
            "model_name": planned["model_name"],
            "category": params["category"],
            "from": champion,
            "to": candidate,
            "accepted": accepted,
            "forced": bool(params["force"]) and not accepted,
            "comparison": comparison,
            "span": f"{planned['window_start']}..{planned['window_end']}",
            # The shadow period beside the champion (shown, not decisive: usually a few weeks and few incidents).
            "shadow_comparison": None
            if len(live) < 2
            else f"{live['shadow']['span_start']}..{live['shadow']['span_end']}: "
            + compare_evaluations(live["production"], live["shadow"])[1],
            "metrics": summary,
            "by": dag_run.triggering_user_name or "unknown",
            "reason": params["reason"],
            "dag_id": dag_run.dag_id,
            "dag_run_id": dag_run.run_id,
        }
        ti.xcom_push(key="decision", value=decision)
        if not accepted and not params["force"]:
            # Skipped, not failed: nothing went wrong, the candidate was judged; the decision stays in XCom.
            raise AirflowSkipException(
                f"refused to promote {planned['model_name']} {candidate}: {comparison}; trigger again with "
                '"force": true to promote it anyway'
            )
        hook = WandbHook(wandb_conn_id=WANDB_CONN_ID)
        registry = hook.registry
        history = registry.alias_history(planned["model_name"])
        if not (
            history
            and history[-1].get("dag_run_id") == dag_run.run_id
            and history[-1]["version"] == candidate
        ):
            # Not moved by an earlier try of this run: move it now (a retry records nothing twice).
            registry.move_alias(planned["model_name"], PRODUCTION_ALIAS, candidate, record=decision)
            with hook.start_run(
                f"promote-{params['category']}", group=dag_run.run_id, job_type="promote", config=decision
            ):
                pass
        return decision

    promote(evaluated.output)
