"""The model registry: one face for registering and fetching model versions, online (W&B) or offline (the store).

.. code-block:: python

    registry = ModelRegistry(hook=WandbHook(wandb_conn_id="wandb_default"))
    version = registry.register(run, "model.skops", "snowstorm-compute", idempotency_alias=dag_run_id)
    path, version = registry.fetch("snowstorm-compute", alias="latest", dest_dir=workdir)

One version numbering: the registry that *assigns* a number is the one that serves it.

- **Online** (an API key, W&B reachable), W&B numbers the versions. ``register`` logs the artifact, links it into
  the W&B registry and mirrors the file into the store's ``_wandb/<project>`` namespace **under W&B's number**;
  ``fetch`` resolves the alias with one W&B API call and downloads that exact artifact version. If W&B turns out to
  be unreachable (checked once per hook, within the connection's ``init_timeout``), ``fetch`` reads the mirror,
  whose numbers are W&B's, so rows scored during an outage name the same ``vN`` as W&B.
- **Offline** (no key, ``mode: offline``, ``WANDB_MODE=offline``), the model store numbers the versions and is the
  source of truth. Offline W&B runs uploaded later with ``wandb sync`` get W&B's own numbers; the store records the
  run id of each version (``metadata["wandb"]``) to match them up.

Aliases are normalised once (:func:`normalise_alias`) and the same spelling is used in W&B and the store. ``fetch``
resolves an alias exactly once: the file returned and the :class:`ModelVersion` describing it are always the same
version, even when a training registers a new ``latest`` in the middle.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_snowstorm.registry.store import (
    LATEST_ALIAS,
    ModelIntegrityError,
    ModelNotFoundError,
    ModelStore,
    ModelVersion,
    normalise_alias,
    sha256_hex,
    validate_alias,
    validate_model_name,
    validate_version,
)

if TYPE_CHECKING:
    from wandb import Artifact, Run

    from airflow_provider_snowstorm.hooks.wandb import WandbHook

__all__ = [
    "LATEST_ALIAS",
    "MODEL_ARTIFACT_TYPE",
    "PRODUCTION_ALIAS",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "ModelRegistry",
    "ModelStore",
    "ModelVersion",
    "normalise_alias",
    "validate_alias",
    "validate_model_name",
    "validate_version",
]

MODEL_ARTIFACT_TYPE = "model"
# Scoring that alerts uses the version this alias names; only promotion moves it (never training).
PRODUCTION_ALIAS = "production"
MIRROR_NAMESPACE = "_wandb"  # model names start with a letter or digit, so this folder never clashes with one


class ModelRegistry:
    """Register and fetch model versions through a :class:`~airflow_provider_snowstorm.hooks.wandb.WandbHook`.

    :param hook: The W&B hook (connection, mode, runs). Default: ``WandbHook(wandb_conn_id=wandb_conn_id)``.
    :param wandb_conn_id: The W&B connection, when no ``hook`` is given.
    """

    def __init__(self, *, hook: WandbHook | None = None, wandb_conn_id: str = "wandb_default") -> None:
        if hook is None:
            from airflow_provider_snowstorm.hooks.wandb import WandbHook

            hook = WandbHook(wandb_conn_id=wandb_conn_id)
        self.hook = hook

    @property
    def log(self) -> Any:
        return self.hook.log

    @cached_property
    def store(self) -> ModelStore:
        """The offline registry (the store's own numbering)."""
        return ModelStore(self.hook.settings.model_store)

    @cached_property
    def mirror(self) -> ModelStore:
        """Copies of the W&B project's versions, under W&B's numbers (read when W&B is unreachable)."""
        return ModelStore(self.store.root / MIRROR_NAMESPACE / self.hook.settings.project)

    @property
    def is_online(self) -> bool:
        """W&B is the registry: configured online and reachable (checked once per hook)."""
        return self.hook.ensure_online()

    # -------------------------------------------------------------------------------------------- register
    def register(
        self,
        run: Run | None,
        path: str | os.PathLike[str],
        name: str,
        *,
        aliases: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        idempotency_alias: str | None = None,
    ) -> ModelVersion:
        """Register a model file as a new version of ``name`` (or replace the version of a retried task).

        ``idempotency_alias`` (default: the run's group, i.e. the DAG run id) makes task retries safe: registering
        ``name`` again with the same idempotency alias replaces that version instead of adding one. With ``run``
        the model is also logged as a W&B ``model`` artifact of that run; ``run=None`` writes to the store only.
        Names and aliases are checked before anything is logged or written.
        """
        validate_model_name(name)
        extra_aliases = sorted({validate_alias(alias) for alias in aliases} - {LATEST_ALIAS})
        idempotency = idempotency_alias or (run.group if run is not None else None) or None
        idem_alias = validate_alias(idempotency, what="idempotency alias") if idempotency else None
        model_path = Path(path)
        if not model_path.is_file():
            raise FileNotFoundError(f"Model file to register as {name!r} does not exist: {model_path}")
        digest = sha256_hex(model_path.read_bytes())
        user_metadata = self.hook.redact(dict(metadata or {}))
        wandb_aliases = [alias for alias in [*extra_aliases, idem_alias] if alias]

        online = run is not None and not run.offline and self.is_online
        if not online:
            wandb_record: dict[str, Any] = {}
            if run is not None:
                artifact = self._model_artifact(model_path, name, digest, user_metadata)
                run.log_artifact(artifact, aliases=wandb_aliases)
                wandb_record = {
                    "mode": "offline",
                    "run_id": run.id,
                    "run_url": self.hook.run_url(run),
                    "artifact": None,
                    "artifact_version": None,
                }
            return self.store.put(
                name,
                model_path,
                aliases=extra_aliases,
                metadata={**user_metadata, "wandb": wandb_record},
                idempotency_alias=idem_alias,
            )

        assert run is not None
        artifact = self._model_artifact(model_path, name, digest, user_metadata)
        logged = self._log_online(run, artifact, name, digest, wandb_aliases, idem_alias)
        stored = self.mirror.put(
            name,
            model_path,
            aliases=extra_aliases,
            metadata={
                **user_metadata,
                "wandb": {
                    "mode": "online",
                    "run_id": run.id,
                    "run_url": self.hook.run_url(run),
                    "artifact": logged.qualified_name,
                    "artifact_version": logged.version,
                },
            },
            idempotency_alias=idem_alias,
            version=logged.version,
        )
        return ModelVersion(
            name=name,
            version=logged.version,
            aliases=tuple(sorted({*logged.aliases, LATEST_ALIAS, *wandb_aliases})),
            uri=logged.qualified_name,
            digest=digest,
            store_uri=stored.store_uri,
            metadata=stored.metadata,
        )

    # -------------------------------------------------------------------------------------------- fetch
    def fetch(
        self,
        name: str,
        *,
        alias: str = LATEST_ALIAS,
        version: str | None = None,
        dest_dir: str | os.PathLike[str] | None = None,
    ) -> tuple[Path, ModelVersion]:
        """Resolve ``alias`` (or the pinned ``version``) exactly once and download that version.

        Returns the local file and the :class:`ModelVersion` it is: the pair always describes one version.
        Raises :class:`ModelNotFoundError` when the registry has no such model, alias or version.
        """
        validate_model_name(name)
        selector = validate_version(version) if version is not None else self._fetch_alias(alias)
        target_dir = (
            Path(dest_dir) if dest_dir is not None else Path(tempfile.mkdtemp(prefix=f"snowstorm-{name}-"))
        )
        if self.is_online:
            try:
                return self._fetch_online(name, selector, target_dir)
            except ModelNotFoundError:
                raise
            except Exception as err:
                if not self.hook.mark_unreachable(err, during=f"fetching model {name!r} ({selector})"):
                    raise
        store = self.mirror if self.hook.settings.mode == "online" else self.store
        if version is not None:
            return store.fetch(name, target_dir, version=version)
        return store.fetch(name, target_dir, alias=selector)

    def _fetch_alias(self, alias: str) -> str:
        normalised = normalise_alias(alias)
        return normalised if normalised == LATEST_ALIAS else validate_alias(alias)

    def _fetch_online(self, name: str, selector: str, dest_dir: Path) -> tuple[Path, ModelVersion]:
        # The one resolution: the Artifact object is one immutable version; everything below reads it.
        artifact = self._online_artifact(name, selector)
        root = Path(artifact.download(root=str(dest_dir)))
        file_name = artifact.metadata.get("file_name")
        candidates = [root / file_name] if file_name else sorted(p for p in root.iterdir() if p.is_file())
        if not candidates or not candidates[0].is_file():
            raise ModelIntegrityError(
                f"W&B artifact {artifact.qualified_name} has no model file under {root}."
            )
        digest = sha256_hex(candidates[0].read_bytes())
        expected = artifact.metadata.get("sha256")
        if expected and digest != expected:
            raise ModelIntegrityError(
                f"W&B artifact {artifact.qualified_name}: downloaded file fails its sha256 check."
            )
        return candidates[0], ModelVersion(
            name=name,
            version=artifact.version,
            aliases=tuple(sorted(artifact.aliases)),
            uri=artifact.qualified_name,
            digest=digest,
            metadata=dict(artifact.metadata),
        )

    # -------------------------------------------------------------------------------------------- aliases
    def resolve(self, name: str, *, alias: str = LATEST_ALIAS, version: str | None = None) -> ModelVersion:
        """Describe the version ``alias`` (or ``version``) names, without downloading its file."""
        validate_model_name(name)
        selector = validate_version(version) if version is not None else self._fetch_alias(alias)
        if self.is_online:
            artifact = self._online_artifact(name, selector)
            return ModelVersion(
                name=name,
                version=artifact.version,
                aliases=tuple(sorted(artifact.aliases)),
                uri=artifact.qualified_name,
                digest=str(artifact.metadata.get("sha256", "")),
                metadata=dict(artifact.metadata),
            )
        store = self.mirror if self.hook.settings.mode == "online" else self.store
        if version is not None:
            return store.resolve(name, version=version)
        return store.resolve(name, alias=selector)

    def move_alias(
        self, name: str, alias: str, version: str, *, record: Mapping[str, Any] | None = None
    ) -> ModelVersion:
        """Point ``alias`` (e.g. ``production``) at ``version`` of ``name``; ``record`` says who and why.

        Online, W&B moves the alias (an alias names one version of a collection; W&B keeps its history) and the
        record is appended to the version's ``alias_moves`` metadata; the store's mirror follows. Offline, the store
        moves it and keeps the history (``ModelStore.alias_history``).
        """
        validate_model_name(name)
        validate_version(version)
        alias = validate_alias(alias)
        record = self.hook.redact(dict(record or {}))
        if not self.is_online:
            store = self.mirror if self.hook.settings.mode == "online" else self.store
            return store.move_alias(name, alias, version, record=record)
        artifact = self._online_artifact(name, version)
        moves = list(artifact.metadata.get("alias_moves", []))
        artifact.metadata = {**artifact.metadata, "alias_moves": [*moves, {**record, "alias": alias}]}
        artifact.aliases = sorted({*artifact.aliases, alias})
        artifact.save()
        if version in self.mirror.versions(name):  # so that scoring during a W&B outage follows the move
            self.mirror.move_alias(name, alias, version, record=record)
        return self.resolve(name, version=version)

    def alias_history(self, name: str) -> list[dict[str, Any]]:
        """Moves of ``name``'s aliases recorded by :meth:`move_alias` in the store (offline) or its mirror."""
        store = self.mirror if self.hook.settings.mode == "online" else self.store
        return store.alias_history(name)

    # -------------------------------------------------------------------------------------------- W&B internals
    def _online_artifact(self, name: str, selector: str) -> Artifact:
        import wandb

        settings = self.hook.settings
        prefix = f"{settings.entity}/{settings.project}" if settings.entity else settings.project
        try:
            return self.hook.get_conn().artifact(f"{prefix}/{name}:{selector}", type=MODEL_ARTIFACT_TYPE)
        except wandb.errors.CommError as err:
            if _is_not_found(err):
                raise ModelNotFoundError(
                    f"W&B project {prefix!r} has no model {name!r} with {selector!r}: {err}"
                ) from None
            raise

    @staticmethod
    def _model_artifact(path: Path, name: str, digest: str, metadata: Mapping[str, Any]) -> Artifact:
        import wandb

        artifact = wandb.Artifact(
            name, type=MODEL_ARTIFACT_TYPE, metadata={**metadata, "sha256": digest, "file_name": path.name}
        )
        artifact.add_file(str(path), name=path.name)
        return artifact

    def _log_online(
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
                        self.hook.redact(str(err)),
                    )
        target = f"wandb-registry-{self.hook.settings.registry}/{name}"
        try:
            run.link_artifact(logged, target, aliases=[idem_alias] if idem_alias else None)
        except Exception as err:
            self.log.warning(
                "Model %r logged but not linked to registry %s: %s", name, target, self.hook.redact(str(err))
            )
        return logged

    def _existing_version(self, run: Run, name: str, alias: str) -> Artifact | None:
        import wandb

        path = f"{run.entity}/{run.project}/{name}:{alias}"
        try:
            return self.hook.get_conn().artifact(path, type=MODEL_ARTIFACT_TYPE)
        except (wandb.errors.CommError, ValueError):
            return None


def _is_not_found(err: Exception) -> bool:
    text = str(err).lower()
    return "not found" in text or "does not exist" in text or "404" in text
