"""The provider's Airflow plugin: offline W&B runs and the latest cost anomaly report, inside the Airflow UI.

Shipped through the ``plugins`` entry of ``get_provider_info`` (Airflow loads provider plugins on the API server).
It mounts a FastAPI app under ``/snowstorm``:

- ``/snowstorm/runs/`` and ``/snowstorm/runs/{run_id}``: the offline runs in the W&B connection's ``run_dir`` (config,
  summary metrics, logged images such as the decomposition and score charts, the model artifact); offline, the
  "W&B Run" button of training and scoring tasks opens this page;
- ``/snowstorm/anomalies/``: the latest report in ``SNOWSTORM_REPORT_PATH`` with its chart, also a "Cost anomalies"
  entry of the UI's navigation (an ``external_views`` page).

Plugin routes are not protected by Airflow: every route here requires an authenticated Airflow user (the UI's
``_token`` cookie or a bearer token from ``/auth/token``) through Airflow's own ``get_user`` dependency.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from airflow_provider_snowstorm.plugins.offline_runs import find_run, list_runs, read_run

__all__ = ["SnowstormPlugin", "create_app"]

URL_PREFIX = "/snowstorm"
REPORT_PATH_VARIABLE = "SNOWSTORM_REPORT_PATH"
REPORT_FILE = "anomaly_report.md"
_PNG = re.compile(r"^[\w.-]+\.png$")
_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:1200px;color:#1a202c}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #cbd5e0;padding:.25rem .5rem;text-align:left}
img{max-width:100%;border:1px solid #e2e8f0;margin:.5rem 0}code{background:#edf2f7;padding:0 .2rem}
"""


def run_dir() -> str:
    """The W&B connection's ``run_dir`` (the default connection, as the operators use it), else the default."""
    try:
        from airflow_provider_snowstorm.hooks.wandb import WandbHook

        return WandbHook().settings.run_dir
    except Exception:
        from airflow_provider_snowstorm.utils.paths import default_run_dir

        return default_run_dir()


def report_dir() -> Path | None:
    configured = os.environ.get(REPORT_PATH_VARIABLE)
    if not configured:
        return None
    path = Path(configured).expanduser()
    return path.parent if path.suffix == ".md" else path


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _table(rows: dict[str, Any]) -> str:
    if not rows:
        return "<p>(none)</p>"
    cells = "".join(
        f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>"
        for key, value in rows.items()
    )
    return f"<table>{cells}</table>"


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def render_markdown(text: str) -> str:
    """The report's markdown as HTML (tables included); raw HTML in the markdown is escaped."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


async def require_user(request: Request) -> Any:
    """Airflow's own ``get_user`` (bearer token, else the UI's ``_token`` cookie; 401/403 otherwise).

    Imported on the first request: every Airflow process loads plugins, only the API server serves them, and the
    API's security module costs seconds to import.
    """
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    return await get_user(request, _oauth_token=None, bearer_credentials=await bearer_scheme(request))


def create_app() -> FastAPI:
    app = FastAPI(
        title="Snowstorm",
        description="Offline W&B runs and cost anomaly reports of the Snowstorm provider.",
        dependencies=[Depends(require_user)],  # plugin routes are public unless they ask for a user
    )

    @app.get("/runs/", response_class=HTMLResponse)
    def runs() -> HTMLResponse:
        folders = list_runs(run_dir())
        items = "".join(
            f"<li><a href='{html.escape(folder.name.rsplit('-', 1)[-1])}'>{html.escape(folder.name)}</a></li>"
            for folder in folders
        )
        return _page("Offline W&B runs", f"<ul>{items}</ul>" if items else "<p>No offline runs yet.</p>")

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(run_id: str) -> HTMLResponse:
        folder = find_run(run_dir(), run_id)
        if folder is None:
            raise HTTPException(status_code=404, detail=f"No offline W&B run {run_id!r}")
        run = read_run(folder)
        model = {f"{a['name']}": f"{', '.join(a['aliases'])}  {a['digest'][:12]}" for a in run.artifacts}
        for key in ("model_name", "model_version", "model_alias"):
            if key in run.config:
                model[key] = run.config[key]
        images = "".join(
            f"<h3>{html.escape(path.stem.rsplit('_', 2)[0])}</h3>"
            f"<img alt='{html.escape(path.stem)}' src='{html.escape(run_id)}/images/{html.escape(path.name)}'>"
            for path in run.images
        )
        body = (
            f"<p>Run <code>{html.escape(run.run_id)}</code> · project {html.escape(run.project)} · "
            f"group {html.escape(run.group)} · job {html.escape(run.job_type)} · offline (upload it with "
            f"<code>wandb sync {html.escape(str(folder))}</code>)</p>"
            f"<h2>Model</h2>{_table(model)}<h2>Summary metrics</h2>{_table(run.metrics)}"
            f"<h2>Charts</h2>{images or '<p>No images logged.</p>'}"
            f"<h2>Config</h2>{_table(_flatten(run.config))}"
        )
        return _page(run.name or run.run_id, body)

    @app.get("/runs/{run_id}/images/{name}")
    def run_image(run_id: str, name: str) -> FileResponse:
        folder = find_run(run_dir(), run_id)
        path = folder / "files" / "media" / "images" / name if folder and _PNG.match(name) else None
        if path is None or not path.is_file():
            raise HTTPException(status_code=404, detail="No such image")
        return FileResponse(path, media_type="image/png")

    @app.get("/anomalies/", response_class=HTMLResponse)
    def anomalies() -> HTMLResponse:
        folder = report_dir()
        report = folder / REPORT_FILE if folder else None
        if report is None or not report.is_file():
            where = f"{REPORT_PATH_VARIABLE}={os.environ.get(REPORT_PATH_VARIABLE)!s}"
            return _page("Cost anomalies", f"<p>No report yet ({html.escape(where)}).</p>")
        text = report.read_text(encoding="utf-8")
        return _page(
            "Cost anomalies", f"<p>From <code>{html.escape(str(report))}</code></p>{render_markdown(text)}"
        )

    @app.get("/anomalies/{name}")
    def report_image(name: str) -> FileResponse:
        folder = report_dir()
        path = folder / name if folder and _PNG.match(name) else None
        if path is None or not path.is_file():
            raise HTTPException(status_code=404, detail="No such image")
        return FileResponse(path, media_type="image/png")

    return app


class SnowstormPlugin(AirflowPlugin):
    name = "snowstorm"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": create_app(), "url_prefix": URL_PREFIX, "name": "Snowstorm"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Cost anomalies",
            "href": f"{URL_PREFIX}/anomalies/",
            "destination": "nav",
            "category": "browse",
            "url_route": "snowstorm-anomalies",
        },
        {
            "name": "Offline W&B runs",
            "href": f"{URL_PREFIX}/runs/",
            "destination": "nav",
            "category": "browse",
            "url_route": "snowstorm-runs",
        },
    ]
