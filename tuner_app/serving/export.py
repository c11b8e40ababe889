"""Export a trained trial as a TensorFlow SavedModel that takes audio, not features.

Layout of an export directory DIR (`tuner-app predict DIR` and `tf.saved_model.load(DIR)` both take DIR):
  DIR/saved_model.pb, DIR/variables/   the SavedModel, front-end inside, core TensorFlow ops only: it loads
                                       in any TensorFlow program (TF Serving too) without tensorflow-io or
                                       tuner-app. `serving_default`: float32 waveforms [batch, 16000] at
                                       16 kHz; `serve_bytes`: WAV files [batch] at any rate;
  DIR/any_format/                      a second SavedModel whose `serving_default` takes WAV, FLAC, Ogg
                                       Vorbis or MP3 files: it holds tensorflow-io ops, so loading it needs
                                       `import tensorflow_io` first;
  DIR/tuner_app.json                   hyperparameters, front-end, class names, metrics, versions, the
                                       resolved search space (`space`), and the sample rate and input shape
                                       that loading checks against the SavedModel (export_checks.py);
  DIR/keras.weights.h5                 the Keras model's weights: with `space` and `hyperparameters` they
                                       rebuild the Keras model layer by layer (`tuner-app visualize`,
                                       `activations`), through Keras's weights format, never a pickle;
  DIR/model.tflite, DIR/model_int8.tflite   only with tflite=True / quantize="int8" (see device/tflite.py);
  DIR/model_int8_features.tflite       with quantize="int8": the network alone, int8 features in and int8
                                       scores out, for microcontrollers (device/features_in.py); tuner_app.json's
                                       tflite.int8_features describes its front-end and quantization;
  DIR/MLmodel, DIR/requirements.txt, DIR/python_env.yaml, DIR/conda.yaml, DIR/input_example.json,
  DIR/serving_input_example.json      what makes DIR an MLflow Model (tracking/mlflow_model.py): the pyfunc
                                       flavor (loader serving/pyfunc.py: waveforms [-1, 16000] ->
                                       probabilities), so `mlflow.pyfunc.load_model(DIR)` and
                                       `mlflow models serve -m DIR` take it as it is.

The serving graphs call `frontend.features` and `audio.decode`, the very functions the training pipeline
uses, so training and serving share one front-end and one decoder (and resampler).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import tensorflow as tf

import tuner_app
from tuner_app import outputs
from tuner_app.constants import CLIP_SAMPLES, SAMPLE_RATE
from tuner_app.data import audio
from tuner_app.errors import ConversionError, TunerAppError, storage_error, storage_errors
from tuner_app.files import save_weights, staged_directory
from tuner_app.model.architecture import build, configured
from tuner_app.model.space import hyperparameters, search_space
from tuner_app.search import record as search_record
from tuner_app.serving import export_checks, weights_errors
from tuner_app.device import tflite as tflite_copies
from tuner_app.device import features_in, row_scale

METADATA = "tuner_app.json"
ANY_FORMAT = "any_format"  # the sub-directory of the SavedModel that decodes every format
CHECKPOINT = "checkpoint.weights.h5"
KERAS_WEIGHTS = "keras.weights.h5"
TRIAL_FILE = "trial.json"
# What TensorFlow's own file writes raise for ENOSPC/EDQUOT, EFBIG and EACCES; EROFS is an OSError of open().
_TF_WRITE_ERRORS = (tf.errors.ResourceExhaustedError, tf.errors.OutOfRangeError, tf.errors.PermissionDeniedError)


@dataclasses.dataclass
class ExportResult:
    """What export_trial wrote. `tflite`: {"float"/"int8": {"path", "bytes", "ops"}}; `accuracy`: on
    the check sample, {"clips", "saved_model", "tflite", "tflite_int8"} (None without one); `quantization`
    says what the int8 file holds."""

    path: Path
    metadata: dict[str, Any]
    tflite: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    accuracy: dict[str, float] | None = None
    quantization: str | None = None


@dataclasses.dataclass(frozen=True)
class ExportedTrial:
    """A trial rebuilt from its directory: the space, its values, class names and trained Keras model."""

    directory: Path
    space: search_space.SearchSpace
    values: dict[str, Any]
    class_names: tuple[str, ...]
    model: Any
    scores: dict[str, float]


class AudioClassifier(tf.Module):
    """The Keras model (its front-end is its first layer) with the class names inside; core TensorFlow ops only."""

    def __init__(self, model, class_names):
        super().__init__(name="tuner_app")
        self.model = model
        self.class_names = tf.Variable(list(class_names), trainable=False, dtype=tf.string, name="class_names")
        # Held by the model too, so that loading checks tuner_app.json against it (export_checks.py).
        self.sample_rate = tf.Variable(SAMPLE_RATE, trainable=False, dtype=tf.int64, name="sample_rate")

    @tf.function(input_signature=[tf.TensorSpec([None, CLIP_SAMPLES], tf.float32, name="waveform")])
    def serve_waveform(self, waveform):
        """16 kHz float32 waveforms [batch, 16000] -> probabilities, class_id, class_name."""
        probabilities = self.model(waveform, training=False)
        class_id = tf.argmax(probabilities, axis=-1, output_type=tf.int64)
        return {"probabilities": probabilities, "class_id": class_id,
                "class_name": tf.gather(self.class_names, class_id)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="audio")])
    def serve_bytes(self, audio_files):
        """Encoded WAV files [batch], any rate -> the same outputs as serve_waveform; other formats fail
        with audio.NOT_WAV."""
        return self.serve_waveform(_decoded(audio_files, wav_only=True))


class AnyFormatClassifier(tf.Module):
    """serve_bytes for WAV, FLAC, Ogg Vorbis and MP3: tensorflow-io ops, so a SavedModel of its own."""

    def __init__(self, classifier: AudioClassifier):
        super().__init__(name="tuner_app_any_format")
        self.classifier = classifier

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="audio")])
    def serve_bytes(self, audio_files):
        """Encoded WAV/FLAC/OGG/MP3 files [batch] -> the same outputs as serve_waveform."""
        return self.classifier.serve_waveform(_decoded(audio_files, wav_only=False))


def _decoded(audio_files, wav_only: bool):
    return tf.map_fn(lambda contents: audio.decode(contents, wav_only=wav_only)[0], audio_files,
                     fn_output_signature=tf.TensorSpec([CLIP_SAMPLES], tf.float32))


def load_trial(trial_dir: str | os.PathLike) -> ExportedTrial:
    """Rebuild a trial's Keras model exactly as the search built it, with its checkpointed weights."""
    trial_dir = Path(trial_dir).expanduser()
    if not trial_dir.is_dir():
        raise TunerAppError(f"{trial_dir}: no such trial directory")
    if not (trial_dir / TRIAL_FILE).is_file():
        raise TunerAppError(f"{trial_dir}: not a trial directory (no {TRIAL_FILE}); give "
                            "<runs-dir>/<project>/trial_<id>")
    record = search_record.read_search_record(trial_dir.parent)
    try:
        space = search_space.from_dict(record["space"], record["space_file"])
        class_names = tuple(record["class_names"])
    except (KeyError, TypeError) as err:
        raise TunerAppError(f"{trial_dir.parent / search_record.SEARCH_RECORD}: missing key {err}") from None
    values, scores = _read_trial(trial_dir / TRIAL_FILE, space)
    model = build.build_model(space, values, len(class_names))
    load_weights(model, trial_dir / CHECKPOINT)
    return ExportedTrial(trial_dir, space, values, class_names, model, scores)


def _read_trial(path: Path, space: search_space.SearchSpace) -> tuple[dict[str, Any], dict[str, float]]:
    """(the space's hyperparameter values, the recorded scores) from keras-tuner's trial.json."""
    from keras_tuner.engine.trial import Trial

    try:
        trial = Trial.load(str(path))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TunerAppError(f"{path}: cannot read the keras-tuner trial ({err})") from None
    stored = trial.hyperparameters.values
    values: dict[str, Any] = {}
    for name in space.hyperparameters:  # parents first: whether a name is active depends on those before it
        if hyperparameters.is_active(space.hyperparameters, name, values):
            if name not in stored:
                raise TunerAppError(f"{path}: no value for hyperparameter {name!r}")
            values[name] = stored[name]
    scores = {name: search_record.metric(trial, name) for name in trial.metrics.metrics}
    return values, {k: v for k, v in scores.items() if v is not None}


def load_weights(model, checkpoint: Path) -> None:
    """Load a trial's checkpoint, or an export's keras.weights.h5, into the model its configuration builds."""
    if not checkpoint.is_file():
        raise TunerAppError(f"{checkpoint}: no trained weights (did the trial complete?)")
    model.optimizer.build(model.trainable_variables)  # the checkpoint holds Adam's state too
    try:
        model.load_weights(checkpoint)
    except Exception as err:  # h5py and Keras raise OSError, ValueError, KeyError... on a bad file
        remedy = ("use another trial, or run the search again with --fresh" if checkpoint.name == CHECKPOINT
                  else "export the trial again")
        raise TunerAppError(weights_errors.unloadable(checkpoint, err, remedy)) from None


def metadata(trial: ExportedTrial, run_id: str | None = None,
             metrics: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The tuner_app.json document written beside the SavedModel."""
    counts = configured.sizes(trial.space, trial.values, len(trial.class_names))
    return {
        "class_names": list(trial.class_names),
        "model": configured.model_name(trial.space, trial.values),
        "hyperparameters": dict(trial.values),
        "frontend": dataclasses.asdict(configured.frontend_config(trial.space, trial.values)),
        "params": counts["params_total"],
        "param_counts": counts,
        "metrics": {**trial.scores, **dict(metrics or {}), "params_total": counts["params_total"]},
        "mlflow_run_id": run_id,
        "tensorflow_version": tf.__version__,
        "tuner_app_version": tuner_app.__version__,
        "trial_dir": str(trial.directory.resolve()),
        "space_file": trial.space.source,
        "space": search_space.resolved(trial.space),
        "keras_weights": KERAS_WEIGHTS,
        "sample_rate": SAMPLE_RATE,
        "input_shape": list(export_checks.INPUT_SHAPE),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "signatures": {
            "serving_default": "waveform float32 [batch, 16000] at 16 kHz; core TensorFlow ops only",
            "serve_bytes": "audio string [batch] of WAV files at any rate; core TensorFlow ops only",
            f"{ANY_FORMAT}/serving_default": "audio string [batch] of WAV/FLAC/OGG/MP3 files at any rate; "
                                             "load after `import tensorflow_io` (its ops decode them)",
        },
    }


def save_module(module: AudioClassifier, directory: Path) -> None:
    """Write both SavedModels (the step a failed export must not leave half done): DIR with the core-ops
    signatures, DIR/any_format with the every-format one."""
    tf.saved_model.save(module, str(directory), signatures={
        "serving_default": module.serve_waveform.get_concrete_function(),
        "serve_bytes": module.serve_bytes.get_concrete_function(),
    })
    any_format = AnyFormatClassifier(module)
    tf.saved_model.save(any_format, str(directory / ANY_FORMAT),
                        signatures={"serving_default": any_format.serve_bytes.get_concrete_function()})


def export_trial(trial_dir: str | os.PathLike, out: str | os.PathLike, *, force: bool = False,
                 run_id: str | None = None, metrics: Mapping[str, Any] | None = None, tflite: bool = False,
                 quantize: str | None = None, representative: np.ndarray | None = None,
                 check: tuple[np.ndarray, np.ndarray] | None = None, stores: Sequence[Path] = ()) -> ExportResult:
    """Export a trial's checkpointed weights (no retraining) as a SavedModel directory `out`, atomically.

    `force` replaces only an earlier export; `out` is never inside a search, corpus or MLflow store (`stores`).
    `quantize="int8"` implies tflite and needs `representative` (float32 [n, 16000] training clips).
    `check=(waveforms, labels)` (labels in the model's class ids) measures float vs TFLite accuracy.
    """
    out = Path(out).expanduser()
    if quantize not in (None, "int8"):
        raise TunerAppError(f"--quantize: expected int8, got {quantize!r}")
    if quantize and (representative is None or not len(representative)):
        raise TunerAppError("--quantize int8 needs a representative sample of training clips")
    outputs.check_new_directory(out, "--out", force, stores)  # before anything is created
    trial = load_trial(trial_dir)
    with storage_errors(out, "--out"), staged_directory(out, replace=True) as staging:
        try:
            result = _write_export(trial, staging, run_id, metrics, tflite or bool(quantize), quantize,
                                   representative, check)
        except _TF_WRITE_ERRORS as error:  # TensorFlow's own writes: not OSErrors
            raise storage_error(out, _tf_write_cause(error), "--out") from None
        except ConversionError as error:
            raise ConversionError(f"{trial.directory}: {error}") from None
    result.path = out
    result.tflite = {kind: {**entry, "path": out / Path(entry["path"]).name} for kind, entry in result.tflite.items()}
    return result


def _write_export(trial: ExportedTrial, staging: Path, run_id, metrics, tflite: bool, quantize, representative,
                  check) -> ExportResult:
    from tuner_app.tracking import mlflow_model  # here: reading a trial (visualize, ...) needs no mlflow

    module = AudioClassifier(trial.model, trial.class_names)
    save_module(module, staging)
    save_weights(trial.model, staging / KERAS_WEIGHTS)
    result = ExportResult(staging, metadata(trial, run_id, metrics))
    if tflite:
        result.tflite, result.quantization = tflite_copies.write_tflite(
            module, staging, quantize, representative, _int8_module(trial, quantize, representative))
        if quantize:
            result.tflite["int8_features"] = features_in.write(trial.model, staging, representative)
        result.accuracy = _tflite_accuracy(trial.model, module, result.tflite, check)
        result.metadata["tflite"] = {kind: {"file": Path(entry["path"]).name, "bytes": entry["bytes"],
                                            "flex_ops": entry["ops"].get("flex", []), **entry.get("description", {})}
                                     for kind, entry in result.tflite.items()}
        result.metadata["quantization"] = result.quantization
        result.metadata["tflite_accuracy"] = result.accuracy
    (staging / METADATA).write_text(json.dumps(result.metadata, indent=2), encoding="utf-8")
    mlflow_model.write_mlflow_model(staging, len(trial.class_names), {"class_names": list(trial.class_names)})
    return result


def _int8_module(trial: ExportedTrial, quantize, representative) -> AudioClassifier | None:
    """model_int8.tflite's module where the network takes its feature rows as channels: rows divided by the
    features-in model's row scales in float, folded into its first conv (row_scale.py); None: the SavedModel's."""
    if quantize != "int8":
        return None
    scaled = row_scale.waveform_model(trial.model, representative)
    return None if scaled is trial.model else AudioClassifier(scaled, trial.class_names)


def _tflite_accuracy(model, module, written, check) -> dict[str, Any] | None:
    if check is None:
        return None
    scores = tflite_copies.compare_accuracy(module, written, check)
    if "int8_features" in written and scores["clips"]:
        blob = Path(written["int8_features"]["path"]).read_bytes()
        scores.update(features_in.accuracy(model, blob, *check))
    return scores


def _tf_write_cause(error: tf.errors.OpError) -> str:
    # TensorFlow's message ends "{op} {temporary file}; {the OS's words} [Op:...]"
    lines = str(error.message).strip().splitlines() or [type(error).__name__]
    return lines[-1].split("; ")[-1].split(" [Op:")[0].strip()
