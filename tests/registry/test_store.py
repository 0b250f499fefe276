"""The model store: versions, aliases, retries, integrity and concurrent writers."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_snowstorm.registry import (
    ModelIntegrityError,
    ModelNotFoundError,
    ModelStore,
)


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "store")


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "detector.skops"
    path.write_bytes(b"first model bytes")
    return path


def test_first_put_creates_v0_with_layout_on_disk(
    store: ModelStore, model_file: Path, tmp_path: Path
) -> None:
    stored = store.put("costs", model_file, idempotency_alias="run-1")

    model_dir = tmp_path / "store" / "costs"
    assert stored.version == "v0"
    assert (model_dir / "v0" / "model.skops").read_bytes() == b"first model bytes"
    assert json.loads((model_dir / "v0" / "metadata.json").read_text())["sha256"] == stored.digest
    assert json.loads((model_dir / "aliases.json").read_text())["aliases"] == {"latest": "v0", "run-1": "v0"}


def test_new_idempotency_alias_adds_a_version_and_moves_latest(store: ModelStore) -> None:
    store.put("costs", b"one", idempotency_alias="run-1")
    second = store.put("costs", b"two", idempotency_alias="run-2")

    assert second.version == "v1"
    assert second.aliases == ("latest", "run-2")
    assert store.aliases("costs") == {"latest": "v1", "run-1": "v0", "run-2": "v1"}
    assert store.read_bytes("costs") == b"two"
    assert store.read_bytes("costs", alias="run-1") == b"one"


def test_retry_with_same_idempotency_alias_replaces_the_version_in_place(store: ModelStore) -> None:
    first = store.put("costs", b"attempt 1", idempotency_alias="run-1", metadata={"try": 1})
    retry = store.put("costs", b"attempt 2", idempotency_alias="run-1", metadata={"try": 2})

    assert store.versions("costs") == ["v0"]
    assert retry.version == first.version == "v0"
    assert store.read_bytes("costs", alias="run-1") == b"attempt 2"
    record = store.metadata("costs", "v0")
    assert record["metadata"] == {"try": 2}
    assert record["writes"] == 2
    assert record["created_at"] == first.metadata["created_at"]
    assert store.aliases("costs") == {"latest": "v0", "run-1": "v0"}


def test_retry_of_an_older_run_keeps_latest_on_the_newest_version(store: ModelStore) -> None:
    store.put("costs", b"one", idempotency_alias="run-1")
    store.put("costs", b"two", idempotency_alias="run-2")
    store.put("costs", b"one again", idempotency_alias="run-1")

    assert store.aliases("costs")["latest"] == "v1"


def test_an_alias_names_exactly_one_version(store: ModelStore) -> None:
    store.put("costs", b"one", aliases=["production"])
    store.put("costs", b"two", aliases=["production"])

    assert store.resolve("costs", alias="production").version == "v1"
    assert store.resolve("costs", version="v0").aliases == ()


def test_tampered_model_file_fails_the_digest_check(store: ModelStore, tmp_path: Path) -> None:
    store.put("costs", b"genuine")
    (tmp_path / "store" / "costs" / "v0" / "model.bin").write_bytes(b"tampered")

    with pytest.raises(ModelIntegrityError, match=r"model\.bin is corrupt: its sha256"):
        store.read_bytes("costs")


def test_unknown_alias_error_lists_known_aliases(store: ModelStore) -> None:
    store.put("costs", b"x", idempotency_alias="run-1")

    with pytest.raises(ModelNotFoundError, match=r"no alias 'prod'.*\['latest', 'run-1'\]"):
        store.resolve("costs", alias="prod")


def test_unknown_model_has_no_latest(store: ModelStore) -> None:
    with pytest.raises(ModelNotFoundError, match="'missing' has no alias 'latest'"):
        store.read_bytes("missing")


def test_unknown_version_error_lists_known_versions(store: ModelStore) -> None:
    store.put("costs", b"x")

    with pytest.raises(ModelNotFoundError, match=r"no version 'v7'.*\['v0'\]"):
        store.resolve("costs", version="v7")


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x" * 129, "spaces here"])
def test_unsafe_model_names_are_rejected(store: ModelStore, name: str) -> None:
    with pytest.raises(ValueError, match="Invalid model name"):
        store.put(name, b"x")


def test_version_shaped_aliases_are_reserved(store: ModelStore) -> None:
    with pytest.raises(ValueError, match=r"alias 'v2'.*reserved for version numbers"):
        store.put("costs", b"x", aliases=["v2"])


def test_missing_source_file_is_named_in_the_error(store: ModelStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.skops"):
        store.put("costs", tmp_path / "nope.skops")


def test_download_writes_a_verified_copy(store: ModelStore, model_file: Path, tmp_path: Path) -> None:
    store.put("costs", model_file)

    local = store.download("costs", tmp_path / "out")

    assert local == tmp_path / "out" / "model.skops"
    assert local.read_bytes() == b"first model bytes"


def test_half_written_version_is_skipped_not_reused(store: ModelStore, tmp_path: Path) -> None:
    store.put("costs", b"one")
    (tmp_path / "store" / "costs" / "v1").mkdir()  # a writer died before metadata.json

    assert store.versions("costs") == ["v0"]
    assert store.put("costs", b"two").version == "v2"


def test_concurrent_writers_of_one_name_lose_no_version_or_alias(store: ModelStore) -> None:
    runs = [f"run-{index}" for index in range(16)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda run: store.put("costs", run.encode(), idempotency_alias=run), runs))

    assert sorted(int(result.version[1:]) for result in results) == list(range(16))
    aliases = store.aliases("costs")
    assert {run: aliases[run] for run in runs} == {result.aliases[-1]: result.version for result in results}
    assert aliases["latest"] == "v15"
    for run in runs:
        assert store.read_bytes("costs", alias=run) == run.encode()


def test_concurrent_writers_of_different_names_do_not_interfere(store: ModelStore) -> None:
    names = [f"model-{index}" for index in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda name: store.put(name, name.encode(), idempotency_alias="run-1"), names))

    for name in names:
        assert store.versions(name) == ["v0"]
        assert store.read_bytes(name) == name.encode()


def test_object_storage_backend_round_trip() -> None:
    """A non-local fsspec file system (memory://) takes the copy-rename path with no lock."""
    store = ModelStore(ObjectStoragePath("memory://snowstorm-test-store"))
    assert not store.is_local

    store.put("costs", b"one", idempotency_alias="run-1")
    store.put("costs", b"two", idempotency_alias="run-1")

    assert store.versions("costs") == ["v0"]
    assert store.read_bytes("costs") == b"two"
    assert str(store.resolve("costs").store_uri).startswith("memory://")


def test_moving_an_alias_points_it_at_that_version_and_records_who_and_why(
    store: ModelStore, model_file: Path
) -> None:
    store.put("costs", model_file, idempotency_alias="run-1")
    model_file.write_bytes(b"second model bytes")
    store.put("costs", model_file, idempotency_alias="run-2")

    store.move_alias("costs", "production", "v0", record={"by": "ana", "reason": "first model"})
    moved = store.move_alias("costs", "production", "v1", record={"by": "bo", "reason": "better F1"})
    back = store.move_alias("costs", "production", "v0", record={"by": "ana", "reason": "rollback"})

    assert moved.version == "v1"
    assert back.aliases == ("production", "run-1")
    assert store.resolve("costs", alias="production").version == "v0"
    assert store.resolve("costs").version == "v1"  # latest still names the newest
    history = store.alias_history("costs")
    assert [(m["version"], m["previous"], m["by"], m["reason"]) for m in history] == [
        ("v0", None, "ana", "first model"),
        ("v1", "v0", "bo", "better F1"),
        ("v0", "v1", "ana", "rollback"),
    ]
    assert all(m["alias"] == "production" and m["at"] for m in history)


def test_an_alias_cannot_move_to_a_missing_version_nor_latest_be_moved(
    store: ModelStore, model_file: Path
) -> None:
    store.put("costs", model_file)
    with pytest.raises(ModelNotFoundError, match="no version 'v5'"):
        store.move_alias("costs", "production", "v5")
    with pytest.raises(ValueError, match="cannot be moved"):
        store.move_alias("costs", "latest", "v0")
    assert "production" not in store.aliases("costs")
    assert store.alias_history("costs") == []
