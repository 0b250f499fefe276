"""Save and load detectors with ``skops`` (never ``pickle``): loading a registry file cannot run arbitrary code.

``skops`` refuses every type it does not know to be safe unless told to trust it. We trust exactly the registered
detector classes (``DecomposeIsolationForest`` by default; add yours with ``register_detector_class``) and whatever
scikit-learn and numpy types ``skops`` already trusts; any other type in a file is refused with its name.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest

if TYPE_CHECKING:
    from airflow_provider_snowstorm.core.interface import AnomalyDetector

__all__ = [
    "MODEL_FILE_SUFFIX",
    "UnsafeModelError",
    "detector_class_name",
    "file_sha256",
    "load_detector",
    "register_detector_class",
    "registered_detector_classes",
    "save_detector",
    "trusted_types",
]

MODEL_FILE_SUFFIX = ".skops"
# The Cython tree of scikit-learn's Isolation Forest (skops lists it for review because it is rebuilt through
# ``__reduce__``; its state is plain arrays). The detector classes are added from the registry below.
TRUSTED_TYPES: frozenset[str] = frozenset({"sklearn.tree._tree.Tree"})

# Detector classes a model file may hold, by dotted name (module.qualname).
_DETECTOR_CLASSES: dict[str, type] = {}


def detector_class_name(cls: type) -> str:
    """The dotted import path of a class, as skops names it and as ``detector_class`` accepts it."""
    return f"{cls.__module__}.{cls.__qualname__}"


def register_detector_class(cls: type) -> type:
    """Trust ``cls`` in model files (save and load) and accept it as the training operator's ``detector_class``.

    Usable as a class decorator. The class must implement ``core.interface.AnomalyDetector`` and be importable by its
    module path (skops rebuilds it from that name); its fitted state should be plain values, numpy arrays or types
    skops already trusts.
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_detector_class expects a class, got {type(cls).__name__}")
    missing = [
        name
        for name in ("fit", "detect", "metadata", "required_history_days", "thresholds")
        if not hasattr(cls, name)
    ]
    if missing:
        raise TypeError(f"{cls.__qualname__} does not implement the detector interface: missing {missing}")
    _DETECTOR_CLASSES[detector_class_name(cls)] = cls
    return cls


def registered_detector_classes() -> tuple[type, ...]:
    """The detector classes model files may hold, in registration order."""
    return tuple(_DETECTOR_CLASSES.values())


def trusted_types() -> frozenset[str]:
    """Every type name a model file may hold beyond what skops trusts already."""
    return TRUSTED_TYPES | frozenset(_DETECTOR_CLASSES)


register_detector_class(DecomposeIsolationForest)


@contextmanager
def _quiet_module_scan() -> Iterator[None]:
    """skops looks objects up by scanning every imported module's attributes; in an Airflow worker that touches
    Airflow's deprecated-import shims and emits hundreds of irrelevant deprecation warnings per save or load."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


with _quiet_module_scan():  # importing skops.io registers types with the same scan
    import skops.io as sio


class UnsafeModelError(ValueError):
    """A model file holds types we do not trust, or is not the detector we expected."""


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _registered_names() -> str:
    return ", ".join(cls.__qualname__ for cls in _DETECTOR_CLASSES.values())


def save_detector(detector: AnomalyDetector | Any, path: str | Path) -> Path:
    """Write a fitted detector of a registered class to ``path`` (a ``.skops`` file) and return the path."""
    if type(detector) not in _DETECTOR_CLASSES.values():
        raise TypeError(
            f"expected a registered detector class ({_registered_names()}), got {type(detector).__name__}; "
            "register it with register_detector_class"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_module_scan():
        sio.dump(detector, path)
    return path


def load_detector(path: str | Path) -> AnomalyDetector | Any:
    """Read a detector written by ``save_detector``, refusing files with any other untrusted type."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        with _quiet_module_scan():
            untrusted = set(sio.get_untrusted_types(file=path))
    except Exception as error:  # skops raises several types for a file that is not one of its archives
        raise UnsafeModelError(f"{path} is not a skops model file: {error}") from error
    refused = sorted(untrusted - trusted_types())
    if refused:
        raise UnsafeModelError(f"{path} holds types that are not trusted: {refused}")
    with _quiet_module_scan():
        detector = sio.load(path, trusted=sorted(untrusted))
    if type(detector) not in _DETECTOR_CLASSES.values():
        raise UnsafeModelError(
            f"{path} holds a {type(detector).__name__}, not a registered detector class ({_registered_names()})"
        )
    return detector
