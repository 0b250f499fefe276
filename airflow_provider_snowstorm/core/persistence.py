"""Save and load detectors with ``skops`` (never ``pickle``): loading a registry file cannot run arbitrary code.

``skops`` refuses every type it does not know to be safe unless told to trust it. We trust exactly the detector class
and whatever scikit-learn and numpy types ``skops`` already trusts; any other type in a file is refused with its name.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest

__all__ = ["MODEL_FILE_SUFFIX", "UnsafeModelError", "file_sha256", "load_detector", "save_detector"]

MODEL_FILE_SUFFIX = ".skops"
# The detector itself, and the Cython tree of scikit-learn's Isolation Forest (skops lists it for review because it
# is rebuilt through ``__reduce__``; its state is plain arrays).
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        f"{DecomposeIsolationForest.__module__}.{DecomposeIsolationForest.__qualname__}",
        "sklearn.tree._tree.Tree",
    }
)


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


def save_detector(detector: DecomposeIsolationForest, path: str | Path) -> Path:
    """Write a fitted detector to ``path`` (a ``.skops`` file) and return the path."""
    if not isinstance(detector, DecomposeIsolationForest):
        raise TypeError(f"expected a DecomposeIsolationForest, got {type(detector).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_module_scan():
        sio.dump(detector, path)
    return path


def load_detector(path: str | Path) -> DecomposeIsolationForest:
    """Read a detector written by ``save_detector``, refusing files with any other untrusted type."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        with _quiet_module_scan():
            untrusted = set(sio.get_untrusted_types(file=path))
    except Exception as error:  # skops raises several types for a file that is not one of its archives
        raise UnsafeModelError(f"{path} is not a skops model file: {error}") from error
    refused = sorted(untrusted - TRUSTED_TYPES)
    if refused:
        raise UnsafeModelError(f"{path} holds types that are not trusted: {refused}")
    with _quiet_module_scan():
        detector = sio.load(path, trusted=sorted(untrusted))
    if not isinstance(detector, DecomposeIsolationForest):
        raise UnsafeModelError(f"{path} holds a {type(detector).__name__}, not a DecomposeIsolationForest")
    return detector
