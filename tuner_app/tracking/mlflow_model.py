"""The export as an MLflow Model: its MLmodel file, its MLflow 3 LoggedModel linked to the trial's run, and
its registered versions. The only module that writes MLmodel files.

An export directory is the model root: the MLmodel's pyfunc flavor names the loader
`tuner_app.serving.pyfunc` (by string: serving sits above tracking) and no `data`, so MLflow hands the
loader the export itself. The signature takes float32 16 kHz waveforms [-1, 16000] and gives the class
probabilities [-1, n_classes]; the requirements are pinned here, never inferred (inferring would load the
model in a subprocess).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import mlflow
import mlflow.pyfunc
import numpy as np
from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.types import Schema, TensorSpec
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

import tuner_app
from tuner_app.constants import CLIP_SAMPLES
from tuner_app.errors import TunerAppError
from tuner_app.tracking import params as run_params
from tuner_app.tracking.store import store

LOADER_MODULE = "tuner_app.serving.pyfunc"
MLMODEL = "MLmodel"
SERVING_EXAMPLE = "serving_input_example.json"
# What mlflow.pyfunc.save_model writes that the export keeps (not the uv files it copies from a uv project
# in the working directory: the pins below are the model's environment).
MODEL_FILES = (MLMODEL, "requirements.txt", "python_env.yaml", "conda.yaml", "input_example.json", SERVING_EXAMPLE)
PINNED = ("tensorflow", "numpy")  # what the loader needs beside mlflow and tuner-app, at the versions it ran with
NOT_IN_NAMES = re.compile(r"[/:.%\"']")  # characters MLflow refuses in a LoggedModel's name
SYSTEM_METRICS = "system/"  # the machine's CPU and memory during the trial, not the model's


def signature(n_classes: int) -> ModelSignature:
    """float32 waveforms [-1, 16000] in, float32 probabilities [-1, n_classes] out."""
    return ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, CLIP_SAMPLES))]),
                          outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, n_classes))]))


def requirements() -> list[str]:
    """The model's pip requirements, pinned to the versions installed now."""
    pins = {"mlflow": mlflow.__version__, "tuner-app": tuner_app.__version__}
    pins.update({name: importlib.metadata.version(name) for name in PINNED})
    return [f"{name}=={version}" for name, version in pins.items()]


def write_mlflow_model(export_dir: str | Path, n_classes: int, metadata: Mapping[str, Any] | None = None) -> None:
    """Make an export directory an MLflow Model: MLmodel (pyfunc flavor, signature, `metadata`), a one-clip
    input example and the requirements files. Call it last, so MLmodel's model size counts every file."""
    export_dir = Path(export_dir)
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO on checking the example would bury our output
    with tempfile.TemporaryDirectory() as scratch:
        saved = Path(scratch) / "model"  # save_model wants a new directory; the export already exists
        mlflow.pyfunc.save_model(path=str(saved), loader_module=LOADER_MODULE, signature=signature(n_classes),
                                 input_example=np.zeros([1, CLIP_SAMPLES], np.float32),
                                 pip_requirements=requirements(), metadata=dict(metadata or {}))
        for name in MODEL_FILES:
            if (saved / name).exists():
                shutil.move(str(saved / name), str(export_dir / name))
    _compact_json(export_dir / SERVING_EXAMPLE)
    _record_size(export_dir)


def _compact_json(path: Path) -> None:
    """MLflow indents the serving example, a line per sample: 16,000 lines for one clip."""
    if path.is_file():
        path.write_text(json.dumps(json.loads(path.read_text(encoding="utf-8"))), encoding="utf-8")


def _record_size(export_dir: Path) -> None:
    """MLmodel's model_size_bytes: the whole export, not only the files save_model wrote."""
    model = Model.load(str(export_dir / MLMODEL))
    model.model_size_bytes = sum(path.stat().st_size for path in export_dir.rglob("*") if path.is_file())
    model.save(str(export_dir / MLMODEL))


def model_tags(metadata: Mapping[str, Any]) -> dict[str, str]:
    """The tags of an export (its tuner_app.json) in the registry: params_total, accuracy (the best
    validation accuracy, which the search chose on), frontend (its kind), frontend_config (all of it), model."""
    metrics = metadata.get("metrics") or {}
    accuracy = metrics.get("best_val_accuracy", metrics.get("val_accuracy"))
    tags = {"params_total": str(metadata["params"]), "frontend": metadata["frontend"]["kind"],
            "frontend_config": json.dumps(metadata["frontend"], sort_keys=True), "model": metadata["model"]}
    return tags if accuracy is None else {**tags, "accuracy": str(accuracy)}


def log_logged_model(tracking_uri: str | None, run_id: str, export_dir: str | Path,
                     params: Mapping[str, Any] | None = None, metrics: Iterable[str] | None = None, *,
                     name: str = "model", tags: Mapping[str, str] | None = None) -> str:
    """Log an export as an MLflow 3 LoggedModel of run `run_id`'s experiment: its files as the model's
    artifacts, the run's params with `params` (nested ones flattened) as its params, the run's latest value of
    each metric named in `metrics` (names, or a mapping's keys; default: the run's), system metrics left out,
    as its metrics; linked to the run as an output. Returns the model id (its URI is models:/<model id>)."""
    uri, client = store(tracking_uri)
    run = _run(client, uri, run_id)
    model = client.create_logged_model(run.info.experiment_id, name=NOT_IN_NAMES.sub("_", name),
                                       source_run_id=run_id, tags=dict(tags or {}),
                                       params={**run.data.params, **run_params.flatten(params or {})})
    try:
        client.log_model_artifacts(model.model_id, str(export_dir))
        _log_linked_mlmodel(client, model, export_dir)
        client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
        names = [key for key in (run.data.metrics if metrics is None else metrics)
                 if not key.startswith(SYSTEM_METRICS)]
        client.log_batch(run_id, metrics=_model_metrics(client, run_id, model.model_id, names))
    except BaseException:
        client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return model.model_id


def _run(client, uri: str, run_id: str):
    try:
        return client.get_run(run_id)
    except MlflowException:
        raise TunerAppError(f"MLflow run {run_id!r} not found in {uri}") from None


def _log_linked_mlmodel(client, model, export_dir: str | Path) -> None:
    """The logged copy's MLmodel names its model id and run, as MLflow's own log_model writes it."""
    mlmodel = Path(export_dir) / MLMODEL
    if not mlmodel.is_file():
        return
    linked = Model.load(str(mlmodel))
    linked.run_id, linked.model_id, linked.model_uuid = model.source_run_id, model.model_id, model.model_id
    linked.artifact_path = model.artifact_location
    with tempfile.TemporaryDirectory() as scratch:
        linked.save(str(Path(scratch) / MLMODEL))
        client.log_model_artifact(model.model_id, str(Path(scratch) / MLMODEL))


def _model_metrics(client, run_id: str, model_id: str, names: Iterable[str]) -> list[Metric]:
    """Each metric's latest entry in the run, again with the model's id: the run's history is unchanged
    (MLflow drops an entry it already holds) and the LoggedModel gets the value."""
    metrics = []
    for key in names:
        history = client.get_metric_history(run_id, key)
        if history:
            latest = max(history, key=lambda entry: (entry.step, entry.timestamp))
            metrics.append(Metric(key, latest.value, latest.timestamp, latest.step, model_id=model_id))
    return metrics


def register(tracking_uri: str | None, model_id: str, name: str, tags: Mapping[str, str] | None = None) -> str:
    """Register LoggedModel `model_id` as a new version of registered model `name` (models:/<name>/<version>),
    with `tags`, and list the version on the LoggedModel as MLflow's own registration does; returns the version."""
    _, client = store(tracking_uri)
    model = client.get_logged_model(model_id)
    try:
        client.create_registered_model(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise TunerAppError(f"--register {name!r}: {' '.join(err.message.split())}") from None
    # The source is where the model's files are, not models:/<model id>: a SQL registry would look that id up
    # through MLflow's global tracking URI, which need not be `tracking_uri`.
    version = client.create_model_version(name, model.artifact_location, run_id=model.source_run_id,
                                          tags=dict(tags or {}), model_id=model_id)
    versions = json.loads(model.tags.get(MLFLOW_MODEL_VERSIONS, "[]"))
    client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(
        [*versions, {"name": version.name, "version": version.version}])})
    return str(version.version)
