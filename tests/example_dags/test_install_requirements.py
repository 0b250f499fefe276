"""`pip install airflow-provider-snowstorm` (no extra) must give a working provider and example DAGs.

Every module that the provider and the example DAGs import (outside ``local``, the emulator's extra) must come from a
distribution in the base dependencies, or from one that Airflow itself always installs (its API server's FastAPI and
Starlette, which the plugin uses: declaring them too let a fresh resolution pick a FastAPI that Airflow does not run
on): a task must never fail with a bare ModuleNotFoundError.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "airflow_provider_snowstorm"
OPTIONAL_PACKAGES = {PACKAGE / "local"}  # the `local` extra: the emulator, not the provider
AIRFLOW = "apache-airflow"


def base_requirements() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(text).name) for text in project["dependencies"]}


def airflow_requirements() -> set[str]:
    """What installing ``apache-airflow`` always brings: the unconditional requirements of Airflow's own distributions
    (apache-airflow, -core, -task-sdk; not the providers), read from their installed metadata."""
    names: set[str] = set()
    pending = [AIRFLOW]
    while pending:
        for text in requires(pending.pop()) or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue  # an extra's, or another Python's
            name = canonicalize_name(requirement.name)
            own = name.startswith(f"{AIRFLOW}-") and not name.startswith(f"{AIRFLOW}-providers-")
            if own and name not in names:
                pending.append(name)
            names.add(name)
    return names


def imported_modules(files: list[Path]) -> set[str]:
    modules = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module)
    return modules


def distributions_for(module: str) -> set[str]:
    parts = module.split(".")
    if parts[:2] == ["airflow", "providers"] and len(parts) > 2:
        name = "-".join(parts[2:4]) if parts[2] == "common" else parts[2]  # common.sql -> common-sql
        return {canonicalize_name(f"apache-airflow-providers-{name}")}
    if parts[0] == "airflow":
        return {"apache-airflow"}
    return {canonicalize_name(name) for name in packages_distributions().get(parts[0], [])}


def provider_files() -> list[Path]:
    files = [
        path
        for path in PACKAGE.rglob("*.py")
        if not any(folder in path.parents for folder in OPTIONAL_PACKAGES)
    ]
    return files + sorted((REPO / "example_dags").glob("*.py"))


def test_base_install_covers_every_import_of_the_provider_and_example_dags() -> None:
    required = base_requirements() | airflow_requirements()
    missing = {}
    for module in sorted(imported_modules(provider_files())):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in {"airflow_provider_snowstorm", "__future__"}:
            continue
        dists = distributions_for(module)
        assert dists, f"{module!r} is imported but no installed distribution provides it"
        if not dists & required:
            missing[module] = sorted(dists)
    assert not missing, f"imported but neither in pyproject's base dependencies nor Airflow's: {missing}"


def test_the_checker_sees_the_task_time_imports() -> None:
    """The lazily imported modules (inside functions) count too: matplotlib, wandb and slack_sdk are among them."""
    modules = {module.split(".")[0] for module in imported_modules(provider_files())}
    assert {"matplotlib", "wandb", "slack_sdk"} <= modules


def test_airflow_requirements_are_airflow_own_not_its_extras() -> None:
    """FastAPI and Starlette (the API server's) come with Airflow; an extra's packages and the providers' do not."""
    brought = airflow_requirements()
    assert {"fastapi", "starlette", "apache-airflow-core", "apache-airflow-task-sdk"} <= brought
    assert not {"sentry-sdk", "statsd", "wandb", "scikit-learn"} & brought  # extras' and ours
    assert "apache-airflow-providers-snowflake" not in brought  # the `snowflake` extra
