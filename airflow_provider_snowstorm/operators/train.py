"""``DecomposeIsolationForestOperator``: train one anomaly model per cost series and register it in W&B.

Map it over cost categories (``.partial(...).expand(series=[...])``) to train the series in parallel; every model
instance of one DAG run shares the W&B group (the DAG run id) and carries that id as an alias, which also makes a task
retry replace its own registry version instead of adding one.
"""

from __future__ import annotations

import importlib
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from airflow_provider_snowstorm.core.schema import IS_ANOMALY, SERIES
from airflow_provider_snowstorm.hooks.wandb import WandbHook
from airflow_provider_snowstorm.links.wandb import push_wandb_run_url
from airflow_provider_snowstorm.operators.base import (
    FeatureSourceOperator,
    SeriesInputError,
    describe_series,
)
from airflow_provider_snowstorm.registry import LATEST_ALIAS, PRODUCTION_ALIAS, validate_alias

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["DEFAULT_DETECTOR_CLASS", "DecomposeIsolationForestOperator", "validate_configuration_name"]

# A dotted path, so parsing a DAG file does not import scikit-learn; resolved when the task runs.
DEFAULT_DETECTOR_CLASS = "airflow_provider_snowstorm.core.detector.DecomposeIsolationForest"
_CONFIGURATION = re.compile(r"[a-z][a-z0-9_]{0,39}")


def validate_configuration_name(name: str) -> str:
    """A configuration name is also a registry alias: lower-case letters, digits and ``_``, not a reserved alias."""
    if not isinstance(name, str) or not _CONFIGURATION.fullmatch(name):
        raise ValueError(
            f"configuration {name!r} is not a valid name: 1-40 lower-case letters, digits or '_', "
            "starting with a letter"
        )
    if name in (LATEST_ALIAS, PRODUCTION_ALIAS):
        raise ValueError(
            f"configuration {name!r} is a reserved alias: only promotion moves {PRODUCTION_ALIAS!r}"
        )
    return name


class DecomposeIsolationForestOperator(FeatureSourceOperator):
    """Fit a detector (``DecomposeIsolationForest`` by default) on the history of each cost series and log it as a
    W&B model.

    For each series: one W&B run (job type ``train``, grouped by the DAG run id) with the config, the
    ``anomaly_threshold`` metric, a decomposition chart and a training-score chart, and the model (skops) as a
    ``model`` artifact aliased ``latest`` and with the DAG run id. Offline, the model store keeps the versions so that
    ``latest`` still resolves for scoring.

    :param training_start: First day of training history (inclusive, ISO date); templated. Default: all history.
    :param training_end: Last day of training history (inclusive); templated. Default: up to the latest day.
    :param detector_params: Parameters of the detector class (for ``DecomposeIsolationForest``: period,
        alarm_budget, direction, min_deviation, random_state, ...). Templated.
    :param detector_class: Keyword-only. The detector class, or its dotted import path: any class implementing
        ``core.interface.AnomalyDetector`` that is registered with ``core.persistence.register_detector_class``.
        Default ``DecomposeIsolationForest``.
    :param aliases: Extra registry aliases besides ``latest`` and the DAG run id.
    :param configuration: Name of this model configuration (``default``, ``challenger``, ...; lower-case letters,
        digits, ``_``). Several configurations of one series train side by side in one DAG run: each version gets
        the configuration's name as an alias (the newest candidate of that configuration) and its own retry alias
        (``<DAG run id>-<configuration>``). Never ``production``: only promotion moves that alias. Templated.
    :param lineage: Where the model comes from beyond its training span (the features Asset event, why it was
        trained, ...): a JSON-safe mapping stored in the model's metadata and its W&B run config. Templated.

    Returns (XCom) a JSON-safe summary per series: model name and version, configuration, threshold, training span,
    W&B run id and URL; a dict for a single series, a list for several. With ``chunk_model``, one summary of the
    chunk (series count, first and last series, model, median threshold, training span, run).
    """

    template_fields: Sequence[str] = (
        *FeatureSourceOperator.template_fields,
        "training_start",
        "training_end",
        "detector_params",
        "configuration",
        "lineage",
    )
    ui_color = "#e6f1fa"
    supports_chunk_model = True

    def __init__(
        self,
        *,
        training_start: str | None = None,
        training_end: str | None = None,
        detector_params: Mapping[str, Any] | None = None,
        aliases: Sequence[str] = (),
        detector_class: type | str = DEFAULT_DETECTOR_CLASS,
        configuration: str | None = None,
        lineage: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.detector_class = detector_class
        self.configuration = configuration
        self.lineage = lineage
        self.training_start = training_start
        self.training_end = training_end
        self.detector_params = detector_params
        self.aliases = aliases

    def check_inputs(self) -> list[str]:
        """Names, aliases and parameter shapes checked before features are read or a model is fitted."""
        names = super().check_inputs()
        aliases = [self.aliases] if isinstance(self.aliases, str) else list(self.aliases or ())
        for alias in aliases:
            try:
                normalised = validate_alias(alias, what="alias in aliases")
            except ValueError as error:
                raise SeriesInputError(str(error)) from None
            if normalised == PRODUCTION_ALIAS:
                raise SeriesInputError(
                    f"aliases: {PRODUCTION_ALIAS!r} is moved only by promotion (ModelRegistry.move_alias, the "
                    "promotion DAG); new models are candidates"
                )
        if self.configuration:
            try:
                aliases.append(validate_configuration_name(self.configuration))
            except ValueError as error:
                raise SeriesInputError(f"{self.task_id}: {error}") from None
        self.aliases = list(dict.fromkeys(aliases))
        if self.lineage is not None and not isinstance(self.lineage, Mapping):
            raise SeriesInputError(f"lineage must be a mapping, got {type(self.lineage).__name__}")
        if self.detector_params is not None and not isinstance(self.detector_params, Mapping):
            raise SeriesInputError(
                f"detector_params must be a mapping of {self._detector_class_label()} parameters, "
                f"got {type(self.detector_params).__name__}"
            )
        for parameter in ("training_start", "training_end"):
            value = getattr(self, parameter)
            if value:
                try:
                    day = pd.Timestamp(value)
                except (TypeError, ValueError):
                    day = pd.NaT
                if pd.isna(day):
                    raise SeriesInputError(f"{parameter} {value!r} is not a date (expected YYYY-MM-DD)")
        return names

    def _detector_class_label(self) -> str:
        cls = self.detector_class
        return cls.rsplit(".", 1)[-1] if isinstance(cls, str) else getattr(cls, "__qualname__", repr(cls))

    def resolve_detector_class(self) -> type:
        """The detector class (imported from its dotted path if given as a string), refused unless registered."""
        from airflow_provider_snowstorm.core.persistence import (
            detector_class_name,
            registered_detector_classes,
        )

        cls = self.detector_class
        if isinstance(cls, str):
            module_name, _, attribute = cls.rpartition(".")
            if not module_name:
                raise SeriesInputError(f"detector_class {cls!r} is not a dotted import path (module.Class)")
            try:
                cls = getattr(importlib.import_module(module_name), attribute)
            except (ImportError, AttributeError) as error:
                raise SeriesInputError(
                    f"detector_class {self.detector_class!r} cannot be imported: {error}"
                ) from None
        registered = registered_detector_classes()
        if cls not in registered:
            names = [detector_class_name(known) for known in registered]
            shown = detector_class_name(cls) if isinstance(cls, type) else repr(cls)
            raise SeriesInputError(
                f"detector_class {shown} is not registered (registered: {names}); "
                "register it with airflow_provider_snowstorm.core.persistence.register_detector_class"
            )
        return cls

    def execute(self, context: Context) -> dict[str, Any] | list[dict[str, Any]]:
        names = self.check_inputs()
        self.resolve_detector_class()  # before features are read
        features = self.load_features(names, start=self.training_start, end=self.training_end)
        hook = WandbHook(wandb_conn_id=self.wandb_conn_id)
        if self.chunk_model:
            return self._train_chunk(hook, features, names, context)
        summaries = [self._train_one(hook, features[[name]], name, context) for name in names]
        return summaries[0] if isinstance(self.series, str) else summaries

    def _fit(self, history: Any, what: str) -> tuple[Any, Any]:
        """A fitted detector and its training detections (one pass where the class offers ``fit_detect``)."""
        detector = self.resolve_detector_class()(**dict(self.detector_params or {}))
        try:
            if hasattr(detector, "fit_detect"):  # one pass: fit and score the training rows causally
                return detector, detector.fit_detect(history)
            return detector, detector.fit(history).detect(history)
        except ValueError as error:
            raise ValueError(f"cannot train a model for {what}: {error}") from error

    def _retry_alias(self, context: Context) -> str:
        dag_run_id = context["run_id"]
        return f"{dag_run_id}-{self.configuration}" if self.configuration else dag_run_id

    @contextmanager
    def _training_run(
        self, hook: WandbHook, context: Context, detector: Any, *, subject: str, tag: str, **config: Any
    ) -> Iterator[Any]:
        """The W&B run of one trained model (a series' or a chunk's): ``train-<subject>[-<configuration>]``, grouped
        by the DAG run, its config the detector's parameters and the lineage, its link on the task's button."""
        configuration = [self.configuration] if self.configuration else []
        with hook.start_run(
            "-".join(["train", subject, *configuration]),
            group=context["run_id"],
            job_type="train",
            config=self.wandb_run_config(
                context,
                **config,
                detector=type(detector).__name__,
                **{
                    f"detector.{key}": value for key, value in (detector.metadata.get("params") or {}).items()
                },
                configuration=self.configuration,
                lineage=dict(self.lineage or {}),
            ),
            tags=["snowstorm", tag, *configuration],
        ) as run:
            push_wandb_run_url(context, hook.link_url(run))
            yield run

    def _train_chunk(
        self, hook: WandbHook, history: Any, names: list[str], context: Context
    ) -> dict[str, Any]:
        """One fit over the chunk's columns and one registry model for all of them (``chunk_model``).

        The model's metadata lists the series and their thresholds; the W&B run logs summary metrics instead of
        per-series charts (a chart per series of a chunk of thousands helps nobody).
        """
        import numpy as np

        from airflow_provider_snowstorm.core.persistence import save_detector

        detector, detections = self._fit(history, f"the chunk of {len(names)} series ({names[0]} ..)")
        metadata = detector.metadata
        thresholds = np.asarray(detector.thresholds.reindex(names), dtype=float)
        model_name = self.chunk_model_name()
        dag_run_id = context["run_id"]
        lineage = dict(self.lineage or {})
        with self._training_run(
            hook,
            context,
            detector,
            subject=model_name,
            tag="chunk",
            series_count=len(names),
            first_series=names[0],
            last_series=names[-1],
            model_name=model_name,
            training_start=metadata["training_start"],
            training_end=metadata["training_end"],
        ) as run:
            run_url = hook.run_url(run)
            hook.log_metrics(
                {
                    "series": len(names),
                    "anomaly_threshold_median": float(np.median(thresholds)),
                    "training_days": int(metadata.get("n_training_days", len(history))),
                    "training_anomalies": int(detections[IS_ANOMALY].sum()),
                },
                run=run,
            )
            with tempfile.TemporaryDirectory(prefix="snowstorm-train-") as workdir:
                version = hook.registry.register(
                    run,
                    save_detector(detector, Path(workdir, "model.skops")),
                    model_name,
                    aliases=list(self.aliases),
                    metadata={
                        **metadata,
                        "dag_run_id": dag_run_id,
                        "chunk": {"series_count": len(names), "first": names[0], "last": names[-1]},
                        "configuration": self.configuration,
                        "lineage": lineage,
                    },
                    idempotency_alias=self._retry_alias(context),
                )
        self.log.info(
            "Trained one %s for %s on %s..%s, registered as %s %s (%s)",
            type(detector).__name__,
            describe_series(names),
            metadata["training_start"],
            metadata["training_end"],
            model_name,
            version.version,
            run_url or "W&B run offline, no URL",
        )
        return {
            "series_count": len(names),
            "first_series": names[0],
            "last_series": names[-1],
            "configuration": self.configuration,
            "model_name": model_name,
            "model_version": version.version,
            "aliases": list(version.aliases),
            "threshold_median": float(np.median(thresholds)),
            "training_start": metadata["training_start"],
            "training_end": metadata["training_end"],
            "training_days": int(metadata.get("n_training_days", len(history))),
            "run_id": run.id,
            "run_url": run_url,
        }

    def _train_one(self, hook: WandbHook, history: Any, series: str, context: Context) -> dict[str, Any]:
        # scikit-learn, matplotlib and skops load here, not when the scheduler parses DAG files.
        from airflow_provider_snowstorm.core.charts import (
            render_decomposition_chart,
            render_training_scores_chart,
        )
        from airflow_provider_snowstorm.core.persistence import save_detector

        detector, detections = self._fit(history, f"cost series {series!r}")
        threshold = float(detector.thresholds[series])
        metadata = detector.metadata
        training_start, training_end = metadata["training_start"], metadata["training_end"]
        training_days = int(metadata.get("n_training_days", len(history)))
        from airflow_provider_snowstorm.core.drift import reference_profile

        model_name = self.model_name_for(series)
        dag_run_id = context["run_id"]
        retry_alias = self._retry_alias(context)
        lineage = dict(self.lineage or {})
        flagged = detections[detections[SERIES] == series][IS_ANOMALY]
        with self._training_run(
            hook,
            context,
            detector,
            subject=series,
            tag=series,
            series=series,
            model_name=model_name,
            training_start=training_start,
            training_end=training_end,
            training_days=training_days,
        ) as run:
            run_url = hook.run_url(run)
            hook.log_metrics(
                {
                    "anomaly_threshold": threshold,
                    "training_days": training_days,
                    "training_anomalies": int(flagged.sum()),
                },
                run=run,
            )
            with tempfile.TemporaryDirectory(prefix="snowstorm-train-") as workdir:
                charts = {
                    "decomposition": render_decomposition_chart(detections, series),
                    "training_scores": render_training_scores_chart(detections, series),
                }
                for key, png in charts.items():
                    path = Path(workdir, f"{key}.png")
                    path.write_bytes(png)
                    hook.log_image(key, path, run=run)
                model_path = save_detector(detector, Path(workdir, "model.skops"))
                version = hook.registry.register(
                    run,
                    model_path,
                    model_name,
                    aliases=list(self.aliases),
                    metadata={
                        **metadata,
                        "dag_run_id": dag_run_id,
                        "series_name": series,
                        "configuration": self.configuration,
                        "lineage": lineage,
                        # What monitoring compares recent data with (core.drift): the end of the training data.
                        "reference": reference_profile(history)[series] if len(history) >= 7 else None,
                    },
                    idempotency_alias=retry_alias,
                )
        self.log.info(
            "Trained %s for %r on %s..%s: threshold %.4f, registered as %s %s (%s)",
            type(detector).__name__,
            series,
            training_start,
            training_end,
            threshold,
            model_name,
            version.version,
            run_url or "W&B run offline, no URL",
        )
        return {
            "series": series,
            "configuration": self.configuration,
            "model_name": model_name,
            "model_version": version.version,
            "aliases": list(version.aliases),
            # This DAG run's version of the series (what a retry replaces, and an evaluation of the run resolves).
            "run_alias": retry_alias,
            "threshold": threshold,
            "training_start": training_start,
            "training_end": training_end,
            "training_days": training_days,
            "run_id": run.id,
            "run_url": run_url,
        }
