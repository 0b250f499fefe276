"""WandbHook: connection settings, real offline runs with the wandb library, and the (mocked) online path."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest
import wandb

from airflow_provider_snowstorm.hooks.wandb import WandbHook, wandb_alias
from airflow_provider_snowstorm.registry import ModelNotFoundError, ModelStore

FAKE_KEY = "f4ke" * 11  # 44 characters: wandb rejects keys shorter than 40
BASE_URL = "https://wandb.example.com"
DAG_RUN_ID = "manual__2026-11-27T03:00:00+00:00"


def set_connection(monkeypatch: pytest.MonkeyPatch, conn_id: str = "wandb_default", **fields: Any) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "wandb", **fields}))


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, str]:
    return {"model_store": str(tmp_path / "store"), "run_dir": str(tmp_path / "runs")}


# ---------------------------------------------------------------------------------------------- settings
def test_settings_come_from_the_connection(monkeypatch: pytest.MonkeyPatch, dirs: dict[str, str]) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    extra = {"entity": "acme", "project": "spend", "mode": "online", "init_timeout": "5", **dirs}
    set_connection(monkeypatch, host=BASE_URL, password=FAKE_KEY, extra=extra)

    settings = WandbHook().settings

    assert (settings.mode, settings.entity, settings.project, settings.base_url) == (
        "online",
        "acme",
        "spend",
        BASE_URL,
    )
    assert (settings.model_store, settings.run_dir, settings.init_timeout) == (
        dirs["model_store"],
        dirs["run_dir"],
        5.0,
    )
    assert FAKE_KEY not in repr(settings)


def test_bare_host_becomes_an_https_url_with_port(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, host="wandb.internal", port=8443)

    assert WandbHook().settings.base_url == "https://wandb.internal:8443"


@pytest.mark.parametrize(
    ("password", "extra", "env_mode", "reason"),
    [
        (None, {}, None, "no API key"),
        (FAKE_KEY, {"mode": "offline"}, None, "mode 'offline'"),
        (FAKE_KEY, {}, "offline", "WANDB_MODE=offline"),
    ],
)
def test_offline_triggers(
    monkeypatch: pytest.MonkeyPatch, password: str | None, extra: dict, env_mode: str | None, reason: str
) -> None:
    if env_mode is None:
        monkeypatch.delenv("WANDB_MODE", raising=False)
    else:
        monkeypatch.setenv("WANDB_MODE", env_mode)
    set_connection(monkeypatch, password=password, extra=extra)

    settings = WandbHook().settings

    assert settings.mode == "offline"
    assert reason in (settings.offline_reason or "")


def test_missing_default_connection_means_offline_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_WANDB_DEFAULT", raising=False)
    monkeypatch.delenv("SNOWSTORM_HOME", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))

    settings = WandbHook().settings

    # One place per machine (under Airflow's home), whatever the worker's working directory.
    assert (settings.mode, settings.project, settings.model_store, settings.run_dir) == (
        "offline",
        "snowstorm",
        str(tmp_path / "airflow" / "snowstorm" / "model-store"),
        str(tmp_path / "airflow" / "snowstorm" / "wandb"),
    )


def test_snowstorm_home_overrides_the_default_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_WANDB_DEFAULT", raising=False)
    monkeypatch.setenv("SNOWSTORM_HOME", str(tmp_path / "shared"))

    assert WandbHook().settings.model_store == str(tmp_path / "shared" / "model-store")


def test_missing_named_connection_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowNotFoundException

    monkeypatch.delenv("AIRFLOW_CONN_WANDB_PROD", raising=False)

    with pytest.raises(AirflowNotFoundException, match="wandb_prod"):
        _ = WandbHook(wandb_conn_id="wandb_prod").settings


def test_invalid_mode_names_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, extra={"mode": "sometimes"})

    with pytest.raises(ValueError, match=r"'wandb_default': extra 'mode' .* got 'sometimes'"):
        _ = WandbHook().settings


def test_hook_arguments_override_the_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    set_connection(monkeypatch, password=FAKE_KEY, extra={"project": "spend", "model_store": "/elsewhere"})

    hook = WandbHook(mode="offline", project="other", model_store=tmp_path / "s")

    assert (hook.settings.mode, hook.settings.project) == ("offline", "other")
    assert hook.model_store.root.path == str(tmp_path / "s")


def test_dag_run_ids_become_valid_wandb_aliases() -> None:
    assert wandb_alias(DAG_RUN_ID) == "manual__2026-11-27T03-00-00+00-00"


# ---------------------------------------------------------------------------------------------- real offline run
@dataclass
class OfflineSession:
    hook: WandbHook
    run_dir: Path
    store_dir: Path
    run_url: str | None
    link: str
    run_id: str
    first: Any
    retry: Any
    other: Any


@pytest.fixture(scope="module")
def offline_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OfflineSession]:
    """One real offline wandb run (init costs ~1 s) that logs everything; the tests below inspect it."""
    root = tmp_path_factory.mktemp("wandb-offline")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("WANDB_MODE", "offline")
        extra = {
            "entity": "acme",
            "project": "spend",
            "model_store": str(root / "store"),
            "run_dir": str(root),
        }
        set_connection(monkeypatch, host=BASE_URL, password=FAKE_KEY, extra=extra)
        hook = WandbHook()
        model = root / "detector.skops"
        png = root / "chart.png"
        figure, axes = plt.subplots()
        axes.plot([1, 2, 3])
        figure.savefig(png)
        with hook.start_run(
            "train-costs", group=DAG_RUN_ID, job_type="train", config={"cutoff": 3.0}, tags=["test"]
        ) as run:
            hook.log_metrics({"series": 3, "anomalies": 1})
            hook.log_table("scores", pd.DataFrame({"series": ["a", "b"], "score": [0.1, 0.9]}))
            hook.log_image("chart_file", png, caption="from a file")
            hook.log_image("chart_figure", figure)
            model.write_bytes(b"attempt 1")
            registry = hook.registry
            first = registry.register(run, model, "costs", aliases=["candidate"], metadata={"rows": 10})
            model.write_bytes(b"attempt 2")
            retry = registry.register(run, model, "costs", aliases=["candidate"], metadata={"rows": 11})
            other = registry.register(run, model, "storage", idempotency_alias="explicit-run")
            url, link = hook.run_url(run), hook.link_url(run)
            run_id = run.id
        plt.close(figure)
        yield OfflineSession(hook, root / "wandb", root / "store", url, link, run_id, first, retry, other)


def test_offline_run_is_written_by_wandb_for_a_later_sync(offline_session: OfflineSession) -> None:
    run_dirs = list(offline_session.run_dir.glob(f"offline-run-*-{offline_session.run_id}"))

    assert len(run_dirs) == 1
    assert (run_dirs[0] / f"run-{offline_session.run_id}.wandb").stat().st_size > 0


def test_offline_run_url_uses_the_connection_base_url(offline_session: OfflineSession) -> None:
    assert offline_session.run_url == f"{BASE_URL}/acme/spend/runs/{offline_session.run_id}"


def test_offline_link_opens_the_plugins_local_run_page(offline_session: OfflineSession) -> None:
    """The W&B URL holds nothing until ``wandb sync``: the button opens the run's page on the API server."""
    assert offline_session.link == f"/snowstorm/runs/{offline_session.run_id}"


def test_offline_model_version_comes_from_the_store(offline_session: OfflineSession) -> None:
    first = offline_session.first

    assert (first.name, first.version) == ("costs", "v0")
    assert first.uri == first.store_uri
    assert set(first.aliases) == {"latest", "candidate", wandb_alias(DAG_RUN_ID)}


def test_retry_in_the_same_dag_run_replaces_instead_of_adding(offline_session: OfflineSession) -> None:
    store = ModelStore(offline_session.store_dir)

    assert offline_session.retry.version == offline_session.first.version
    assert store.versions("costs") == ["v0"]
    assert store.read_bytes("costs", alias=wandb_alias(DAG_RUN_ID)) == b"attempt 2"
    assert store.metadata("costs", "v0")["metadata"]["rows"] == 11


def test_store_metadata_records_the_wandb_run(offline_session: OfflineSession) -> None:
    record = ModelStore(offline_session.store_dir).metadata("costs", "v0")["metadata"]["wandb"]

    assert record == {
        "mode": "offline",
        "run_id": offline_session.run_id,
        "run_url": offline_session.run_url,
        "artifact": None,
        "artifact_version": None,
    }


def test_explicit_idempotency_alias_is_used(offline_session: OfflineSession) -> None:
    assert "explicit-run" in offline_session.other.aliases
    assert wandb_alias(DAG_RUN_ID) not in offline_session.other.aliases


def test_offline_download_reads_the_verified_store_copy(
    offline_session: OfflineSession, tmp_path: Path
) -> None:
    path, version = offline_session.hook.registry.fetch("costs", alias=DAG_RUN_ID, dest_dir=tmp_path)

    assert path.read_bytes() == b"attempt 2"
    assert version.version == offline_session.retry.version


def test_api_key_is_never_written_to_disk(offline_session: OfflineSession) -> None:
    leaked = [
        path
        for directory in (offline_session.run_dir, offline_session.store_dir)
        for path in directory.rglob("*")
        if path.is_file() and FAKE_KEY.encode() in path.read_bytes()
    ]

    assert leaked == []


def test_api_key_is_redacted_from_run_config(monkeypatch: pytest.MonkeyPatch, dirs: dict[str, str]) -> None:
    set_connection(monkeypatch, password=FAKE_KEY, extra={"mode": "offline", **dirs})
    init = MagicMock(name="wandb.init")
    monkeypatch.setattr(wandb, "init", init)

    WandbHook().start_run("r", config={"oops": f"token={FAKE_KEY}"})

    assert init.call_args.kwargs["config"] == {"oops": "token=***"}


def test_logging_without_a_run_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, extra={"mode": "offline"})

    with pytest.raises(RuntimeError, match=r"call WandbHook.start_run\(\) first"):
        WandbHook().log_metrics({"a": 1})


def test_unreachable_wandb_falls_back_to_offline(
    monkeypatch: pytest.MonkeyPatch, dirs: dict[str, str], mocker: Any
) -> None:
    """A real online init against a closed local port fails; the hook warns and runs offline."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    extra = {"entity": "acme", "init_timeout": 1, **dirs}
    set_connection(monkeypatch, host="http://127.0.0.1:9", password=FAKE_KEY, extra=extra)
    hook = WandbHook()
    warning = mocker.spy(hook.log, "warning")

    with hook.start_run("fallback") as run:
        assert run.offline
        hook.log_metrics({"ok": 1})

    assert hook.is_offline
    assert warning.call_count == 1
    assert "Continuing offline" in warning.call_args.args[0]
    assert "wandb sync" in warning.call_args.args[0]
    assert FAKE_KEY not in str(warning.call_args)
    assert not [
        p for p in Path(dirs["run_dir"]).rglob("*") if p.is_file() and FAKE_KEY.encode() in p.read_bytes()
    ]


# ---------------------------------------------------------------------------------------------- online (mocked)
@pytest.fixture
def online(
    monkeypatch: pytest.MonkeyPatch, dirs: dict[str, str], mocker: Any, tmp_path: Path
) -> dict[str, Any]:
    """An online hook whose W&B run and public API are mocks; the model store is real."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    extra = {"entity": "acme", "project": "spend", **dirs}
    set_connection(monkeypatch, host=BASE_URL, password=FAKE_KEY, extra=extra)
    run = MagicMock(name="run", offline=False, url=f"{BASE_URL}/acme/spend/runs/abc", id="abc")
    run.entity, run.project, run.group = "acme", "spend", DAG_RUN_ID
    logged = MagicMock(name="logged", version="v7", qualified_name="acme/spend/costs:v7", aliases=["latest"])
    run.log_artifact.return_value = logged
    init = mocker.patch.object(wandb, "init", return_value=run)
    api = MagicMock(name="api")
    api.artifact.side_effect = wandb.errors.CommError("artifact not found")
    mocker.patch.object(WandbHook, "_public_api", return_value=api)
    probe = mocker.patch("requests.get", return_value=MagicMock(status_code=200))
    model = tmp_path / "detector.skops"
    model.write_bytes(b"model bytes")
    hook = WandbHook()
    return {
        "hook": hook,
        "registry": hook.registry,
        "run": run,
        "logged": logged,
        "init": init,
        "api": api,
        "model": model,
        "probe": probe,
    }


def test_online_start_passes_key_and_group_to_wandb(online: dict[str, Any]) -> None:
    online["hook"].start_run("train", group=DAG_RUN_ID, job_type="train")

    kwargs = online["init"].call_args.kwargs
    assert (kwargs["mode"], kwargs["group"], kwargs["entity"], kwargs["project"]) == (
        "online",
        DAG_RUN_ID,
        "acme",
        "spend",
    )
    assert kwargs["settings"].api_key == FAKE_KEY
    assert kwargs["settings"].base_url == BASE_URL


def test_online_log_model_logs_links_and_stores(online: dict[str, Any]) -> None:
    run, registry = online["run"], online["registry"]

    version = registry.register(run, online["model"], "costs", aliases=["candidate"])

    artifact = run.log_artifact.call_args.args[0]
    assert (artifact.name, artifact.type) == ("costs", "model")
    assert run.log_artifact.call_args.kwargs["aliases"] == ["candidate", wandb_alias(DAG_RUN_ID)]
    run.link_artifact.assert_called_once_with(
        online["logged"], "wandb-registry-model/costs", aliases=[wandb_alias(DAG_RUN_ID)]
    )
    assert (version.version, version.uri) == ("v7", "acme/spend/costs:v7")
    # One numbering: the store's copy of an online version carries W&B's number, not a count of its own.
    assert registry.mirror.versions("costs") == ["v7"]
    assert registry.mirror.metadata("costs", "v7")["metadata"]["wandb"]["artifact"] == "acme/spend/costs:v7"
    assert registry.store.versions("costs") == []


def test_online_retry_with_same_bytes_reuses_the_wandb_version(online: dict[str, Any]) -> None:
    run, registry = online["run"], online["registry"]
    previous = MagicMock(name="previous", version="v7", qualified_name="acme/spend/costs:v7", aliases=["x"])
    previous.metadata = {"sha256": registry.store.put("probe", online["model"]).digest}
    online["api"].artifact.side_effect = None
    online["api"].artifact.return_value = previous

    version = registry.register(run, online["model"], "costs")

    run.log_artifact.assert_not_called()
    previous.save.assert_called_once()
    assert version.version == "v7"
    online["api"].artifact.assert_called_once_with(
        f"acme/spend/costs:{wandb_alias(DAG_RUN_ID)}", type="model"
    )


def test_online_retry_with_new_bytes_replaces_the_earlier_attempt(online: dict[str, Any]) -> None:
    run, registry = online["run"], online["registry"]
    previous = MagicMock(name="previous", version="v6", metadata={"sha256": "0" * 64})
    online["api"].artifact.side_effect = None
    online["api"].artifact.return_value = previous

    registry.register(run, online["model"], "costs")

    run.log_artifact.assert_called_once()
    previous.delete.assert_called_once_with(delete_aliases=True)


def test_registry_link_failure_does_not_fail_the_task(online: dict[str, Any]) -> None:
    online["run"].link_artifact.side_effect = wandb.errors.CommError("no registry")

    version = online["registry"].register(online["run"], online["model"], "costs")

    assert version.version == "v7"


def wandb_artifact(version: str, data: bytes, aliases: list[str]) -> MagicMock:
    """A W&B Artifact (one immutable version) whose download writes ``data``."""
    import hashlib

    artifact = MagicMock(name=f"artifact {version}", version=version, aliases=aliases)
    artifact.qualified_name = f"acme/spend/costs:{version}"
    artifact.metadata = {"file_name": "detector.skops", "sha256": hashlib.sha256(data).hexdigest()}

    def download(root: str) -> str:
        Path(root).mkdir(parents=True, exist_ok=True)
        (Path(root) / "detector.skops").write_bytes(data)
        return root

    artifact.download.side_effect = download
    return artifact


def test_online_fetch_resolves_the_alias_once_and_returns_that_version(
    online: dict[str, Any], tmp_path: Path
) -> None:
    online["api"].artifact.side_effect = None
    online["api"].artifact.return_value = wandb_artifact("v4", b"from wandb", ["production"])

    path, version = online["registry"].fetch("costs", alias="production", dest_dir=tmp_path / "dl")

    online["api"].artifact.assert_called_once_with("acme/spend/costs:production", type="model")
    assert path.read_bytes() == b"from wandb"
    assert (version.version, version.uri) == ("v4", "acme/spend/costs:v4")


def test_online_fetch_normalises_the_alias_like_register(online: dict[str, Any], tmp_path: Path) -> None:
    online["api"].artifact.side_effect = None
    online["api"].artifact.return_value = wandb_artifact("v2", b"x", [wandb_alias(DAG_RUN_ID)])

    online["registry"].fetch("costs", alias=DAG_RUN_ID, dest_dir=tmp_path / "dl")

    online["api"].artifact.assert_called_once_with(
        f"acme/spend/costs:{wandb_alias(DAG_RUN_ID)}", type="model"
    )


def test_online_fetch_of_a_missing_model_is_not_found(online: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="has no model 'costs'"):
        online["registry"].fetch("costs", dest_dir=tmp_path / "dl")


def test_unreachable_wandb_fetches_the_mirror_with_wandbs_numbers(
    online: dict[str, Any], tmp_path: Path, mocker: Any
) -> None:
    import requests

    registry = online["registry"]
    registry.mirror.put("costs", b"copy of W&B v7", version="v7")
    registry.store.put("costs", b"an offline model, store numbering")
    online["probe"].side_effect = requests.ConnectionError("connection refused")
    warning = mocker.spy(online["hook"].log, "warning")

    path, version = registry.fetch("costs", dest_dir=tmp_path / "dl")

    assert (path.read_bytes(), version.version) == (b"copy of W&B v7", "v7")
    online["api"].artifact.assert_not_called()
    assert warning.call_count == 1
    assert FAKE_KEY not in str(warning.call_args)


def test_online_run_url_is_wandbs_own(online: dict[str, Any]) -> None:
    assert online["hook"].run_url(online["run"]) == f"{BASE_URL}/acme/spend/runs/abc"


def test_online_link_opens_wandbs_run_page(online: dict[str, Any]) -> None:
    hook = online["hook"]
    hook.start_run("train", group=DAG_RUN_ID, job_type="train")

    assert hook.link_url() == f"{BASE_URL}/acme/spend/runs/abc"


# ---------------------------------------------------------------------------------------------- provider info
@pytest.fixture(scope="module")
def providers_manager() -> Any:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    manager.initialize_providers_hooks()
    return manager


def test_connection_form_loads_through_providers_manager(providers_manager: Any) -> None:
    widgets = {key for key in providers_manager.connection_form_widgets if key.startswith("extra__wandb__")}
    behaviour = providers_manager.field_behaviours["wandb"]

    assert widgets == {
        f"extra__wandb__{field}"
        for field in ("entity", "project", "mode", "model_store", "run_dir", "registry", "init_timeout")
    }
    assert behaviour["relabeling"] == {"host": "W&B base URL", "password": "API key"}
    assert "password" not in behaviour["hidden_fields"]


def test_connection_type_resolves_to_the_hook() -> None:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook_info = ProvidersManagerTaskRuntime().hooks["wandb"]

    assert (hook_info.hook_class_name, hook_info.hook_name, hook_info.connection_id_attribute_name) == (
        "airflow_provider_snowstorm.hooks.wandb.WandbHook",
        "Weights & Biases",
        "wandb_conn_id",
    )


def test_connection_type_entry_matches_airflows_provider_yaml_schema() -> None:
    import importlib.resources

    import jsonschema

    from airflow_provider_snowstorm.get_provider_info import get_provider_info

    schema = json.loads(
        importlib.resources.files("airflow").joinpath("provider.yaml.schema.json").read_text()
    )
    entry_schema = schema["properties"]["connection-types"]["items"]
    entries = [e for e in get_provider_info()["connection-types"] if e["connection-type"] == "wandb"]

    assert len(entries) == 1
    jsonschema.validate(entries[0], entry_schema)


# ---------------------------------------------------------------------------------------------- deprecations
def test_positional_connection_id_still_works_with_a_deprecation_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_connection(monkeypatch, conn_id="wandb_prod", extra={"project": "prod-spend"})

    with pytest.warns(DeprecationWarning, match="wandb_conn_id="):
        hook = WandbHook("wandb_prod")

    assert hook.settings.project == "prod-spend"


def test_old_model_store_module_still_imports_with_a_deprecation_warning() -> None:
    import importlib
    import sys

    sys.modules.pop("airflow_provider_snowstorm.hooks.model_store", None)
    with pytest.warns(DeprecationWarning, match="airflow_provider_snowstorm.registry"):
        module = importlib.import_module("airflow_provider_snowstorm.hooks.model_store")

    assert module.ModelStore is ModelStore


def test_log_model_and_download_model_delegate_to_the_registry(
    monkeypatch: pytest.MonkeyPatch, dirs: dict[str, str], tmp_path: Path
) -> None:
    set_connection(monkeypatch, extra={"mode": "offline", **dirs})
    hook = WandbHook()
    model = tmp_path / "m.skops"
    model.write_bytes(b"old api")

    with pytest.warns(DeprecationWarning, match="ModelRegistry"):
        version = hook.log_model(None, model, "costs", idempotency_alias="run-1")
    with pytest.warns(DeprecationWarning, match="ModelRegistry"):
        path = hook.download_model("costs", alias="run-1", dest_dir=tmp_path / "dl")

    assert version.version == "v0"
    assert path.read_bytes() == b"old api"


# ---------------------------------------------------------------------------------------------- entity lookup
@pytest.fixture
def keyed_without_entity(
    monkeypatch: pytest.MonkeyPatch, dirs: dict[str, str], mocker: Any
) -> dict[str, Any]:
    """An online connection with a key and no ``entity``; ``wandb.Api`` and the reachability probe are mocks."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    set_connection(monkeypatch, host=BASE_URL, password=FAKE_KEY, extra={"project": "spend", **dirs})
    api = MagicMock(name="api", default_entity="key-owner")
    api_class = mocker.patch.object(wandb, "Api", return_value=api)
    probe = mocker.patch("requests.get", return_value=MagicMock(status_code=200))
    return {"api": api, "api_class": api_class, "probe": probe}


def offline_run(entity: str | None = None) -> MagicMock:
    run = MagicMock(name="run", offline=True, url=None, id="r1", project="spend")
    run.entity = entity
    return run


def test_entity_is_the_keys_default_asked_once_with_a_short_timeout(
    keyed_without_entity: dict[str, Any],
) -> None:
    hook = WandbHook()

    assert hook.entity == "key-owner"
    assert hook.entity == "key-owner"
    url = hook.run_url(offline_run())

    api_class = keyed_without_entity["api_class"]
    assert api_class.call_count == 1
    kwargs = api_class.call_args.kwargs
    assert kwargs["api_key"] == FAKE_KEY
    assert kwargs["overrides"] == {"base_url": BASE_URL}
    assert 1 <= kwargs["timeout"] <= 5
    assert url == f"{BASE_URL}/key-owner/spend/runs/r1"


def test_entity_falls_back_to_the_viewers(keyed_without_entity: dict[str, Any]) -> None:
    api = keyed_without_entity["api"]
    api.default_entity = None
    api.viewer = MagicMock(entity="viewer-team")

    assert WandbHook().entity == "viewer-team"


def test_online_run_gets_the_resolved_entity(keyed_without_entity: dict[str, Any], mocker: Any) -> None:
    init = mocker.patch.object(wandb, "init", return_value=MagicMock(name="run"))

    WandbHook().start_run("train")

    assert init.call_args.kwargs["entity"] == "key-owner"


def test_the_connections_entity_wins_without_asking(
    keyed_without_entity: dict[str, Any], monkeypatch: pytest.MonkeyPatch, dirs: dict[str, str]
) -> None:
    set_connection(monkeypatch, host=BASE_URL, password=FAKE_KEY, extra={"entity": "acme", **dirs})

    assert WandbHook().entity == "acme"
    keyed_without_entity["api_class"].assert_not_called()


def test_failed_lookup_gives_no_entity_no_link_and_no_error(
    keyed_without_entity: dict[str, Any], mocker: Any
) -> None:
    keyed_without_entity["api_class"].side_effect = wandb.errors.CommError("timed out")
    hook = WandbHook()
    error = mocker.spy(hook.log, "error")
    warning = mocker.spy(hook.log, "warning")

    assert hook.entity is None
    assert hook.entity is None
    assert hook.run_url(offline_run()) is None
    assert keyed_without_entity["api_class"].call_count == 1  # cached: failed once, not asked again
    assert error.call_count == 0
    assert warning.call_count == 0


@pytest.mark.parametrize("offline_by", ["mode", "env"])
def test_offline_asks_nothing_and_has_no_entity(
    keyed_without_entity: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    dirs: dict[str, str],
    mocker: Any,
    offline_by: str,
) -> None:
    if offline_by == "mode":
        set_connection(monkeypatch, password=FAKE_KEY, extra={"mode": "offline", **dirs})
    else:
        monkeypatch.setenv("WANDB_MODE", "offline")
    hook = WandbHook()
    error = mocker.spy(hook.log, "error")

    assert hook.entity is None
    assert hook.run_url(offline_run()) is None
    keyed_without_entity["api_class"].assert_not_called()
    keyed_without_entity["probe"].assert_not_called()
    assert error.call_count == 0


def test_no_key_asks_nothing(keyed_without_entity: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    set_connection(monkeypatch, host=BASE_URL, extra={"mode": "online"})

    assert WandbHook().entity is None
    keyed_without_entity["api_class"].assert_not_called()
