"""Weights & Biases hook: the connection, runs, metrics, tables and images, online or offline.

Offline is first class so the embedded default needs no account: with no API key, ``mode: offline`` in
the connection, or ``WANDB_MODE=offline``, runs are written by the real wandb library under ``run_dir``
(upload them later with ``wandb sync <run_dir>/wandb/*run-*``). When W&B is unreachable, the hook finds out once
(one probe bounded by ``init_timeout``), warns once, and the rest of the task works offline.

Models are registered and fetched through :class:`~airflow_provider_snowstorm.registry.ModelRegistry`
(``hook.registry``); ``log_model``/``download_model`` remain as deprecated shortcuts to it.

Connection (``conn_type`` ``wandb``): password = API key, host = W&B base URL (self-hosted servers work),
extras: ``entity``, ``project``, ``mode`` (``online``/``offline``), ``model_store`` (path or URL),
``run_dir``, ``registry`` (default ``model``: models are linked to ``wandb-registry-<registry>/<model name>``)
and ``init_timeout`` (seconds).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_snowstorm.registry.store import (
    LATEST_ALIAS,
    ModelStore,
    ModelVersion,
    normalise_alias,
)
from airflow_provider_snowstorm.utils.paths import default_model_store, default_run_dir

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure
    from wandb import Run
    from wandb.apis.public import Api

    from airflow_provider_snowstorm.registry import ModelRegistry

__all__ = ["ModelVersion", "WandbConnectionSettings", "WandbHook", "wandb_alias"]

DEFAULT_PROJECT = "snowstorm"
DEFAULT_REGISTRY = "model"
DEFAULT_INIT_TIMEOUT = 30.0
ENTITY_LOOKUP_TIMEOUT = 5
"""Seconds (at most) to ask W&B which entity an API key belongs to when the connection names none."""
MODEL_ARTIFACT_TYPE = "model"
_REDACTED = "***"


def wandb_alias(alias: str) -> str:
    """W&B aliases may not contain ``/`` or ``:``; DAG run ids do (``manual__2026-01-01T00:00:00+00:00``).

    The same function as :func:`airflow_provider_snowstorm.registry.normalise_alias` (one spelling everywhere).
    """
    return normalise_alias(alias)


@dataclass(frozen=True)
class WandbConnectionSettings:
    """Everything the hook needs from the connection, resolved once. ``api_key`` is kept out of ``repr``."""

    mode: Literal["online", "offline"]
    project: str
    entity: str | None
    base_url: str | None
    model_store: str
    run_dir: str
    registry: str
    init_timeout: float
    offline_reason: str | None = None
    api_key: str | None = field(default=None, repr=False)


class WandbHook(BaseHook):
    """Interact with Weights & Biases; offline-capable, with every model mirrored to a model store."""

    conn_name_attr = "wandb_conn_id"
    default_conn_name = "wandb_default"
    conn_type = "wandb"
    hook_name = "Weights & Biases"

    _EXTRA_KEYS: ClassVar[tuple[str, ...]] = (
        "entity",
        "project",
        "mode",
        "model_store",
        "run_dir",
        "registry",
        "init_timeout",
    )

    def __init__(
        self,
        *args: str,
        wandb_conn_id: str = default_conn_name,
        mode: Literal["online", "offline"] | None = None,
        model_store: str | os.PathLike[str] | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        project: str | None = None,
        entity: str | None = None,
    ) -> None:
        super().__init__()
        if args:
            if len(args) > 1:
                raise TypeError(
                    f"WandbHook takes one positional argument (the connection id), got {len(args)}"
                )
            warnings.warn(
                "Passing the connection id positionally to WandbHook is deprecated: use "
                "WandbHook(wandb_conn_id=...).",
                DeprecationWarning,
                stacklevel=2,
            )
            wandb_conn_id = args[0]
        if mode not in (None, "online", "offline"):
            raise ValueError(f"WandbHook mode must be 'online' or 'offline', got {mode!r}.")
        self.wandb_conn_id = wandb_conn_id
        self._overrides: dict[str, Any] = {
            "mode": mode,
            "model_store": os.fspath(model_store) if model_store is not None else None,
            "run_dir": os.fspath(run_dir) if run_dir is not None else None,
            "project": project,
            "entity": entity,
        }
        self._fell_back_offline = False
        self._reachable: bool | None = None
        self._active_run: Run | None = None
        self._resolved_entity: str | None = None
        self._entity_looked_up = False

    # ------------------------------------------------------------------------------------------ configuration
    @cached_property
    def settings(self) -> WandbConnectionSettings:
        """Connection + overrides + environment, resolved to one immutable value."""
        conn = self._connection_or_none()
        extras = self._extras(conn.extra_dejson if conn is not None else {})
        api_key = (conn.password or None) if conn is not None else None
        if api_key:
            _mask(api_key)

        requested = self._overrides["mode"] or extras.get("mode") or "online"
        if requested not in ("online", "offline"):
            raise ValueError(
                f"Connection {self.wandb_conn_id!r}: extra 'mode' must be 'online' or 'offline', "
                f"got {requested!r}."
            )
        offline_reason = None
        if os.environ.get("WANDB_MODE", "").lower() in ("offline", "dryrun"):
            offline_reason = "WANDB_MODE=offline"
        elif requested == "offline":
            offline_reason = f"mode 'offline' in connection {self.wandb_conn_id!r} or hook arguments"
        elif not api_key:
            offline_reason = f"no API key (password) in connection {self.wandb_conn_id!r}"

        timeout = extras.get("init_timeout", DEFAULT_INIT_TIMEOUT)
        try:
            init_timeout = float(timeout)
        except (TypeError, ValueError):
            raise ValueError(
                f"Connection {self.wandb_conn_id!r}: extra 'init_timeout' must be a number of seconds, "
                f"got {timeout!r}."
            ) from None
        return WandbConnectionSettings(
            mode="offline" if offline_reason else "online",
            project=self._overrides["project"] or extras.get("project") or DEFAULT_PROJECT,
            entity=self._overrides["entity"] or extras.get("entity") or None,
            base_url=_base_url(conn),
            model_store=self._overrides["model_store"] or extras.get("model_store") or default_model_store(),
            run_dir=self._overrides["run_dir"] or extras.get("run_dir") or default_run_dir(),
            registry=extras.get("registry") or DEFAULT_REGISTRY,
            init_timeout=init_timeout,
            offline_reason=offline_reason,
            api_key=api_key,
        )

    @property
    def entity(self) -> str | None:
        """The W&B entity runs and links use: the connection's ``entity``, else the one W&B knows for the API key.

        Without ``entity`` on the connection, an online hook with a key asks W&B once (the key's default entity,
        else the viewer's), within ``ENTITY_LOOKUP_TIMEOUT`` seconds, and keeps the answer for its lifetime.
        Offline, or when the lookup fails, there is no entity (so no run link) and nothing is logged as an error.
        """
        if self.settings.entity:
            return self.settings.entity
        if not self._entity_looked_up and self.settings.api_key and self.ensure_online():
            self._entity_looked_up = True
            self._resolved_entity = self._lookup_entity()
        return self._resolved_entity

    def _lookup_entity(self) -> str | None:
        import wandb

        timeout = max(1, min(ENTITY_LOOKUP_TIMEOUT, int(self.settings.init_timeout)))
        try:
            api = wandb.Api(
                overrides={**self._base_url_setting()}, api_key=self.settings.api_key, timeout=timeout
            )
            entity = api.default_entity
            if not entity:
                viewer = api.viewer
                entity = getattr(viewer, "entity", None) or getattr(viewer, "username", None)
        except Exception as err:  # any failure: no entity, no link; the task goes on
            self.log.info(
                "Could not ask W&B for the API key's default entity (%s); runs get no link. Set extra "
                "'entity' on connection %r to name it.",
                type(err).__name__,
                self.wandb_conn_id,
            )
            return None
        if entity:
            self.log.info(
                "W&B entity %r (the API key's default; connection %r names none).", entity, self.wandb_conn_id
            )
        return str(entity) if entity else None

    @property
    def is_offline(self) -> bool:
        """True when configured offline or after an online start failed over to offline."""
        return self.settings.mode == "offline" or self._fell_back_offline

    @cached_property
    def registry(self) -> ModelRegistry:
        """The model registry on this connection (W&B online, the model store offline)."""
        from airflow_provider_snowstorm.registry import ModelRegistry

        return ModelRegistry(hook=self)

    @property
    def model_store(self) -> ModelStore:
        """The model store (the offline registry); see :attr:`registry`."""
        return self.registry.store

    def get_conn(self) -> Api:
        """The W&B public API client, created once per hook (online only: offline there is nothing to talk to)."""
        if self.is_offline:
            raise RuntimeError(
                f"W&B connection {self.wandb_conn_id!r} is offline "
                f"({self.settings.offline_reason or 'fell back after W&B was unreachable'}); "
                "the public API needs an online connection."
            )
        return self._client

    @cached_property
    def _client(self) -> Api:
        return self._public_api()

    # ------------------------------------------------------------------------------------------ reachability
    @property
    def api_url(self) -> str:
        """The W&B server's base URL: the connection host, or wandb's own default."""
        if self.settings.base_url:
            return self.settings.base_url
        import wandb

        return str(wandb.Settings().base_url)

    def ensure_online(self) -> bool:
        """True when this hook talks to W&B: configured online and reachable.

        The first call probes the server once, within ``init_timeout`` seconds in total; if it does not answer,
        the hook warns once and everything after (model fetches, runs) works offline for the rest of the task.
        """
        if self.settings.mode == "offline" or self._fell_back_offline:
            return False
        if self._reachable is None:
            import requests

            started = time.monotonic()
            half = max(self.settings.init_timeout / 2, 0.1)
            try:
                # Any HTTP answer (even 404) means the server is there; no credentials are sent.
                requests.get(
                    f"{self.api_url.rstrip('/')}/healthz", timeout=(half, half), allow_redirects=False
                )
            except requests.RequestException as err:
                self.mark_unreachable(err, during=f"probing it ({time.monotonic() - started:.1f} s)")
                return False
            self._reachable = True
        return self._reachable

    def mark_unreachable(self, err: BaseException, *, during: str) -> bool:
        """Switch this hook to offline after a network failure, warning once; False if ``err`` is not one."""
        import requests
        import wandb

        if not isinstance(err, OSError | TimeoutError | requests.RequestException | wandb.errors.Error):
            return False
        self._reachable = False
        if not self._fell_back_offline:
            self._fell_back_offline = True
            run_dir = Path(self.settings.run_dir).expanduser().resolve()
            self.log.warning(
                "W&B at %s is unreachable (%s: %s) while %s. Continuing offline for the rest of this task: runs "
                "are written under %s (upload them later with `wandb sync %s/wandb/*run-*`) and models come "
                "from the model store %s.",
                self.api_url,
                type(err).__name__,
                self.redact(str(err)),
                during,
                run_dir,
                run_dir,
                self.settings.model_store,
            )
        return True

    def test_connection(self) -> tuple[bool, str]:
        """Used by the UI's *Test* button: offline is a valid, working configuration."""
        if self.settings.mode == "offline":
            return True, f"Offline mode ({self.settings.offline_reason}); runs are written locally."
        try:
            viewer = self._public_api().viewer
        except Exception as err:
            return False, f"Could not reach W&B: {err}"
        return True, f"Connected to W&B as {getattr(viewer, 'username', None) or viewer}."

    # ------------------------------------------------------------------------------------------ runs
    def start_run(
        self,
        name: str,
        *,
        group: str | None = None,
        job_type: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        resume_run_id: str | None = None,
    ) -> Run:
        """Start a W&B run; use it as a context manager (``with hook.start_run(...) as run:``) to finish it.

        ``group`` should be the training DAG run id so all model instances of one DAG run are grouped.
        ``resume_run_id`` continues an existing run instead (e.g. a model's training run, to log its evaluation
        there): its name, group and job type stay, ``config`` is merged into its config. Offline this writes another
        folder for the same run id, which ``wandb sync`` appends to the run.
        """
        import wandb

        settings = self.settings
        run_dir = Path(settings.run_dir).expanduser().resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        init_kwargs: dict[str, Any] = {
            "project": settings.project,
            "entity": self.entity,
            "name": name,
            "group": group,
            "job_type": job_type,
            "config": self.redact(dict(config or {})),
            "tags": list(tags),
            "dir": str(run_dir),
            "reinit": "create_new",
        }
        if resume_run_id:
            init_kwargs.update(id=resume_run_id, resume="allow", name=None, group=None, job_type=None)
        if self.ensure_online():
            try:
                run = wandb.init(mode="online", settings=self._wandb_settings(online=True), **init_kwargs)
            except (wandb.errors.Error, OSError, TimeoutError) as err:
                # A failed online attempt leaves its folder under run_dir/wandb too: `wandb sync` covers it.
                self.mark_unreachable(err, during=f"starting run {name!r}")
            else:
                self._active_run = run
                return run
        elif settings.mode == "offline":
            self.log.info(
                "W&B offline (%s): writing run %r under %s.", settings.offline_reason, name, run_dir
            )
        run = wandb.init(mode="offline", settings=self._wandb_settings(online=False), **init_kwargs)
        self._active_run = run
        return run

    def run_url(self, run: Run | None = None) -> str | None:
        """The run's page: ``run.url`` online; offline, the URL it will have after ``wandb sync``.

        The offline URL comes from wandb's own ``Settings.run_url`` for the connection's base URL, so
        self-hosted servers and wandb's default host are both right. ``None`` when no entity is known (offline
        without ``entity`` on the connection; see :attr:`entity`).
        """
        import wandb

        run = self._run(run)
        if run.url:
            return run.url
        entity = run.entity or self.entity
        if not entity:
            return None
        return (
            wandb.Settings(
                **self._base_url_setting(),
                entity=entity,
                project=run.project or self.settings.project,
                run_id=run.id,
            ).run_url
            or None
        )

    def link_url(self, run: Run | None = None) -> str:
        """What the "W&B Run" button opens: ``run.url`` online; offline, the run page the provider's Airflow plugin
        serves from the local run folder (the public W&B URL holds nothing until ``wandb sync``)."""
        from airflow_provider_snowstorm.links.wandb import local_run_url

        run = self._run(run)
        return run.url or local_run_url(run.id)

    def log_metrics(
        self, metrics: Mapping[str, Any], *, step: int | None = None, run: Run | None = None
    ) -> None:
        self._run(run).log(dict(metrics), step=step)

    def log_table(self, key: str, df: pd.DataFrame, *, run: Run | None = None) -> None:
        import wandb

        self._run(run).log({key: wandb.Table(dataframe=df)})

    def log_image(
        self,
        key: str,
        image: str | os.PathLike[str] | Figure,
        *,
        caption: str | None = None,
        run: Run | None = None,
    ) -> None:
        """Log a PNG file or a matplotlib figure."""
        import wandb

        if isinstance(image, str | os.PathLike):
            path = Path(image)
            if not path.is_file():
                raise FileNotFoundError(f"Image to log under {key!r} does not exist: {path}")
            image = str(path)
        self._run(run).log({key: wandb.Image(image, caption=caption)})

    # ------------------------------------------------------------------------------------------ models (deprecated)
    def log_model(
        self,
        run: Run | None,
        path: str | os.PathLike[str],
        name: str,
        *,
        aliases: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        idempotency_alias: str | None = None,
    ) -> ModelVersion:
        """Deprecated: use ``ModelRegistry.register`` (:mod:`airflow_provider_snowstorm.registry`)."""
        warnings.warn(
            "WandbHook.log_model is deprecated: use "
            "airflow_provider_snowstorm.registry.ModelRegistry(hook=hook).register(...).",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.registry.register(
            run, path, name, aliases=aliases, metadata=metadata, idempotency_alias=idempotency_alias
        )

    def download_model(
        self,
        name: str,
        *,
        alias: str = LATEST_ALIAS,
        version: str | None = None,
        dest_dir: str | os.PathLike[str] | None = None,
    ) -> Path:
        """Deprecated: use :meth:`ModelRegistry.fetch <airflow_provider_snowstorm.registry.ModelRegistry.fetch>`,
        which also returns the :class:`ModelVersion` of the file."""
        warnings.warn(
            "WandbHook.download_model is deprecated: use "
            "airflow_provider_snowstorm.registry.ModelRegistry(hook=hook).fetch(...), which returns "
            "(path, ModelVersion) from one resolution.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.registry.fetch(name, alias=alias, version=version, dest_dir=dest_dir)[0]

    # ------------------------------------------------------------------------------------------ internals
    def _connection_or_none(self) -> Any:
        try:
            return self.get_connection(self.wandb_conn_id)
        except AirflowNotFoundException:
            if self.wandb_conn_id != self.default_conn_name:
                raise
            self.log.info("Connection %r is not defined: using W&B offline defaults.", self.wandb_conn_id)
            return None

    def _extras(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Accept both plain keys and the legacy ``extra__wandb__<key>`` form the old UI wrote."""
        extras: dict[str, Any] = {}
        for key in self._EXTRA_KEYS:
            value = raw.get(key)
            if value in (None, ""):
                value = raw.get(f"extra__{self.conn_type}__{key}")
            if value not in (None, ""):
                extras[key] = value
        return extras

    def _base_url_setting(self) -> dict[str, str]:
        return {"base_url": self.settings.base_url} if self.settings.base_url else {}

    def _wandb_settings(self, *, online: bool) -> Any:
        import wandb

        values: dict[str, Any] = {
            **self._base_url_setting(),
            "init_timeout": self.settings.init_timeout,
            "console": "off",
            "disable_git": True,
            "save_code": False,
        }
        if online:
            values["api_key"] = self.settings.api_key
        return wandb.Settings(**values)

    def _public_api(self) -> Api:
        import wandb

        overrides: dict[str, Any] = {**self._base_url_setting(), "project": self.settings.project}
        if self.settings.entity:
            overrides["entity"] = self.settings.entity
        return wandb.Api(
            overrides=overrides, api_key=self.settings.api_key, timeout=int(self.settings.init_timeout)
        )

    def _run(self, run: Run | None) -> Run:
        chosen = run or self._active_run
        if chosen is None:
            raise RuntimeError("No W&B run: call WandbHook.start_run() first or pass run=.")
        return chosen

    def redact(self, value: Any) -> Any:
        """Replace the API key wherever it appears, so it never reaches run config, metadata or logs."""
        secret = self.settings.api_key
        if not secret:
            return value
        if isinstance(value, str):
            return value.replace(secret, _REDACTED)
        if isinstance(value, Mapping):
            return {key: self.redact(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.redact(item) for item in value)
        return value


def _base_url(conn: Any) -> str | None:
    """The connection host as a URL; a bare host name gets ``https://`` (and the port, if set)."""
    if conn is None or not conn.host:
        return None
    host = conn.host.strip().rstrip("/")
    if "://" not in host:
        scheme = conn.schema or "https"
        host = f"{scheme}://{host}"
        if conn.port:
            host = f"{host}:{conn.port}"
    return host


def _mask(secret: str) -> None:
    """Register the key with Airflow's secrets masker so it is redacted from task logs."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older task SDKs
        return
    mask_secret(secret)
