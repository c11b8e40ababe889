"""The model to look inside, rebuilt as Keras layers: from an export directory or a trial directory.

A SavedModel holds the serving graph, not Keras layers, so an export is rebuilt from what it carries for this:
its resolved search space and hyperparameters (tuner_app.json) and its Keras weights (keras.weights.h5). A
trial is rebuilt from its search record and checkpoint, as `export` does. Neither path unpickles anything.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from tuner_app.errors import TunerAppError
from tuner_app.features.frontend import FrontendConfig
from tuner_app.model.architecture import build, configured, spec
from tuner_app.model.space import search_space
from tuner_app.serving import export, export_checks


@dataclasses.dataclass(frozen=True)
class Inspected:
    """A model rebuilt from its configuration: `model` maps 16 kHz waveforms [batch, 16000] to probabilities."""

    name: str
    space: search_space.SearchSpace
    values: dict[str, Any]
    class_names: tuple[str, ...]
    model: Any
    origin: str

    @property
    def frontend(self) -> FrontendConfig:
        return configured.frontend_config(self.space, self.values)

    @property
    def walk(self) -> spec.Walk:
        return configured.walk(self.space, self.values, len(self.class_names))


def load(path: str | os.PathLike) -> Inspected:
    """The export directory (tuner_app.json) or trial directory (trial.json) at `path`, rebuilt."""
    path = Path(path).expanduser()
    if (path / export.METADATA).is_file():
        return from_export(path)
    if (path / export.TRIAL_FILE).is_file():
        return from_trial(path)
    if not path.exists():
        raise TunerAppError(f"{path}: no such model (give an export directory or a trial directory)")
    raise TunerAppError(f"{path}: neither a tuner-app export ({export.METADATA}) nor a trial ({export.TRIAL_FILE})")


def from_trial(trial_dir: str | os.PathLike) -> Inspected:
    trial = export.load_trial(trial_dir)
    return Inspected(configured.model_name(trial.space, trial.values), trial.space, trial.values,
                     trial.class_names, trial.model, str(trial.directory))


def from_export(export_dir: Path) -> Inspected:
    document = _metadata(export_dir / export.METADATA)
    if "space" not in document:  # exports made before the Keras weights travelled with them
        return _from_recorded_trial(export_dir, document)
    where = f"{export_dir / export.METADATA}: space"
    space = search_space.from_dict(document["space"], where)
    try:
        values = dict(document["hyperparameters"])
    except (KeyError, TypeError) as err:
        raise TunerAppError(f"{export_dir / export.METADATA}: missing key {err}") from None
    class_names = export_checks.check(export_dir / export.METADATA, document,
                                      export_checks.checkpoint_facts(export_dir))
    model = build.build_model(space, values, len(class_names))
    export.load_weights(model, export_dir / document.get("keras_weights", export.KERAS_WEIGHTS))
    return Inspected(configured.model_name(space, values), space, values, class_names, model, str(export_dir))


def _metadata(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise TunerAppError(f"{path}: cannot read the export's metadata ({err})") from None
    if not isinstance(document, dict):
        raise TunerAppError(f"{path}: expected a JSON object")
    return document


def _from_recorded_trial(export_dir: Path, document: dict[str, Any]) -> Inspected:
    recorded = document.get("trial_dir")
    if not recorded or not isinstance(recorded, str) or not (Path(recorded) / export.TRIAL_FILE).is_file():
        trial = f"its trial {recorded} is gone" if recorded else "it names no trial"
        raise TunerAppError(f"{export_dir}: an export without Keras weights ({export.METADATA} has no space), and "
                            f"{trial}: export the trial again with this version")
    return from_trial(Path(recorded))
