"""Backfills on the embedded default: Airflow's own ``airflow backfill create``, its runs executed in this process.

``airflow backfill create`` (the command the README shows, run here as is) records a backfill and creates one queued
DAG run per scheduled date, as it does in production, where the scheduler then runs them. The local set-up has no
scheduler, so ``run_backfill`` executes those runs in process the way ``dag.test()`` executes its own run: the same
task code, the same XComs and metadata database, one run after the other.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

__all__ = ["backfill_command", "run_backfill"]


def backfill_command(dag_id: str, start: date, end: date, conf: Mapping[str, Any] | None = None) -> list[str]:
    """``airflow backfill create`` for ``dag_id`` from ``start`` to ``end`` (inclusive), with a run conf.

    Days that already have a finished run are run again (``--reprocess-behavior completed``): scoring replaces its
    rows, so re-running a backfill is idempotent.
    """
    command = ["airflow", "backfill", "create", "--dag-id", dag_id]
    command += [
        "--from-date",
        start.isoformat(),
        "--to-date",
        end.isoformat(),
        "--reprocess-behavior",
        "completed",
    ]
    if conf:
        command += ["--dag-run-conf", json.dumps(dict(conf), separators=(",", ":"))]
    return command


def run_backfill(
    dag_id: str, dags_folder: Path, start: date, end: date, conf: Mapping[str, Any] | None = None
) -> list[Any]:
    """Create the backfill with Airflow's CLI, then execute its runs here, oldest first; return the finished runs."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.backfill import Backfill
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dag = DagBag(dag_folder=str(dags_folder)).get_dag(dag_id)
    # A backfill created earlier and never run (no scheduler here) would block a new one: run it first, as the
    # scheduler would have.
    with create_session() as session:
        pending = session.scalars(
            select(Backfill.id).where(Backfill.dag_id == dag_id, Backfill.completed_at.is_(None))
        ).all()
    for backfill_id in pending:
        _run_backfill_runs(dag, backfill_id)
    command = backfill_command(dag_id, start, end, conf)
    executable = [str(Path(sys.executable).parent / command[0]), *command[1:]]  # the venv's own airflow
    created = subprocess.run(executable, capture_output=True, text=True, check=False)  # noqa: S603
    if created.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {created.stderr[-2000:] or created.stdout[-2000:]}")
    with create_session() as session:
        backfill_id = session.scalar(
            select(Backfill.id).where(Backfill.dag_id == dag_id).order_by(Backfill.id.desc()).limit(1)
        )
    return _run_backfill_runs(dag, backfill_id)


def _run_backfill_runs(dag: Any, backfill_id: int) -> list[Any]:
    """Execute a backfill's unfinished runs, oldest first, and mark it completed; return its runs."""
    from airflow.models.backfill import Backfill
    from airflow.models.dagrun import DagRun
    from airflow.sdk import timezone
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    with create_session() as session:
        runs = session.execute(
            select(DagRun.run_id, DagRun.state)
            .where(DagRun.backfill_id == backfill_id)
            .order_by(DagRun.logical_date)
        ).all()
    finished = [
        _execute_run(dag, run_id)
        if state not in (DagRunState.SUCCESS, DagRunState.FAILED)
        else _load_run(dag, run_id)
        for run_id, state in runs
    ]
    with create_session() as session:
        session.get(Backfill, backfill_id).completed_at = timezone.utcnow()
    return finished


def _load_run(dag: Any, run_id: str) -> Any:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id).one()
        session.expunge(run)
        return run


def _execute_run(dag: Any, run_id: str) -> Any:
    """Run every task of an existing DAG run in dependency order, as ``dag.test()`` runs its own (no scheduler)."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.state import DagRunState, TaskInstanceState

    session = settings.Session()
    run = session.query(DagRun).filter(DagRun.dag_id == dag.dag_id, DagRun.run_id == run_id).one()
    run.dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))  # the scheduler's view
    run.state = DagRunState.RUNNING
    session.commit()
    while run.state == DagRunState.RUNNING:
        session.expire_all()
        schedulable, _ = run.update_state(session=session)
        for ti in schedulable:
            ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        for ti in [
            ti for ti in run.get_task_instances(session=session) if ti.state == TaskInstanceState.SCHEDULED
        ]:
            _run_task(ti=ti, task=dag.task_dict[ti.task_id])
    session.close()
    return run
