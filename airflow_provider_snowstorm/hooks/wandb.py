"""Weights & Biases hook: runs, metrics, tables, images and versioned models, online or offline.

Offline is first class so the embedded default needs no account: with no API key, ``mode: offline`` in
the connection, or ``WANDB_MODE=offline``, runs are written by the real wandb library under ``run_dir``
(upload them later with ``wandb sync <run_dir>/wandb/offline-run-*``). When online initialisation fails (W&B
unreachable), the hook falls back to offline with a warning instead of failing the task.

Every model is also written to the :class:`~airflow_provider_snowstorm.hooks.model_store.ModelStore`, which is
the source of truth offline; online, W&B is.

Connection (``conn_type`` ``wandb``): password = API key, host = W&B base URL (self-hosted servers work),
extras: ``entity``, ``project``, ``mode`` (``online``/``offline``), ``model_store`` (path or URL),
``run_dir``, ``registry`` (default ``model``: models are linked to ``wandb-registry-<registry>/<model name>``)
and ``init_timeout`` (seconds).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_snowstorm.hooks.model_store import (
    DEFAULT_MODEL_STORE,
    LATEST_ALIAS,
    ModelStore,
    ModelVersion,
    sha256_hex,
    validate_model_name,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure
    from wandb import Artifact, Run
    from wandb.apis.public import Api

__all__ = ["ModelVersion", "WandbConnectionSettings", "WandbHook", "wandb_alias"]

DEFAULT_PROJECT = "snowstorm"
DEFAULT_RUN_DIR = "./.snowstorm/wandb"
DEFAULT_REGISTRY = "model"
DEFAULT_INIT_TIMEOUT = 30.0
MODEL_ARTIFACT_TYPE = "model"
_REDACTED = "***"
_WANDB_ALIAS_FORBIDDEN = str.maketrans({"/": "-", ":": "-", " ": "_"})


def wandb_alias(alias: str) -> str:
    """W&B aliases may not contain ``/`` or ``:``; DAG run ids do (``manual__2026-01-01T00:00:00+00:00``)."""
    return alias.strip().translate(_WANDB_ALIAS_FORBIDDEN)


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
        wandb_conn_id: str = default_conn_name,
        *,
        mode: Literal["online", "offline"] | None = None,
        model_store: str | os.PathLike[str] | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        project: str | None = None,
        entity: str | None = None,
    ) -> None:
        super().__init__()
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
        self._active_run: Run | None = None

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
            model_store=self._overrides["model_store"] or extras.get("model_store") or DEFAULT_MODEL_STORE,
            run_dir=self._overrides["run_dir"] or extras.get("run_dir") or DEFAULT_RUN_DIR,
            registry=extras.get("registry") or DEFAULT_REGISTRY,
            init_timeout=init_timeout,
            offline_reason=offline_reason,
            api_key=api_key,
        )

    @property
    def is_offline(self) -> bool:
        """True when configured offline or after an online start failed over to offline."""
        return self.settings.mode == "offline" or self._fell_back_offline

    @cached_property
    def model_store(self) -> ModelStore:
        return ModelStore(self.settings.model_store)

    def get_conn(self) -> Api:
        """The W&B public API client (online only: offline there is nothing to talk to)."""
        if self.is_offline:
            raise RuntimeError(
                f"W&B connection {self.wandb_conn_id!r} is offline "
                f"({self.settings.offline_reason or 'fell back after a failed online start'}); "
                "the public API needs an online connection."
            )
        return self._public_api()

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
    ) -> Run:
        """Start a W&B run; use it as a context manager (``with hook.start_run(...) as run:``) to finish it.

        ``group`` should be the training DAG run id so all model instances of one DAG run are grouped.
        """
        import wandb

        settings = self.settings
        run_dir = Path(settings.run_dir).expanduser().resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        init_kwargs: dict[str, Any] = {
            "project": settings.project,
            "entity": settings.entity,
            "name": name,
            "group": group,
            "job_type": job_type,
            "config": self._redact(dict(config or {})),
            "tags": list(tags),
            "dir": str(run_dir),
            "reinit": "create_new",
        }
        if not self.is_offline:
            try:
                run = wandb.init(mode="online", settings=self._wandb_settings(online=True), **init_kwargs)
            except (wandb.errors.Error, OSError, TimeoutError) as err:
                self._fell_back_offline = True
                self.log.warning(
                    "W&B online start failed at %s (%s: %s). Falling back to offline: run %r is written under %s; "
                    "upload it later with `wandb sync %s/wandb/offline-run-*`.",
                    settings.base_url or "the default W&B host",
                    type(err).__name__,
                    self._redact(str(err)),
                    name,
                    run_dir,
                    run_dir,
                )
            else:
                self._active_run = run
                return run
        else:
            self.log.info(
                "W&B offline (%s): writing run %r under %s.", settings.offline_reason, name, run_dir
            )
        run = wandb.init(mode="offline", settings=self._wandb_settings(online=False), **init_kwargs)
        self._active_run = run
        return run

    def run_url(self, run: Run | None = None) -> str | None:
        """The run's page: ``run.url`` online; offline, the URL it will have after ``wandb sync``.

        The offline URL comes from wandb's own ``Settings.run_url`` for the connection's base URL, so
        self-hosted servers and wandb's default host are both right. ``None`` when no entity is known.
        """
        import wandb

        run = self._run(run)
        if run.url:
            return run.url
        entity = run.entity or self.settings.entity
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

    # ------------------------------------------------------------------------------------------ models
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
        """Log a model file as a W&B ``model`` artifact, link it into the registry (online), and store it.

        ``idempotency_alias`` (default: the run's group, i.e. the DAG run id) makes task retries safe:
        logging the same ``name`` with the same idempotency alias replaces that version instead of adding
        one. ``run=None`` writes to the model store only.
        """
        validate_model_name(name)
        model_path = Path(path)
        if not model_path.is_file():
            raise FileNotFoundError(f"Model file to log as {name!r} does not exist: {model_path}")
        digest = sha256_hex(model_path.read_bytes())
        idempotency = idempotency_alias or (run.group if run is not None else None) or None
        idem_alias = wandb_alias(idempotency) if idempotency else None
        extra_aliases = sorted({wandb_alias(alias) for alias in aliases} - {LATEST_ALIAS})
        user_metadata = self._redact(dict(metadata or {}))

        wandb_record: dict[str, Any] = {}
        logged = None
        if run is not None:
            run_is_online = not run.offline and not self.is_offline
            artifact = self._model_artifact(model_path, name, digest, user_metadata)
            wandb_aliases = [alias for alias in [*extra_aliases, idem_alias] if alias]
            if run_is_online:
                logged = self._log_model_online(run, artifact, name, digest, wandb_aliases, idem_alias)
            else:
                run.log_artifact(artifact, aliases=wandb_aliases)
            wandb_record = {
                "mode": "online" if run_is_online else "offline",
                "run_id": run.id,
                "run_url": self.run_url(run),
                "artifact": logged.qualified_name if logged is not None else None,
                "artifact_version": logged.version if logged is not None else None,
            }

        stored = self.model_store.put(
            name,
            model_path,
            aliases=extra_aliases,
            metadata={**user_metadata, "wandb": wandb_record},
            idempotency_alias=idem_alias,
        )
        if logged is None:
            return stored
        return ModelVersion(
            name=name,
            version=logged.version,
            aliases=tuple(
                sorted(set(logged.aliases) | {LATEST_ALIAS, *extra_aliases, *filter(None, [idem_alias])})
            ),
            uri=logged.qualified_name,
            digest=digest,
            store_uri=stored.store_uri,
            metadata=stored.metadata,
        )

    def download_model(
        self,
        name: str,
        *,
        alias: str = LATEST_ALIAS,
        version: str | None = None,
        dest_dir: str | os.PathLike[str] | None = None,
    ) -> Path:
        """Fetch a model file to a local directory and return its path.

        Online, W&B is the source of truth (falling back to the store with a warning if W&B is unreachable);
        offline, the model store is (with its sha256 check).
        """
        validate_model_name(name)
        target_dir = (
            Path(dest_dir) if dest_dir is not None else Path(tempfile.mkdtemp(prefix=f"snowstorm-{name}-"))
        )
        if not self.is_offline:
            try:
                return self._download_from_wandb(name, alias=alias, version=version, dest_dir=target_dir)
            except Exception as err:
                self.log.warning(
                    "Could not download model %r (%s) from W&B (%s: %s); using the model store %s instead.",
                    name,
                    version or alias,
                    type(err).__name__,
                    self._redact(str(err)),
                    self.model_store.root,
                )
        return self.model_store.download(name, target_dir, alias=wandb_alias(alias), version=version)

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

    def _redact(self, value: Any) -> Any:
        """Replace the API key wherever it appears, so it never reaches run config, metadata or logs."""
        secret = self.settings.api_key
        if not secret:
            return value
        if isinstance(value, str):
            return value.replace(secret, _REDACTED)
        if isinstance(value, Mapping):
            return {key: self._redact(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self._redact(item) for item in value)
        return value

    @staticmethod
    def _model_artifact(path: Path, name: str, digest: str, metadata: Mapping[str, Any]) -> Artifact:
        import wandb

        artifact = wandb.Artifact(
            name, type=MODEL_ARTIFACT_TYPE, metadata={**metadata, "sha256": digest, "file_name": path.name}
        )
        artifact.add_file(str(path), name=path.name)
        return artifact

    def _log_model_online(
        self,
        run: Run,
        artifact: Artifact,
        name: str,
        digest: str,
        aliases: list[str],
        idem_alias: str | None,
    ) -> Artifact:
        """Log (or, on a retry with identical bytes, reuse) the W&B version; link it into the registry."""
        previous = self._existing_version(run, name, idem_alias) if idem_alias else None
        if previous is not None and previous.metadata.get("sha256") == digest:
            previous.metadata = dict(artifact.metadata)
            previous.aliases = sorted(set(previous.aliases) | set(aliases))
            previous.save()
            logged = previous
            self.log.info("Model %r retry: reusing W&B version %s (same sha256).", name, logged.version)
        else:
            logged = run.log_artifact(artifact, aliases=aliases)
            logged.wait()
            if previous is not None:
                # W&B versions are immutable: a retry with new bytes replaces the earlier attempt's version.
                try:
                    previous.delete(delete_aliases=True)
                except Exception as err:
                    self.log.warning(
                        "Model %r: could not delete superseded W&B version %s of retry alias %r: %s",
                        name,
                        previous.version,
                        idem_alias,
                        err,
                    )
        target = f"wandb-registry-{self.settings.registry}/{name}"
        try:
            run.link_artifact(logged, target, aliases=[idem_alias] if idem_alias else None)
        except Exception as err:
            self.log.warning("Model %r logged but not linked to registry %s: %s", name, target, err)
        return logged

    def _existing_version(self, run: Run, name: str, alias: str) -> Artifact | None:
        import wandb

        path = f"{run.entity}/{run.project}/{name}:{alias}"
        try:
            return self.get_conn().artifact(path, type=MODEL_ARTIFACT_TYPE)
        except (wandb.errors.CommError, ValueError):
            return None

    def _download_from_wandb(self, name: str, *, alias: str, version: str | None, dest_dir: Path) -> Path:
        entity = self.settings.entity
        prefix = f"{entity}/{self.settings.project}" if entity else self.settings.project
        artifact = self.get_conn().artifact(f"{prefix}/{name}:{version or wandb_alias(alias)}", type="model")
        root = Path(artifact.download(root=str(dest_dir)))
        file_name = artifact.metadata.get("file_name")
        candidates = [root / file_name] if file_name else sorted(p for p in root.iterdir() if p.is_file())
        if not candidates or not candidates[0].is_file():
            raise FileNotFoundError(f"W&B artifact {artifact.qualified_name} has no model file under {root}.")
        expected = artifact.metadata.get("sha256")
        if expected and sha256_hex(candidates[0].read_bytes()) != expected:
            raise RuntimeError(
                f"W&B artifact {artifact.qualified_name}: downloaded file fails its sha256 check."
            )
        return candidates[0]


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
