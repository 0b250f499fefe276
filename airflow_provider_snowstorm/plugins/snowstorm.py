"""The provider's Airflow plugin: offline W&B runs and the latest cost anomaly report, inside the Airflow UI.

Registered through the ``airflow.plugins`` entry point (a provider's ``plugins`` entry in ``get_provider_info`` is
loaded only with ``[core] lazy_discover_providers = False``). It mounts a FastAPI app under ``/snowstorm`` on the API
server; the pages themselves are :mod:`~airflow_provider_snowstorm.plugins.pages`:

- ``/snowstorm/runs/`` and ``/snowstorm/runs/{run_id}``: the offline runs in the W&B connection's ``run_dir`` (config,
  summary metrics, logged images such as the decomposition and score charts, the model artifact); offline, the
  "W&B Run" button of training and scoring tasks opens this page;
- ``/snowstorm/anomalies/``: the latest report in ``SNOWSTORM_REPORT_PATH`` with its chart, also a "Cost anomalies"
  entry of the UI's Browse menu (an ``external_views`` page).

Plugin routes are not protected by Airflow: every route here requires an authenticated Airflow user (the UI's
``_token`` cookie or a bearer token from ``/auth/token``) through Airflow's own ``get_user`` dependency.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, ClassVar

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from airflow_provider_snowstorm.links.wandb import PLUGIN_URL_PREFIX
from airflow_provider_snowstorm.plugins import pages
from airflow_provider_snowstorm.plugins.offline_runs import find_run, list_runs, read_run, run_id_of

__all__ = ["SnowstormPlugin", "create_app"]

REPORT_PATH_VARIABLE = "SNOWSTORM_REPORT_PATH"
WANDB_CONN_VARIABLE = "SNOWSTORM_WANDB_CONN_ID"
REPORT_FILE = "anomaly_report.md"
_PNG = re.compile(r"^[\w.-]+\.png$")


def run_dir() -> str:
    """The W&B connection's ``run_dir`` (``SNOWSTORM_WANDB_CONN_ID``, as for the example DAGs, else
    ``wandb_default``); the API server reads connections from the metadata database and the environment."""
    from airflow_provider_snowstorm.hooks.wandb import WandbHook

    conn_id = os.environ.get(WANDB_CONN_VARIABLE) or WandbHook.default_conn_name
    return WandbHook(wandb_conn_id=conn_id).settings.run_dir


def report_dir() -> Path | None:
    """The folder of ``SNOWSTORM_REPORT_PATH`` (a folder, or the report file itself)."""
    configured = os.environ.get(REPORT_PATH_VARIABLE)
    if not configured:
        return None
    path = Path(configured).expanduser()
    return path.parent if path.suffix == ".md" else path


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
        return HTMLResponse(pages.runs_page(list_runs(run_dir())))

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(run_id: str) -> HTMLResponse:
        folder = find_run(run_dir(), run_id)
        if folder is None:
            raise HTTPException(status_code=404, detail=f"No offline W&B run {run_id!r}")
        return HTMLResponse(pages.run_page(read_run(folder)))

    @app.get("/runs/{run_id}/images/{name}")
    def run_image(run_id: str, name: str) -> FileResponse:
        folder = find_run(run_dir(), run_id)
        # The image may sit in an earlier folder of a resumed run: serve it from the folder that holds it.
        holder = (
            next((image.parent for image in read_run(folder).images if image.name == name), None)
            if folder
            else None
        )
        return _png(holder, name)

    @app.get("/anomalies/", response_class=HTMLResponse)
    def anomalies() -> HTMLResponse:
        folder = report_dir()
        report = folder / REPORT_FILE if folder else None
        if report is None or not report.is_file():
            return HTMLResponse(
                pages.no_report_page(f"{REPORT_PATH_VARIABLE}={os.environ.get(REPORT_PATH_VARIABLE)!s}")
            )
        local_runs = {run_id_of(run) for run in list_runs(run_dir())}
        return HTMLResponse(pages.report_page(report.read_text(encoding="utf-8"), report, local_runs))

    @app.get("/anomalies/{name}")
    def report_image(name: str) -> FileResponse:
        return _png(report_dir(), name)

    return app


def _png(folder: Path | None, name: str) -> FileResponse:
    """A PNG directly inside ``folder``; anything else (other files, paths out of it) is a 404."""
    path = folder / name if folder and _PNG.match(name) else None
    if path is None or not path.is_file():
        raise HTTPException(status_code=404, detail="No such image")
    return FileResponse(path, media_type="image/png")


class SnowstormPlugin(AirflowPlugin):
    name = "snowstorm"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": create_app(), "url_prefix": PLUGIN_URL_PREFIX, "name": "Snowstorm"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Cost anomalies",
            "href": f"{PLUGIN_URL_PREFIX}/anomalies/",
            "destination": "nav",
            "category": "browse",
            "url_route": "snowstorm-anomalies",
        },
        {
            "name": "Offline W&B runs",
            "href": f"{PLUGIN_URL_PREFIX}/runs/",
            "destination": "nav",
            "category": "browse",
            "url_route": "snowstorm-runs",
        },
    ]
