"""The provider's plugin app: offline W&B run pages and the cost anomaly report, only for authenticated users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from airflow_provider_snowstorm.plugins import snowstorm

PNG = (  # a 1x1 PNG
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A real offline run written by the hook: config, metrics, a decomposition chart. Returns (run_dir, id, link)."""
    import matplotlib.pyplot as plt

    from airflow_provider_snowstorm.hooks.wandb import WandbHook

    run_dir = tmp_path_factory.mktemp("wandb-runs")
    hook = WandbHook(mode="offline", run_dir=run_dir, model_store=run_dir / "store", project="snowstorm")
    figure, axis = plt.subplots()
    axis.plot([1, 2, 3])
    with hook.start_run(
        "train-compute",
        group="manual__1",
        job_type="train",
        config={"series": "compute", "model_name": "m-1"},
    ) as run:
        hook.log_metrics({"anomaly_threshold": 0.66, "training_days": 721})
        hook.log_image("decomposition", figure)
        link = hook.link_url(run)
        run_id = run.id
    plt.close(figure)
    return run_dir, run_id, link


@pytest.fixture
def report_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "anomaly_report.md").write_text(
        "# Snowflake spend anomalies: 1 incident, est. extra cost +1,698.00 USD\n\n"
        "| Account | Usage type | Extra |\n|---|---|--:|\n| PROD | compute | +1,698.00 USD |\n\n"
        "<script>alert(1)</script>\n\n![Anomalies](anomaly_chart.png)\n"
    )
    (tmp_path / "anomaly_chart.png").write_bytes(PNG)
    monkeypatch.setenv("SNOWSTORM_REPORT_PATH", str(tmp_path))
    return tmp_path


@pytest.fixture
def airflow_app(offline_run: tuple[Path, str, str], monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """The plugin app mounted under its prefix, as Airflow's API server mounts it."""
    monkeypatch.setattr(snowstorm, "run_dir", lambda: str(offline_run[0]))
    root = FastAPI()
    root.mount(snowstorm.URL_PREFIX, snowstorm.create_app())
    return root


@pytest.fixture
def token(airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
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


PATHS = ["/snowstorm/runs/", "/snowstorm/anomalies/", "/snowstorm/anomalies/anomaly_chart.png"]


@pytest.mark.parametrize("path", PATHS)
def test_anonymous_requests_are_refused(airflow_app: FastAPI, report_dir: Path, path: str) -> None:
    response = TestClient(airflow_app).get(path)
    assert response.status_code == 401


def test_anonymous_run_page_is_refused(airflow_app: FastAPI, offline_run: tuple[Path, str, str]) -> None:
    client = TestClient(airflow_app)
    assert client.get(f"/snowstorm/runs/{offline_run[1]}").status_code == 401


def test_a_forged_token_is_refused(airflow_app: FastAPI, token: str) -> None:
    response = TestClient(airflow_app).get("/snowstorm/runs/", headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_code in (401, 403)


def test_run_page_shows_config_metrics_and_charts(
    airflow_app: FastAPI, offline_run: tuple[Path, str, str], token: str
) -> None:
    _, run_id, _ = offline_run
    client = TestClient(airflow_app, headers={"Authorization": f"Bearer {token}"})
    page = client.get(f"/snowstorm/runs/{run_id}")
    assert page.status_code == 200, page.text
    for text in ("train-compute", "anomaly_threshold", "0.66", "training_days", "721", "model_name", "m-1"):
        assert text in page.text
    images = [part.split("'")[0] for part in page.text.split("src='")[1:]]
    assert len(images) == 1
    assert "decomposition" in images[0]
    image = client.get(f"/snowstorm/runs/{images[0]}")
    assert image.status_code == 200
    assert image.content.startswith(b"\x89PNG")
    assert run_id in client.get("/snowstorm/runs/").text


def test_the_ui_session_cookie_is_accepted(
    airflow_app: FastAPI, offline_run: tuple[Path, str, str], token: str
) -> None:
    client = TestClient(airflow_app, cookies={"_token": token})
    assert client.get(f"/snowstorm/runs/{offline_run[1]}").status_code == 200


def test_offline_link_opens_the_local_run_page(offline_run: tuple[Path, str, str]) -> None:
    _, run_id, link = offline_run
    assert link == f"/snowstorm/runs/{run_id}"


def test_online_link_is_w_and_b_run_page() -> None:
    from types import SimpleNamespace

    from airflow_provider_snowstorm.hooks.wandb import WandbHook

    run = SimpleNamespace(url="https://wandb.example.com/team/snowstorm/runs/abc123", id="abc123")
    assert WandbHook(mode="offline").link_url(run) == run.url


def test_unknown_runs_and_paths_outside_the_folders_are_not_served(
    airflow_app: FastAPI, report_dir: Path, token: str
) -> None:
    client = TestClient(airflow_app, headers={"Authorization": f"Bearer {token}"})
    assert client.get("/snowstorm/runs/nosuchrun").status_code == 404
    assert client.get("/snowstorm/anomalies/..%2Fsecret.png").status_code == 404
    assert client.get("/snowstorm/anomalies/anomaly_report.md").status_code == 404


def test_cost_anomalies_page_renders_the_latest_report(
    airflow_app: FastAPI, report_dir: Path, token: str
) -> None:
    client = TestClient(airflow_app, headers={"Authorization": f"Bearer {token}"})
    page = client.get("/snowstorm/anomalies/")
    assert page.status_code == 200
    assert "<h1>Snowflake spend anomalies: 1 incident" in page.text
    assert "<td>PROD</td>" in page.text
    assert "<table>" in page.text
    assert "<script>" not in page.text  # raw HTML in the markdown is escaped
    assert '<img src="anomaly_chart.png"' in page.text
    chart = client.get("/snowstorm/anomalies/anomaly_chart.png")
    assert chart.status_code == 200
    assert chart.content == PNG


def test_cost_anomalies_page_without_a_report(airflow_app: FastAPI, token: str, monkeypatch) -> None:
    monkeypatch.delenv("SNOWSTORM_REPORT_PATH", raising=False)
    client = TestClient(airflow_app, headers={"Authorization": f"Bearer {token}"})
    page = client.get("/snowstorm/anomalies/")
    assert page.status_code == 200
    assert "No report yet" in page.text
