"""The "W&B Run" button on a task instance: a link to the W&B run the task wrote (one per map index).

Airflow 3 calls ``get_link`` on the worker when the task finishes and stores the result in XCom under
``_link_WandbRunLink``; the UI only reads that XCom. Operators make the URL available by calling
:func:`push_wandb_run_url` while they run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

__all__ = [
    "LOCAL_RUNS_PREFIX",
    "PLUGIN_URL_PREFIX",
    "WANDB_RUN_URL_XCOM_KEY",
    "WandbRunLink",
    "local_run_url",
    "push_wandb_run_url",
]

WANDB_RUN_URL_XCOM_KEY = "snowstorm_wandb_run_url"
PLUGIN_URL_PREFIX = "/snowstorm"
"""Where the provider's plugin (:mod:`airflow_provider_snowstorm.plugins.snowstorm`) is mounted on the API server."""
LOCAL_RUNS_PREFIX = f"{PLUGIN_URL_PREFIX}/runs"
"""The plugin's pages of offline runs: ``<prefix>/<run id>``."""


def local_run_url(run_id: str) -> str:
    """The plugin's page of an offline run on the API server: ``[api] base_url`` + path, else root-relative (the UI
    is served from the API server, so a root-relative link reaches it)."""
    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    return f"{base}{LOCAL_RUNS_PREFIX}/{run_id}"


def push_wandb_run_url(context: Any, url: str | None) -> None:
    """Record the run URL for :class:`WandbRunLink`.

    Offline runs link to the provider plugin's local run page (:func:`local_run_url`). ``None`` records an empty
    URL: the task shows no link, and ``get_link`` finds the key instead of logging "XCom not found" at the end of
    every successful task.
    """
    if not url:
        context["ti"].xcom_push(key=WANDB_RUN_URL_XCOM_KEY, value="")
        return
    if not isinstance(url, str) or not url.startswith(("http://", "https://", LOCAL_RUNS_PREFIX + "/")):
        raise ValueError(f"W&B run URL must be an http(s) URL or a local run page, got {url!r}.")
    context["ti"].xcom_push(key=WANDB_RUN_URL_XCOM_KEY, value=url)


class WandbRunLink(BaseOperatorLink):
    """Links a task instance to its Weights & Biases run."""

    name = "W&B Run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(key=WANDB_RUN_URL_XCOM_KEY, ti_key=ti_key)
        return url if isinstance(url, str) else ""
