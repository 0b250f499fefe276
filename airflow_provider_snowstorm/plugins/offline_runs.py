"""Read the offline W&B runs the hook writes under ``<run_dir>/wandb/offline-run-<time>-<id>/``.

wandb 0.31 keeps an offline run's config and metrics only in its ``run-<id>.wandb`` file (a LevelDB-style log of
protobuf records; ``files/config.yaml`` and ``files/wandb-summary.json`` appear only after ``wandb sync``), and the
logged images under ``files/media/images``. This module reads both without talking to W&B.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["OfflineRun", "find_run", "list_runs", "read_run", "run_id_of"]

_MAGIC = b":W&B"
_FILE_HEADER = 7  # magic, 2-byte key, 1-byte version
_BLOCK = 32768
_RECORD_HEADER = 7  # crc32 (4), length (2), type (1)
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass
class OfflineRun:
    run_id: str
    folder: Path
    name: str = ""
    project: str = ""
    entity: str = ""
    group: str = ""
    job_type: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    finished: bool = False  # its exit record is written (wandb writes the file a moment after ``finish()``)

    @property
    def metrics(self) -> dict[str, Any]:
        """Summary values a person reads: no wandb internals (``_step``, ...) and no media descriptors."""
        return {
            key: value
            for key, value in self.summary.items()
            if not key.startswith("_") and not isinstance(value, dict)
        }


def _records(path: Path) -> Iterator[bytes]:
    data = path.read_bytes()
    if not data.startswith(_MAGIC):
        raise ValueError(f"{path} is not a W&B run file")
    pos, pending = _FILE_HEADER, b""
    while pos + _RECORD_HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _RECORD_HEADER:  # block trailer: padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _RECORD_HEADER])
        pos += _RECORD_HEADER
        chunk = data[pos : pos + length]
        pos += length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""
        elif length == 0:  # zero padding to the end of the block
            pos += (_BLOCK - pos % _BLOCK) % _BLOCK


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _apply(target: dict[str, Any], updates: Iterable[Any]) -> None:
    """Config or summary update items (``key`` or ``nested_key`` path, JSON value); wandb's own ``_wandb`` skipped."""
    for item in updates:
        path = list(item.nested_key) or [item.key]
        if path[0] == "_wandb":
            continue
        node = target
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = _value(item.value_json)


def run_id_of(folder: Path) -> str:
    """The run id in an offline run folder's name (``offline-run-<date>_<time>-<id>``; an id may hold ``-``)."""
    return folder.name.split("-", 3)[-1]


def read_run(folder: Path) -> OfflineRun:
    """Everything the run page shows, from an offline run folder and the folders of the same run resumed later
    (evaluation adds its chart to the training run), oldest first."""
    from wandb.proto import wandb_internal_pb2 as pb

    run_id = run_id_of(folder)
    run = OfflineRun(run_id=run_id, folder=folder)
    folders = sorted(
        {
            folder,
            *(p for p in folder.parent.glob("offline-run-*-*") if p.is_dir() and run_id_of(p) == run_id),
        },
        key=lambda p: p.name,
    )
    for run_file in (part / f"run-{run_id}.wandb" for part in folders):
        if not run_file.is_file():
            continue
        for data in _records(run_file):
            record = pb.Record()
            try:
                record.ParseFromString(data)
            except Exception:  # noqa: S112 - a torn last record of a run still being written
                continue
            kind = record.WhichOneof("record_type")
            if kind == "run":
                r = record.run
                run.name, run.project, run.entity = r.display_name, r.project, r.entity
                run.group, run.job_type = r.run_group, r.job_type
                _apply(run.config, r.config.update)
            elif kind == "config":
                _apply(run.config, record.config.update)
            elif kind == "summary":
                _apply(run.summary, record.summary.update)
            elif kind == "exit":
                run.finished = True
            elif kind == "artifact":
                a = record.artifact
                run.artifacts.append(
                    {
                        "name": a.name,
                        "type": a.type,
                        "aliases": list(a.aliases),
                        "digest": a.digest,
                        "metadata": _value(a.metadata) if a.metadata else {},
                    }
                )
    run.images = sorted(
        image for part in folders for image in (part / "files" / "media" / "images").glob("*.png")
    )
    return run


def list_runs(run_dir: str | Path) -> list[Path]:
    """Offline run folders under ``run_dir``, newest first."""
    base = Path(run_dir).expanduser() / "wandb"
    if not base.is_dir():
        return []
    return sorted((p for p in base.glob("offline-run-*-*") if p.is_dir()), key=lambda p: p.name, reverse=True)


def find_run(run_dir: str | Path, run_id: str) -> Path | None:
    """The folder of run ``run_id`` (the last one if it was resumed), or None."""
    if not RUN_ID.match(run_id):
        return None
    return next((folder for folder in list_runs(run_dir) if run_id_of(folder) == run_id), None)
