"""The prediction write path under contention, on a real PostgreSQL server (started by scripts/postgres.sh).

Two scoring tasks of the same window at once leave exactly one set of rows; a scoring task SIGKILLed in the middle
of its write leaves the previous rows intact, and a rerun completes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_snowstorm.operators.score import BatchScoreOperator
from airflow_provider_snowstorm.operators.train import DecomposeIsolationForestOperator
from tests.operators.conftest import FEATURES_TABLE

pytestmark = pytest.mark.postgres
REPO_ROOT = Path(__file__).resolve().parents[2]
WINDOW = ("2025-07-12", "2025-07-18")


@pytest.fixture
def trained(features_db: Path, wandb_offline: dict[str, Path], context: dict[str, Any]) -> None:
    DecomposeIsolationForestOperator(
        task_id="train",
        series="compute",
        conn_id="features_db",
        features_table=FEATURES_TABLE,
        training_end="2025-06-30",
        detector_params={"random_state": 0},
    ).execute(context)


def scorer(results_conn_id: str) -> BatchScoreOperator:
    return BatchScoreOperator(
        task_id="score",
        series="compute",
        conn_id="features_db",
        features_table=FEATURES_TABLE,
        window_start=WINDOW[0],
        window_end=WINDOW[1],
        results_table="PREDICTIONS",
        results_conn_id=results_conn_id,
        log_to_wandb=False,
    )


def rows(conn_id: str) -> pd.DataFrame:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    records = PostgresHook(postgres_conn_id=conn_id).get_records(
        "SELECT usage_date, series, model_version, scored_at FROM PREDICTIONS ORDER BY usage_date, scored_at"
    )
    return pd.DataFrame(records, columns=["usage_date", "series", "model_version", "scored_at"])


class PausingConnection:
    """A DB-API connection whose cursors wait at ``barrier`` right after their DELETE (a scheduling worst case)."""

    def __init__(self, conn: Any, barrier: threading.Barrier) -> None:
        object.__setattr__(self, "_conn", conn)
        object.__setattr__(self, "_barrier", barrier)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._conn, name, value)

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        cursor, barrier = self._conn.cursor(*args, **kwargs), self._barrier

        class Cursor:
            def __getattr__(self, name: str) -> Any:
                return getattr(cursor, name)

            def execute(self, sql: str, *params: Any) -> Any:
                result = cursor.execute(sql, *params)
                if sql.lstrip().upper().startswith("DELETE"):
                    # Both writers meet here unless the first one's lock keeps the second out.
                    with contextlib.suppress(threading.BrokenBarrierError):
                        barrier.wait(timeout=2)
                return result

        return Cursor()


def test_concurrent_scoring_of_the_same_window_leaves_one_set_of_rows(
    trained: None, postgres_conn_id: str, context: dict[str, Any], mocker: Any
) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    scorer(postgres_conn_id).execute(context)  # yesterday's rows, to be replaced
    barrier = threading.Barrier(2)
    get_conn = PostgresHook.get_conn
    mocker.patch.object(
        PostgresHook,
        "get_conn",
        autospec=True,
        side_effect=lambda hook: PausingConnection(get_conn(hook), barrier),
    )
    errors: list[BaseException] = []

    def score() -> None:
        try:
            scorer(postgres_conn_id).execute(context)
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=score) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)

    assert errors == []
    stored = rows(postgres_conn_id)
    assert len(stored) == 7
    assert not stored.duplicated(["usage_date", "series"]).any()
    assert stored["scored_at"].nunique() == 1  # one writer's complete set, not a mix


CHILD = textwrap.dedent(
    """
    import sys, time
    from types import SimpleNamespace

    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from tests.operators.test_postgres_contention import scorer

    get_conn = PostgresHook.get_conn


    class Connection:
        def __init__(self, conn):
            object.__setattr__(self, "_conn", conn)

        def __getattr__(self, name):
            return getattr(self._conn, name)

        def __setattr__(self, name, value):
            setattr(self._conn, name, value)

        def cursor(self, *args, **kwargs):
            cursor = self._conn.cursor(*args, **kwargs)

            class Cursor:
                def __getattr__(self, name):
                    return getattr(cursor, name)

                def executemany(self, sql, rows):
                    cursor.execute(sql, rows[0])  # the delete ran, the first new row is in: mid-write
                    print("MID-WRITE", flush=True)
                    time.sleep(600)

            return Cursor()


    PostgresHook.get_conn = lambda hook: Connection(get_conn(hook))
    context = {
        "run_id": "manual__2025-07-02T00:00:00+00:00",
        "dag": SimpleNamespace(dag_id="snowstorm_test"),
        "ti": SimpleNamespace(map_index=-1, xcom_push=lambda **kwargs: None),
    }
    scorer(sys.argv[1]).execute(context)
    """
)


def test_a_writer_killed_mid_write_leaves_the_previous_rows_and_a_rerun_completes(
    trained: None, postgres_conn_id: str, context: dict[str, Any]
) -> None:
    scorer(postgres_conn_id).execute(context)
    before = rows(postgres_conn_id)
    assert len(before) == 7

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, postgres_conn_id],
        cwd=REPO_ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = ""
        for line in child.stdout:  # waits for the marker
            if line.strip() == "MID-WRITE":
                break
        assert line.strip() == "MID-WRITE", "the child never reached the middle of its write"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    pd.testing.assert_frame_equal(rows(postgres_conn_id), before)
    scorer(postgres_conn_id).execute(
        context
    )  # the rerun takes the table lock the dead writer held, and completes
    after = rows(postgres_conn_id)
    assert len(after) == 7
    assert after["scored_at"].iloc[0] > before["scored_at"].iloc[0]
