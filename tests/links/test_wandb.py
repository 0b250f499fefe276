"""The "W&B Run" extra link: XCom lookup per map index, and the worker storing it after a real ``dag.test()``."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
from airflow.sdk.execution_time.comms import GetXCom, XComResult
from airflow.sdk.types import TaskInstanceKey

from airflow_provider_snowstorm.links.wandb import WANDB_RUN_URL_XCOM_KEY, WandbRunLink, push_wandb_run_url

RUN_URL = "https://wandb.example.com/acme/spend/runs/abc123"


@pytest.fixture
def mock_supervisor_comms(mocker: Any) -> MagicMock:
    """What Airflow's own provider tests patch: the task runner's channel to the supervisor."""
    return mocker.patch("airflow.sdk.execution_time.task_runner.SUPERVISOR_COMMS", create=True)


def ti_key(map_index: int = -1) -> TaskInstanceKey:
    return TaskInstanceKey(dag_id="d", task_id="t", run_id="r", try_number=1, map_index=map_index)


def test_link_is_named_for_the_ui() -> None:
    assert WandbRunLink().name == "W&B Run"
    assert WandbRunLink().xcom_key == "_link_WandbRunLink"


@pytest.mark.parametrize("map_index", [-1, 0, 3])
def test_get_link_returns_the_pushed_url_of_that_map_index(
    mock_supervisor_comms: MagicMock, map_index: int
) -> None:
    mock_supervisor_comms.send.return_value = XComResult(key=WANDB_RUN_URL_XCOM_KEY, value=RUN_URL)

    url = WandbRunLink().get_link(MagicMock(), ti_key=ti_key(map_index))

    assert url == RUN_URL
    request = mock_supervisor_comms.send.call_args.args[0]
    assert isinstance(request, GetXCom)
    assert (request.key, request.dag_id, request.task_id, request.run_id, request.map_index) == (
        WANDB_RUN_URL_XCOM_KEY,
        "d",
        "t",
        "r",
        map_index,
    )


def test_get_link_is_empty_when_nothing_was_pushed(mock_supervisor_comms: MagicMock) -> None:
    mock_supervisor_comms.send.return_value = XComResult(key=WANDB_RUN_URL_XCOM_KEY, value=None)

    assert WandbRunLink().get_link(MagicMock(), ti_key=ti_key()) == ""


def test_push_stores_the_url_under_the_link_key() -> None:
    ti = MagicMock()

    push_wandb_run_url({"ti": ti}, RUN_URL)

    ti.xcom_push.assert_called_once_with(key=WANDB_RUN_URL_XCOM_KEY, value=RUN_URL)


def test_push_records_an_empty_url_when_it_is_unknown() -> None:
    """So get_link finds the key (no "XCom not found" error on a successful task) and shows no link."""
    ti = MagicMock()

    push_wandb_run_url({"ti": ti}, None)

    ti.xcom_push.assert_called_once_with(key=WANDB_RUN_URL_XCOM_KEY, value="")


def test_push_accepts_the_local_run_page() -> None:
    ti = MagicMock()

    push_wandb_run_url({"ti": ti}, "/snowstorm/runs/abc123")

    ti.xcom_push.assert_called_once_with(key=WANDB_RUN_URL_XCOM_KEY, value="/snowstorm/runs/abc123")


def test_local_run_url_is_relative_to_the_api_server_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_snowstorm.links.wandb import local_run_url

    monkeypatch.delenv("AIRFLOW__API__BASE_URL", raising=False)
    assert local_run_url("abc123") == "/snowstorm/runs/abc123"
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/team/")
    assert local_run_url("abc123") == "https://airflow.example.com/team/snowstorm/runs/abc123"


def test_push_rejects_a_non_http_url() -> None:
    with pytest.raises(ValueError, match="http"):
        push_wandb_run_url({"ti": MagicMock()}, "javascript:alert(1)")


def test_link_is_registered_with_the_providers_manager() -> None:
    from airflow.providers_manager import ProvidersManager

    assert "airflow_provider_snowstorm.links.wandb.WandbRunLink" in ProvidersManager().extra_links_class_names


DAG_FILE = textwrap.dedent(
    """
    import datetime

    from airflow.sdk import DAG, BaseOperator

    from airflow_provider_snowstorm.links.wandb import WandbRunLink, push_wandb_run_url


    class PushRunUrlOperator(BaseOperator):
        operator_extra_links = (WandbRunLink(),)

        def __init__(self, *, url: str, **kwargs):
            super().__init__(**kwargs)
            self.url = url

        def execute(self, context):
            push_wandb_run_url(context, self.url)


    with DAG("snowstorm_wandb_link_test", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:
        PushRunUrlOperator.partial(task_id="train").expand(url=URLS)
    """
)


def test_dag_test_stores_one_link_per_map_index(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow import settings
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    urls = [f"https://wandb.example.com/acme/spend/runs/run{index}" for index in range(3)]
    dag_file = tmp_path / "dags" / "wandb_link_dag.py"
    dag_file.parent.mkdir()
    dag_file.write_text(f"URLS = {urls!r}\n{DAG_FILE}")
    # dag.test() only runs a DAG serialised from the dags folder; settings caches the folder at import.
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(dag_file.parent))
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(dag_file.parent))
    spec = importlib.util.spec_from_file_location("wandb_link_dag", dag_file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    dag_run = module.dag.test()

    assert dag_run.state == "success"
    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == "snowstorm_wandb_link_test",
                XComModel.run_id == dag_run.run_id,
                XComModel.key == "_link_WandbRunLink",
            )
        ).all()
        links = {row.map_index: XComModel.deserialize_value(row) for row in rows}
    assert links == dict(enumerate(urls))
