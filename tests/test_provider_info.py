"""The provider is discovered by Airflow the way users meet it: through the ProvidersManager."""

from __future__ import annotations

from importlib.metadata import version

import pytest

import airflow_provider_snowstorm


@pytest.fixture(scope="module")
def providers_manager():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    manager.initialize_providers_list()
    return manager


def test_provider_is_discovered_under_its_distribution_name(providers_manager) -> None:
    assert "airflow-provider-snowstorm" in providers_manager.providers


def test_discovered_version_matches_package_version(providers_manager) -> None:
    provider = providers_manager.providers["airflow-provider-snowstorm"]
    assert provider.version == airflow_provider_snowstorm.__version__ == version("airflow-provider-snowstorm")


def test_extra_link_and_notifier_are_registered(providers_manager) -> None:
    assert "airflow_provider_snowstorm.links.wandb.WandbRunLink" in providers_manager.extra_links_class_names
    info = providers_manager.providers["airflow-provider-snowstorm"].data
    assert "airflow_provider_snowstorm.links.wandb.WandbRunLink" in info["extra-links"]
    assert (
        "airflow_provider_snowstorm.notifications.anomaly_report.AnomalyReportNotifier"
        in info["notifications"]
    )


def test_operator_modules_are_importable(providers_manager) -> None:
    import importlib

    info = providers_manager.providers["airflow-provider-snowstorm"].data
    modules = [module for entry in info["operators"] + info["hooks"] for module in entry["python-modules"]]
    assert {
        f"airflow_provider_snowstorm.operators.{name}" for name in ("train", "score", "evaluate", "monitor")
    } <= set(modules)
    for module in modules:
        importlib.import_module(module)


def test_plugin_is_loaded_by_airflow_with_lazy_provider_discovery() -> None:
    """The ``airflow.plugins`` entry point: loaded whatever ``[core] lazy_discover_providers`` says (a provider's
    ``plugins`` entry in get_provider_info is loaded only when it is False, which is not the default)."""
    from airflow import plugins_manager

    plugins, errors = plugins_manager._get_plugins()
    assert not errors
    snowstorm = next(plugin for plugin in plugins if plugin.name == "snowstorm")
    assert [app["url_prefix"] for app in snowstorm.fastapi_apps] == ["/snowstorm"]
    assert "Cost anomalies" in [view["name"] for view in snowstorm.external_views]
