"""The plugin's app as the API server mounts it: offline run pages and the cost anomaly report, only for
authenticated users, and only files from the run and report folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from airflow_provider_snowstorm.links.wandb import PLUGIN_URL_PREFIX
from airflow_provider_snowstorm.plugins import snowstorm
from tests.plugins.conftest import OfflineRunFixture

PNG = (  # a 1x1 PNG
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture
def report_dir(tmp_path: Path, offline_run: OfflineRunFixture, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A report as the notifier writes it, linking to the offline run's W&B URL, and its chart."""
    (tmp_path / "anomaly_report.md").write_text(
        "# Snowflake spend anomalies: 1 incident, est. extra cost +1,698.00 USD\n\n"
        "| Account | Usage type | Extra |\n|---|---|--:|\n| PROD | compute | +1,698.00 USD |\n\n"
        f"[training run](https://wandb.example.com/acme/snowstorm/runs/{offline_run.run_id})\n\n"
        "![Anomalies](anomaly_chart.png)\n"
    )
    (tmp_path / "anomaly_chart.png").write_bytes(PNG)
    (tmp_path / "secret.txt").write_text("not served")
    monkeypatch.setenv("SNOWSTORM_REPORT_PATH", str(tmp_path))
    return tmp_path


@pytest.fixture
def airflow_app(offline_run: OfflineRunFixture, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """The plugin app mounted under its prefix, as Airflow's API server mounts it; the W&B connection's run_dir."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_WANDB_DEFAULT",
        f'{{"conn_type": "wandb", "extra": {{"mode": "offline", "run_dir": "{offline_run.run_dir}"}}}}',
    )
    root = FastAPI()
    root.mount(PLUGIN_URL_PREFIX, snowstorm.create_app())
    return root


@pytest.fixture
def token(airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A real JWT from Airflow's simple auth manager, as ``/auth/token`` hands it out (checked against the DB's
    revoked tokens, hence the migrated database)."""
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    monkeypatch.setenv(
        "AIRFLOW__CORE__AUTH_MANAGER",
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    )
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "snowstorm-plugin-test-" + "x" * 64)
    manager = init_auth_manager()
    return manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))


@pytest.fixture
def client(airflow_app: FastAPI, token: str) -> TestClient:
    return TestClient(airflow_app, headers={"Authorization": f"Bearer {token}"})


PATHS = ["/snowstorm/runs/", "/snowstorm/anomalies/", "/snowstorm/anomalies/anomaly_chart.png"]


@pytest.mark.parametrize("path", PATHS)
def test_anonymous_requests_are_refused(airflow_app: FastAPI, report_dir: Path, path: str) -> None:
    response = TestClient(airflow_app).get(path)
    assert response.status_code == 401


def test_anonymous_run_page_is_refused(airflow_app: FastAPI, offline_run: OfflineRunFixture) -> None:
    client = TestClient(airflow_app)
    assert client.get(f"/snowstorm/runs/{offline_run.run_id}").status_code == 401


def test_a_forged_token_is_refused(airflow_app: FastAPI, token: str) -> None:
    response = TestClient(airflow_app).get("/snowstorm/runs/", headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_code in (401, 403)


def test_the_ui_session_cookie_is_accepted(
    airflow_app: FastAPI, offline_run: OfflineRunFixture, token: str
) -> None:
    client = TestClient(airflow_app, cookies={"_token": token})
    assert client.get(f"/snowstorm/runs/{offline_run.run_id}").status_code == 200


def test_run_page_from_the_connections_run_dir(client: TestClient, offline_run: OfflineRunFixture) -> None:
    page = client.get(f"/snowstorm/runs/{offline_run.run_id}")
    assert page.status_code == 200, page.text
    for text in ("train-compute", "anomaly_threshold", "0.66", "721", "snowstorm-compute", "detector.period"):
        assert text in page.text
    images = [part.split("'")[0] for part in page.text.split("src='")[1:]]
    assert len(images) == 1
    image = client.get(f"/snowstorm/runs/{images[0]}")  # relative to the run page
    assert image.status_code == 200
    assert image.content.startswith(b"\x89PNG")
    assert f"href='{offline_run.run_id}'" in client.get("/snowstorm/runs/").text


def test_runs_come_from_the_example_dags_w_and_b_connection(
    client: TestClient, offline_run: OfflineRunFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SNOWSTORM_WANDB_CONN_ID`` names the connection the example DAGs write runs with: the pages read it too."""
    monkeypatch.setenv("SNOWSTORM_WANDB_CONN_ID", "wandb_team")
    monkeypatch.setenv(
        "AIRFLOW_CONN_WANDB_TEAM", f'{{"conn_type": "wandb", "extra": {{"run_dir": "{tmp_path}"}}}}'
    )
    assert client.get(f"/snowstorm/runs/{offline_run.run_id}").status_code == 404
    assert "No offline runs yet." in client.get("/snowstorm/runs/").text


def test_unknown_runs_and_files_outside_the_folders_are_not_served(
    client: TestClient, report_dir: Path, offline_run: OfflineRunFixture
) -> None:
    assert client.get("/snowstorm/runs/nosuchrun").status_code == 404
    assert client.get(f"/snowstorm/runs/{offline_run.run_id}/images/..%2F..%2Frun.png").status_code == 404
    assert client.get("/snowstorm/anomalies/..%2Fsecret.png").status_code == 404
    assert client.get("/snowstorm/anomalies/anomaly_report.md").status_code == 404
    assert client.get("/snowstorm/anomalies/secret.txt").status_code == 404


def test_cost_anomalies_page_renders_the_latest_report(
    client: TestClient, report_dir: Path, offline_run: OfflineRunFixture
) -> None:
    page = client.get("/snowstorm/anomalies/")
    assert page.status_code == 200
    assert "<h1>Snowflake spend anomalies: 1 incident" in page.text
    assert "<td>PROD</td>" in page.text
    assert (
        f'<a href="../runs/{offline_run.run_id}">training run</a>' in page.text
    )  # kept offline: its local page
    assert '<img src="anomaly_chart.png"' in page.text
    chart = client.get("/snowstorm/anomalies/anomaly_chart.png")
    assert chart.status_code == 200
    assert chart.content == PNG


def test_report_path_may_name_the_report_file(
    client: TestClient, report_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNOWSTORM_REPORT_PATH", str(report_dir / "anomaly_report.md"))
    assert "<td>PROD</td>" in client.get("/snowstorm/anomalies/").text
    assert client.get("/snowstorm/anomalies/anomaly_chart.png").content == PNG


def test_cost_anomalies_page_without_a_report(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SNOWSTORM_REPORT_PATH", raising=False)
    page = client.get("/snowstorm/anomalies/")
    assert page.status_code == 200
    assert "No report yet" in page.text
