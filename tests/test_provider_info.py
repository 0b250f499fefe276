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
