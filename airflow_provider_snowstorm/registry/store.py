"""A versioned model store on ``ObjectStoragePath``: the offline registry, and the mirror of W&B's versions.

Used through :class:`~airflow_provider_snowstorm.registry.ModelRegistry`, which picks the backend (W&B online, this
store offline) and keeps one version numbering; this module is the storage layer underneath.

Layout under the store root (a local path by default; ``s3://``, ``gs://`` ... to share it across workers)::

    <root>/<model name>/aliases.json          {"format": 1, "aliases": {"latest": "v1", "<dag run id>": "v1"}}
    <root>/<model name>/v<N>/model<suffix>    the model file, opaque bytes (e.g. ``model.skops``)
    <root>/<model name>/v<N>/metadata.json    sha256, size, aliases' history, user metadata
    <root>/<model name>/alias_history.json    every move of an alias by ``move_alias``: who, why, from, to, when

Why this shape: versions are immutable directories (like W&B artifact versions), aliases are the only
mutable pointers, so a reader resolving ``latest`` never sees a half-written model. The one exception to
immutability is a task retry: writing the same model name with the same *idempotency alias* (the DAG run id)
replaces that version's file and metadata in place instead of adding a version.

Atomicity: files are written to a temporary name and renamed into place. On local file systems the rename
is atomic and a lock file (``<root>/<name>/.lock``, ``fcntl.flock``) serialises writers of the same model
name, so concurrent mapped tasks cannot corrupt ``aliases.json``. Object stores (S3, GCS) have no atomic
rename and no locks: a rename there is copy + delete, readers may briefly see the previous alias file, and two
writers of the *same* model name at the same moment race (last writer wins on ``aliases.json``). Writers of
different model names never interfere because each name has its own prefix.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import ObjectStoragePath

from airflow_provider_snowstorm.utils.paths import default_model_store

__all__ = [
    "LATEST_ALIAS",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "ModelStore",
    "ModelVersion",
    "normalise_alias",
    "sha256_hex",
    "validate_alias",
    "validate_model_name",
    "validate_version",
]

LATEST_ALIAS = "latest"
ALIASES_FILE = "aliases.json"
METADATA_FILE = "metadata.json"
HISTORY_FILE = "alias_history.json"
LOCK_FILE = ".lock"
_FORMAT = 1
_LOCAL_PROTOCOLS = frozenset({"", "file", "local"})
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_VERSION = re.compile(r"v(\d+)")
_ALIAS_FORBIDDEN = str.maketrans({"/": "-", ":": "-", " ": "_"})


class ModelNotFoundError(LookupError):
    """The requested model, version or alias does not exist in the store."""


class ModelIntegrityError(RuntimeError):
    """A stored model file does not match the sha256 digest recorded when it was written."""


@dataclass(frozen=True)
class ModelVersion:
    """One version of a model.

    ``uri`` points at the authoritative copy (the W&B artifact when logged online, else the store file);
    ``store_uri`` always points at the store copy.
    """

    name: str
    version: str
    aliases: tuple[str, ...]
    uri: str
    digest: str
    store_uri: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def validate_model_name(name: str) -> str:
    """Model names become directory names and W&B artifact names, so keep them to a safe alphabet."""
    if not isinstance(name, str) or not _MODEL_NAME.fullmatch(name):
        raise ValueError(
            f"Invalid model name {name!r}: use 1-128 characters from A-Z a-z 0-9 . _ - "
            "and start with a letter or digit."
        )
    return name


def normalise_alias(alias: str) -> str:
    """The one spelling of an alias everywhere (W&B and the store): W&B aliases may not contain ``/`` or ``:``,
    and DAG run ids do (``manual__2026-01-01T00:00:00+00:00`` -> ``manual__2026-01-01T00-00-00+00-00``)."""
    if not isinstance(alias, str):
        raise ValueError(f"Invalid model alias {alias!r}: must be a string, got {type(alias).__name__}.")
    return alias.strip().translate(_ALIAS_FORBIDDEN)


def validate_alias(alias: str, *, what: str = "model alias") -> str:
    """Check an alias (after :func:`normalise_alias`); return the normalised alias."""
    normalised = normalise_alias(alias)
    if not normalised or len(normalised) > 128:
        raise ValueError(f"Invalid {what} {alias!r}: must be a non-empty string of at most 128 characters.")
    if _VERSION.fullmatch(normalised):
        raise ValueError(
            f"Invalid {what} {alias!r}: 'v<N>' is reserved for version numbers; pin a version with "
            "model_version instead."
        )
    return normalised


def validate_version(version: str, *, what: str = "model version") -> str:
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise ValueError(f"Invalid {what} {version!r}: expected 'v<N>' such as 'v3'.")
    return version


def _as_storage_path(root: str | os.PathLike[str] | ObjectStoragePath) -> ObjectStoragePath:
    if isinstance(root, ObjectStoragePath):
        return root
    text = os.fspath(root)
    if "://" in text:
        return ObjectStoragePath(text)
    return ObjectStoragePath(Path(text).expanduser().resolve().as_uri())


class ModelStore:
    """Versioned, alias-addressed model files with sha256 integrity checks. See the module docstring."""

    def __init__(self, root: str | os.PathLike[str] | ObjectStoragePath | None = None) -> None:
        if root is None:
            root = default_model_store()
        self.root = _as_storage_path(root)

    def __repr__(self) -> str:
        return f"ModelStore({str(self.root)!r})"

    @property
    def is_local(self) -> bool:
        return self.root.protocol in _LOCAL_PROTOCOLS

    # ------------------------------------------------------------------------------------------- writing
    def put(
        self,
        name: str,
        source: str | os.PathLike[str] | bytes,
        *,
        aliases: Iterable[str] = (),
        metadata: Mapping[str, Any] | None = None,
        idempotency_alias: str | None = None,
        suffix: str | None = None,
        version: str | None = None,
    ) -> ModelVersion:
        """Store a model file as a new version, or replace the version already owning ``idempotency_alias``.

        ``latest`` always points at the highest version; ``aliases`` and ``idempotency_alias`` move to this
        version (an alias names exactly one version). ``version`` (``v<N>``) stores under a number another
        registry assigned (a mirror of a W&B version) instead of the store's next number.
        """
        validate_model_name(name)
        if version is not None:
            validate_version(version)
        requested = [validate_alias(alias) for alias in aliases]
        if idempotency_alias is not None:
            idempotency_alias = validate_alias(idempotency_alias)
            requested.append(idempotency_alias)
        data, suffix = self._read_source(source, suffix)
        digest = sha256_hex(data)
        model_dir = self.root / name
        model_dir.mkdir(parents=True, exist_ok=True)
        with self._lock(model_dir):
            alias_map = self._read_aliases(name)
            now = datetime.now(UTC).isoformat()
            previous: dict[str, Any] = {}
            if version is None and idempotency_alias is not None and idempotency_alias in alias_map:
                version = alias_map[idempotency_alias]
            if version is None:
                version = f"v{self._next_version_number(name)}"
            else:
                with contextlib.suppress(ModelNotFoundError):
                    previous = self._read_metadata(name, version)
            version_dir = model_dir / version
            version_dir.mkdir(parents=True, exist_ok=True)
            file_name = f"model{suffix}"
            self._write_atomic(version_dir / file_name, data)
            old_file = previous.get("file_name")
            if old_file and old_file != file_name:
                with contextlib.suppress(FileNotFoundError):
                    (version_dir / old_file).unlink()
            record = {
                "format": _FORMAT,
                "name": name,
                "version": version,
                "file_name": file_name,
                "sha256": digest,
                "size": len(data),
                "created_at": previous.get("created_at", now),
                "updated_at": now,
                "writes": int(previous.get("writes", 0)) + 1,
                "idempotency_alias": idempotency_alias,
                "metadata": dict(metadata or {}),
            }
            self._write_atomic(version_dir / METADATA_FILE, _json_bytes(record))
            for alias in requested:
                alias_map[alias] = version
            alias_map[LATEST_ALIAS] = max(
                [*self._complete_versions(name), version], key=lambda item: int(item[1:])
            )
            self._write_aliases(name, alias_map)
        return self._model_version(name, version, record, alias_map)

    # ------------------------------------------------------------------------------------------- reading
    def resolve(self, name: str, *, alias: str = LATEST_ALIAS, version: str | None = None) -> ModelVersion:
        """Describe a version (by explicit ``version`` or by ``alias``) without reading the model file."""
        validate_model_name(name)
        alias_map = self._read_aliases(name)
        if version is None:
            alias = normalise_alias(alias)
            if alias not in alias_map:
                raise ModelNotFoundError(
                    f"Model {name!r} has no alias {alias!r} in store {self.root}; "
                    f"known aliases: {sorted(alias_map) or 'none'}."
                )
            version = alias_map[alias]
        else:
            validate_version(version, what=f"model version of {name!r}")
        record = self._read_metadata(name, version)
        return self._model_version(name, version, record, alias_map)

    def read_bytes(self, name: str, *, alias: str = LATEST_ALIAS, version: str | None = None) -> bytes:
        """The model file's bytes, verified against the sha256 recorded at write time."""
        model = self.resolve(name, alias=alias, version=version)
        path = self.root / name / model.version / model.metadata["file_name"]
        try:
            data = path.read_bytes()
        except FileNotFoundError as err:
            raise ModelNotFoundError(f"Model file {path} of {name!r} {model.version} is missing.") from err
        actual = sha256_hex(data)
        if actual != model.digest:
            raise ModelIntegrityError(
                f"Model file {path} is corrupt: its sha256 is {actual} but {METADATA_FILE} recorded "
                f"{model.digest} when {name!r} {model.version} was written."
            )
        return data

    def fetch(
        self,
        name: str,
        dest_dir: str | os.PathLike[str],
        *,
        alias: str = LATEST_ALIAS,
        version: str | None = None,
    ) -> tuple[Path, ModelVersion]:
        """Resolve ``alias`` (or ``version``) once, copy that version's verified file into ``dest_dir``.

        The file and the returned :class:`ModelVersion` are the same version even if another writer moves the
        alias meanwhile: after resolution only the immutable version directory is read.
        """
        model = self.resolve(name, alias=alias, version=version)
        data = self.read_bytes(name, version=model.version)
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / model.metadata["file_name"]
        target.write_bytes(data)
        return target, model

    def download(
        self,
        name: str,
        dest_dir: str | os.PathLike[str],
        *,
        alias: str = LATEST_ALIAS,
        version: str | None = None,
    ) -> Path:
        """Copy a verified model file into a local directory and return the local file path (see :meth:`fetch`)."""
        return self.fetch(name, dest_dir, alias=alias, version=version)[0]

    def versions(self, name: str) -> list[str]:
        """Complete versions of ``name`` (those with metadata), oldest first."""
        validate_model_name(name)
        return sorted(self._complete_versions(name), key=lambda item: int(item[1:]))

    def move_alias(
        self, name: str, alias: str, version: str, *, record: Mapping[str, Any] | None = None
    ) -> ModelVersion:
        """Point ``alias`` at ``version`` (an existing one) and append the move, with ``record``, to the history.

        ``record`` says who moved it and why (JSON-safe); the history keeps the version the alias left. ``latest`` is
        not movable: it always names the highest version.
        """
        validate_model_name(name)
        validate_version(version)
        alias = validate_alias(alias)
        if alias == LATEST_ALIAS:
            raise ValueError(
                f"the {LATEST_ALIAS!r} alias always names the newest version; it cannot be moved"
            )
        model_dir = self.root / name
        with self._lock(model_dir):
            record_of_version = self._read_metadata(
                name, version
            )  # raises ModelNotFoundError for a bad version
            alias_map = self._read_aliases(name)
            history = self.alias_history(name)
            history.append(
                {
                    **dict(record or {}),
                    "alias": alias,
                    "version": version,
                    "previous": alias_map.get(alias),
                    "at": datetime.now(UTC).isoformat(),
                }
            )
            alias_map[alias] = version
            self._write_aliases(name, alias_map)
            self._write_atomic(model_dir / HISTORY_FILE, _json_bytes({"format": _FORMAT, "moves": history}))
        return self._model_version(name, version, record_of_version, alias_map)

    def alias_history(self, name: str) -> list[dict[str, Any]]:
        """Every ``move_alias`` of ``name``, oldest first."""
        validate_model_name(name)
        path = self.root / name / HISTORY_FILE
        try:
            document = json.loads(path.read_bytes())
        except FileNotFoundError:
            return []
        except json.JSONDecodeError as err:
            raise ModelIntegrityError(f"{path} is not valid JSON: {err}") from err
        return list(document.get("moves", []))

    def aliases(self, name: str) -> dict[str, str]:
        validate_model_name(name)
        return dict(self._read_aliases(name))

    def metadata(self, name: str, version: str) -> dict[str, Any]:
        validate_model_name(name)
        return self._read_metadata(name, version)

    # ------------------------------------------------------------------------------------------- internals
    @staticmethod
    def _read_source(source: str | os.PathLike[str] | bytes, suffix: str | None) -> tuple[bytes, str]:
        if isinstance(source, bytes):
            return source, suffix if suffix is not None else ".bin"
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"Model file to store does not exist or is not a file: {path}")
        return path.read_bytes(), suffix if suffix is not None else "".join(path.suffixes) or ".bin"

    def _model_version(
        self, name: str, version: str, record: Mapping[str, Any], alias_map: Mapping[str, str]
    ) -> ModelVersion:
        store_uri = str(self.root / name / version / record["file_name"])
        return ModelVersion(
            name=name,
            version=version,
            aliases=tuple(sorted(alias for alias, target in alias_map.items() if target == version)),
            uri=store_uri,
            digest=record["sha256"],
            store_uri=store_uri,
            metadata=dict(record),
        )

    def _complete_versions(self, name: str) -> list[str]:
        model_dir = self.root / name
        if not model_dir.exists():
            return []
        return [
            child.name
            for child in model_dir.iterdir()
            if _VERSION.fullmatch(child.name) and (child / METADATA_FILE).exists()
        ]

    def _next_version_number(self, name: str) -> int:
        model_dir = self.root / name
        numbers = [
            int(match.group(1))
            for child in model_dir.iterdir()
            if (match := _VERSION.fullmatch(child.name)) is not None
        ]
        return max(numbers, default=-1) + 1

    def _read_metadata(self, name: str, version: str) -> dict[str, Any]:
        path = self.root / name / version / METADATA_FILE
        try:
            record = json.loads(path.read_bytes())
        except FileNotFoundError as err:
            known = self.versions(name)
            raise ModelNotFoundError(
                f"Model {name!r} has no version {version!r} in store {self.root}; known versions: "
                f"{known or 'none'}."
            ) from err
        except json.JSONDecodeError as err:
            raise ModelIntegrityError(f"{path} is not valid JSON: {err}") from err
        return record

    def _read_aliases(self, name: str) -> dict[str, str]:
        path = self.root / name / ALIASES_FILE
        try:
            document = json.loads(path.read_bytes())
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as err:
            raise ModelIntegrityError(f"{path} is not valid JSON: {err}") from err
        aliases = document.get("aliases") if isinstance(document, dict) else None
        if not isinstance(aliases, dict):
            raise ModelIntegrityError(f"{path} has no 'aliases' mapping.")
        return {str(alias): str(version) for alias, version in aliases.items()}

    def _write_aliases(self, name: str, alias_map: Mapping[str, str]) -> None:
        document = {"format": _FORMAT, "aliases": dict(sorted(alias_map.items()))}
        self._write_atomic(self.root / name / ALIASES_FILE, _json_bytes(document))

    def _write_atomic(self, target: ObjectStoragePath, data: bytes) -> None:
        """Write to a temporary sibling, then rename over the target (atomic on local file systems)."""
        temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
        temporary.write_bytes(data)
        if self.is_local:
            os.replace(temporary.path, target.path)
        else:
            temporary.rename(target)

    @contextlib.contextmanager
    def _lock(self, model_dir: ObjectStoragePath) -> Iterator[None]:
        """An exclusive per-model lock on local file systems; a no-op on object stores (see module docs)."""
        if not self.is_local:
            yield
            return
        import fcntl

        with open(Path(model_dir.path) / LOCK_FILE, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _json_bytes(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True, default=str).encode()
