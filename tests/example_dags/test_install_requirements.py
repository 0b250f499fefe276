"""`pip install airflow-provider-snowstorm` (no extra) must give a working provider and example DAGs.

Every module that the provider's tasks and the example DAGs import (outside ``local``, the emulator's extra) must
come from a distribution in the base dependencies: a task must never fail with a bare ModuleNotFoundError.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "airflow_provider_snowstorm"
OPTIONAL_PACKAGES = {PACKAGE / "local"}  # the `local` extra: the emulator, not the provider


def base_requirements() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(text).name) for text in project["dependencies"]}


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
    required = base_requirements()
    missing = {}
    for module in sorted(imported_modules(provider_files())):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top in {"airflow_provider_snowstorm", "__future__"}:
            continue
        dists = distributions_for(module)
        assert dists, f"{module!r} is imported but no installed distribution provides it"
        if not dists & required:
            missing[module] = sorted(dists)
    assert not missing, f"imported but not in pyproject's base dependencies: {missing}"


def test_the_checker_sees_the_task_time_imports() -> None:
    """The lazily imported modules (inside functions) count too: matplotlib, wandb and slack_sdk are among them."""
    modules = {module.split(".")[0] for module in imported_modules(provider_files())}
    assert {"matplotlib", "wandb", "slack_sdk"} <= modules
