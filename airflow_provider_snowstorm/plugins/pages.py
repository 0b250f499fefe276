"""The plugin's HTML: an offline run's page, the list of runs and the Cost anomalies page (no Airflow, no FastAPI).

Everything taken from files (run config, metrics, the report) is escaped; the report's own raw HTML is not rendered.
Links are relative, so the pages work under any ``[api] base_url`` sub-path and inside the UI's iframe.
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from airflow_provider_snowstorm.plugins.offline_runs import OfflineRun, run_id_of

__all__ = ["no_report_page", "report_page", "run_page", "runs_page"]

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:1200px;color:#1a202c}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #cbd5e0;padding:.25rem .5rem;text-align:left}
img{max-width:100%;border:1px solid #e2e8f0;margin:.5rem 0}code{background:#edf2f7;padding:0 .2rem}
"""
_RUN_LINK = re.compile(r"/runs/([^/?#]+)/?$")  # a W&B run URL: .../<entity>/<project>/runs/<id>


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _table(rows: Mapping[str, Any]) -> str:
    if not rows:
        return "<p>(none)</p>"
    cells = "".join(
        f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>"
        for key, value in rows.items()
    )
    return f"<table>{cells}</table>"


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config (``detector: {period: 7}``) as one row per leaf (``detector.period``)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def runs_page(folders: list[Path]) -> str:
    """Every offline run, newest first, each linking to its page."""
    items = "".join(
        f"<li><a href='{html.escape(run_id_of(folder))}'>{html.escape(folder.name)}</a></li>"
        for folder in folders
    )
    return _page("Offline W&B runs", f"<ul>{items}</ul>" if items else "<p>No offline runs yet.</p>")


def run_page(run: OfflineRun) -> str:
    """What W&B's run page would show: the model artifact, summary metrics, logged charts, config."""
    model = {
        artifact["name"]: f"{', '.join(artifact['aliases'])}  {artifact['digest'][:12]}"
        for artifact in run.artifacts
    }
    model.update(
        {key: run.config[key] for key in ("model_name", "model_version", "model_alias") if key in run.config}
    )
    images = "".join(
        f"<h3>{html.escape(path.stem.rsplit('_', 2)[0])}</h3>"
        f"<img alt='{html.escape(path.stem)}' src='{html.escape(run.run_id)}/images/{html.escape(path.name)}'>"
        for path in run.images
    )
    body = (
        f"<p>Run <code>{html.escape(run.run_id)}</code> · project {html.escape(run.project)} · "
        f"group {html.escape(run.group)} · job {html.escape(run.job_type)} · "
        f"{'finished' if run.finished else 'running'} · offline (upload it with "
        f"<code>wandb sync {html.escape(str(run.folder))}</code>)</p>"
        f"<h2>Model</h2>{_table(model)}<h2>Summary metrics</h2>{_table(run.metrics)}"
        f"<h2>Charts</h2>{images or '<p>No images logged.</p>'}"
        f"<h2>Config</h2>{_table(_flatten(run.config))}"
    )
    return _page(run.name or run.run_id, body)


def report_page(text: str, source: Path, local_runs: Collection[str]) -> str:
    """The report's markdown as HTML, its W&B run links to runs kept offline here turned into their local pages.

    Offline, a W&B run URL holds nothing until ``wandb sync``; the page of a run in ``local_runs`` (run ids) is
    ``../runs/<id>`` from the Cost anomalies page.
    """
    from markdown_it import MarkdownIt

    markdown = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = markdown.parse(text)
    for token in tokens:
        for child in token.children or []:
            match = _RUN_LINK.search(str(child.attrs.get("href", ""))) if child.type == "link_open" else None
            if match and match.group(1) in local_runs:
                child.attrSet("href", f"../runs/{match.group(1)}")
    rendered = markdown.renderer.render(tokens, markdown.options, {})
    return _page("Cost anomalies", f"<p>From <code>{html.escape(str(source))}</code></p>{rendered}")


def no_report_page(where: str) -> str:
    return _page("Cost anomalies", f"<p>No report yet ({html.escape(where)}).</p>")
