"""The plugin's HTML, without a server: what a person reads, escaped, with links that lead somewhere."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_snowstorm.plugins.offline_runs import OfflineRun
from airflow_provider_snowstorm.plugins.pages import report_page, run_page, runs_page

REPORT = """# Snowflake spend anomalies: 1 incident

| Account | Usage type | Extra |
|---|---|--:|
| PROD | compute | +1,698.00 USD |

<script>alert(1)</script>

![Anomalies](anomaly_chart.png)

| Category | Training run | Scoring run |
|---|---|---|
| compute | [training run]({W}/abc123) | [scoring run]({W}/zzz999) |
""".replace("{W}", "https://wandb.example.com/acme/snowstorm/runs")


def test_report_renders_tables_and_chart_and_escapes_raw_html() -> None:
    page = report_page(REPORT, Path("/reports/anomaly_report.md"), local_runs=set())

    assert "<h1>Snowflake spend anomalies: 1 incident</h1>" in page
    assert "<td>PROD</td>" in page
    assert '<img src="anomaly_chart.png" alt="Anomalies"' in page
    assert "<script>" not in page
    assert "/reports/anomaly_report.md" in page


def test_report_links_to_runs_kept_offline_here_open_their_local_page() -> None:
    """W&B holds nothing of an offline run until ``wandb sync``: its local page, relative to /snowstorm/anomalies/."""
    page = report_page(REPORT, Path("anomaly_report.md"), local_runs={"abc123"})

    assert '<a href="../runs/abc123">training run</a>' in page
    assert (
        '<a href="https://wandb.example.com/acme/snowstorm/runs/zzz999">scoring run</a>' in page
    )  # not here


def test_run_page_shows_model_metrics_charts_and_flat_config(tmp_path: Path) -> None:
    run = OfflineRun(
        run_id="abc123",
        folder=tmp_path / "offline-run-20260101_000000-abc123",
        name="train-compute",
        config={"model_name": "snowstorm-compute", "detector": {"period": 7}, "note": "<b>x</b>"},
        summary={"anomaly_threshold": 0.66, "_step": 3, "decomposition": {"_type": "image-file"}},
        artifacts=[{"name": "snowstorm-compute", "aliases": ["latest", "v0"], "digest": "0123456789abcdef"}],
        images=[tmp_path / "decomposition_0_5f1e.png"],
    )
    page = run_page(run)

    assert "<title>train-compute</title>" in page
    assert "<th>snowstorm-compute</th><td>latest, v0  0123456789ab</td>" in page
    assert "<th>anomaly_threshold</th><td>0.66</td>" in page
    assert "_step" not in page
    assert "<th>detector.period</th><td>7</td>" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert (
        "<h3>decomposition</h3><img alt='decomposition_0_5f1e' src='abc123/images/decomposition_0_5f1e.png'>"
        in page
    )
    assert f"wandb sync {run.folder}" in page
    assert "· running ·" in page  # no exit record yet: the task is still writing it
    run.finished = True
    assert "· finished ·" in run_page(run)


def test_runs_page_links_each_run_by_id(tmp_path: Path) -> None:
    page = runs_page([tmp_path / "offline-run-20260101_000000-abc123"])

    assert "<a href='abc123'>offline-run-20260101_000000-abc123</a>" in page
    assert "No offline runs yet." in runs_page([])
