"""Deprecated: the model store moved to :mod:`airflow_provider_snowstorm.registry` (``ModelStore`` and friends).

Register and fetch models through :class:`airflow_provider_snowstorm.registry.ModelRegistry`; this module only
re-exports the old names.
"""

from __future__ import annotations

import warnings

from airflow_provider_snowstorm.registry.store import (
    LATEST_ALIAS,
    ModelIntegrityError,
    ModelNotFoundError,
    ModelStore,
    ModelVersion,
    sha256_hex,
    validate_alias,
    validate_model_name,
)

# The old default, kept for imports: the default store is now ``utils.paths.default_model_store()``.
DEFAULT_MODEL_STORE = "./.snowstorm/model-store"

__all__ = [
    "DEFAULT_MODEL_STORE",
    "LATEST_ALIAS",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "ModelStore",
    "ModelVersion",
    "sha256_hex",
    "validate_alias",
    "validate_model_name",
]

warnings.warn(
    "airflow_provider_snowstorm.hooks.model_store is deprecated: import ModelStore, ModelVersion and the errors "
    "from airflow_provider_snowstorm.registry, and register/fetch models with its ModelRegistry.",
    DeprecationWarning,
    stacklevel=2,
)
