"""An export's tuner_app.json checked against the SavedModel beside it, when the export is loaded: the class
names (count, and order where the model holds them), the waveform input's shape and the sample rate.

Answers are words only through tuner_app.json's class_names, so a stale or edited file would turn every
answer into the wrong word, or an IndexError; a mismatch is one line naming the field instead.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

import tensorflow as tf

from tuner_app.constants import CLIP_SAMPLES, SAMPLE_RATE
from tuner_app.errors import TunerAppError

INPUT_SHAPE = [None, CLIP_SAMPLES]  # serving_default's float32 waveforms: one second at SAMPLE_RATE
_FIX = "re-export the trial (or restore the export's own tuner_app.json)"
_VARIABLE_KEY = "{}/.ATTRIBUTES/VARIABLE_VALUE"  # how a SavedModel's checkpoint names a module's variable


@dataclasses.dataclass(frozen=True)
class ModelFacts:
    """What the SavedModel itself says; None where it says nothing (an older export, or an unread part)."""

    class_names: tuple[str, ...] | None = None
    sample_rate: int | None = None
    input_shape: list[int | None] | None = None
    input_dtype: str | None = None
    output_width: int | None = None


def model_facts(export_dir: Path, saved_model: Any) -> ModelFacts:
    """The facts of a loaded export (`tf.saved_model.load`): its embedded variables and serving_default."""
    signature = saved_model.signatures.get("serving_default")
    output = signature.structured_outputs.get("probabilities") if signature is not None else None
    if output is None:
        raise TunerAppError(f"{export_dir}: the SavedModel's serving_default gives no probabilities; "
                            "export the trial with this tuner-app")
    specs = list(signature.structured_input_signature[1].values())
    embedded = {name: getattr(saved_model, name, None) for name in ("class_names", "sample_rate")}
    return ModelFacts(
        class_names=_names(None if embedded["class_names"] is None else embedded["class_names"].numpy()),
        sample_rate=None if embedded["sample_rate"] is None else int(embedded["sample_rate"].numpy()),
        input_shape=specs[0].shape.as_list() if len(specs) == 1 else None,
        input_dtype=specs[0].dtype.name if len(specs) == 1 else None,
        output_width=output.shape[-1])


def checkpoint_facts(export_dir: Path) -> ModelFacts:
    """The embedded class names and sample rate, read from the SavedModel's variables without loading its
    graph. Unreadable variables leave them unknown: the Keras weights, not the SavedModel, rebuild the model."""
    try:
        reader = tf.train.load_checkpoint(str(export_dir / "variables" / "variables"))
        stored = reader.get_variable_to_shape_map()
    except (ValueError, tf.errors.OpError):
        return ModelFacts()
    value = {name: reader.get_tensor(_VARIABLE_KEY.format(name)) if _VARIABLE_KEY.format(name) in stored else None
             for name in ("class_names", "sample_rate")}
    return ModelFacts(class_names=_names(value["class_names"]),
                      sample_rate=None if value["sample_rate"] is None else int(value["sample_rate"]))


def _names(values: Any) -> tuple[str, ...] | None:
    """The embedded class names (a numpy array of UTF-8 bytes) as strings."""
    return None if values is None else tuple(name.decode("utf-8") for name in values)


def check(metadata_path: Path, metadata: Mapping[str, Any], facts: ModelFacts) -> tuple[str, ...]:
    """tuner_app.json's class names, once checked against `facts`; TunerAppError names the field that
    disagrees with the model."""
    names = _listed_names(metadata_path, metadata)
    _check_count(metadata_path, names, facts)
    _check_order(metadata_path, names, facts)
    _check_rate(metadata_path, metadata, facts)
    _check_input(metadata_path, metadata, facts)
    return names


def _listed_names(metadata_path: Path, metadata: Mapping[str, Any]) -> tuple[str, ...]:
    names = metadata.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise TunerAppError(f"{metadata_path}: class_names must be a list of the class names (strings), got "
                            f"{json.dumps(names)[:80]}; {_FIX}")
    return tuple(names)


def _check_count(metadata_path: Path, names: tuple[str, ...], facts: ModelFacts) -> None:
    embedded = len(facts.class_names) if facts.class_names is not None else None
    for scored in (facts.output_width, embedded):
        if scored is not None and scored != len(names):
            raise TunerAppError(f"{metadata_path}: class_names lists {len(names)} names but the model scores "
                                f"{scored} classes; {_FIX}")


def _check_order(metadata_path: Path, names: tuple[str, ...], facts: ModelFacts) -> None:
    # A SavedModel without embedded names (every tuner-app export has them; one made otherwise may not) is
    # checked for the count only: the order of its output columns is written nowhere else.
    if facts.class_names is None or facts.class_names == names:
        return
    position = next(index for index, pair in enumerate(zip(names, facts.class_names)) if pair[0] != pair[1])
    raise TunerAppError(f"{metadata_path}: class_names are not the model's own (position {position}: "
                        f"{names[position]!r} here, {facts.class_names[position]!r} in the model); {_FIX}")


def _check_rate(metadata_path: Path, metadata: Mapping[str, Any], facts: ModelFacts) -> None:
    # Exports made before the rate was written down all took SAMPLE_RATE, as their signatures' text says.
    listed = metadata.get("sample_rate", SAMPLE_RATE)
    model_rate = facts.sample_rate if facts.sample_rate is not None else SAMPLE_RATE
    if listed != model_rate:
        raise TunerAppError(f"{metadata_path}: sample_rate is {listed!r} but the model takes {model_rate} Hz "
                            f"audio; {_FIX}")


def _check_input(metadata_path: Path, metadata: Mapping[str, Any], facts: ModelFacts) -> None:
    if facts.input_shape is None:
        return
    listed = metadata.get("input_shape", INPUT_SHAPE)  # absent before it was written down: INPUT_SHAPE then
    if listed != facts.input_shape:
        raise TunerAppError(f"{metadata_path}: input_shape is {json.dumps(listed)} but the model takes "
                            f"{json.dumps(facts.input_shape)}; {_FIX}")
    if facts.input_shape != INPUT_SHAPE or facts.input_dtype != "float32":
        raise TunerAppError(f"{metadata_path.parent}: the SavedModel's serving_default takes {facts.input_dtype} "
                            f"{json.dumps(facts.input_shape)}, not the float32 waveforms "
                            f"{json.dumps(INPUT_SHAPE)} tuner-app gives it; export the trial with this tuner-app")
