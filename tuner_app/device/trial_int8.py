"""A trial's model as a device runs it, measured right after it trains (the space's `training.int8: true`): its
int8 features-in network (features_in.py) converted, its validation and test accuracy in int8, its flash bytes
and TFLite Micro arena. Logged beside the float scores, so a search can look for the front as deployed."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Mapping

import numpy as np

from tuner_app.errors import TunerAppError

SCORES = ("val_accuracy_int8", "test_accuracy_int8", "flash_bytes", "ram_bytes", "int8_seconds")
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Int8Data:
    """Un-augmented training clips (float32) to calibrate on, and the decoded splits to score in int8 (their
    labels are the model's class ids; their waveforms may be the int16 cache, read through `batch`)."""

    calibration: np.ndarray
    validation: Any
    test: Any


def asked(space) -> bool:
    """Whether a search on the space scores its trials in int8: `training.int8`, or int8 as its accuracy axis."""
    return bool(space.training["int8"]) or space.objective.get("accuracy") == "int8"


def data_of(splits: Mapping[str, Any]) -> Int8Data:
    """From the search's decoded splits."""
    from tuner_app.device import tflite  # here: the tracking side reads SCORES without TensorFlow

    test = splits.get("test")
    return Int8Data(tflite.calibration_clips(splits["train"]), splits["validation"],
                    test if test is not None and len(test) else None)


def scores(model, data: Int8Data) -> dict[str, float]:
    """SCORES of the model's kept weights; none, with a warning, where the network does not convert to int8 (the
    trial itself stands: its float scores are unchanged)."""
    from tuner_app.device import features_in, micro

    started = time.perf_counter()
    try:
        blob = features_in.convert(model, data.calibration)
        result = {"val_accuracy_int8": accuracy(model, blob, data.validation),
                  "flash_bytes": float(len(blob)), "ram_bytes": float(micro.arena_bytes(blob))}
    except TunerAppError as error:
        log.warning("no int8 scores for %s: %s", model.name, error)
        return {}
    if data.test is not None:
        result["test_accuracy_int8"] = accuracy(model, blob, data.test)
    return {**result, "int8_seconds": time.perf_counter() - started}


def accuracy(model, blob: bytes, clips) -> float:
    """Accuracy of the int8 network on decoded clips, read a batch at a time (a split's float32 at once can be
    hundreds of MB)."""
    from tuner_app.device import features_in

    step = features_in.FEATURES_BATCH
    batches = (clips.batch(slice(start, start + step)) for start in range(0, len(clips), step))
    predicted = [features_in.probabilities(blob, features_in.features_of(model, batch)).argmax(axis=1)
                 for batch in batches]
    return float(np.mean(np.concatenate(predicted) == np.asarray(clips.labels)))
