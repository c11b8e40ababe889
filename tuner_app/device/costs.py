"""What a configuration costs on a device, known before it trains: its int8 features-in model (features_in.py)
converted with untrained weights gives flash_bytes (the .tflite), ram_bytes (TFLite Micro's tensor arena, as
memory_plan.py plans it) and latency_ms (one invoke in the host's LiteRT, one thread). None depends on the
weights' values, once the untrained batch norms hold real statistics (_normalised)."""

from __future__ import annotations

import contextlib
import logging
import random
import time
from typing import Any, Mapping

import numpy as np

DEVICE_COSTS = ("flash_bytes", "ram_bytes", "latency_ms")
# Noise sets the activation scales only; sizes and timings do not depend on them.
NOISE_CLIPS, NOISE_SEED, NOISE_LEVEL = 8, 0, 0.1
LATENCY_RUNS = 20
log = logging.getLogger(__name__)
_measured: dict[str, dict[str, float]] = {}  # what was built -> its costs: oracles ask again for what they redraw


def untrained(space, values: Mapping[str, Any], n_classes: int) -> dict[str, float]:
    """DEVICE_COSTS of a configuration, from its model built with untrained weights (raises TunerAppError where it
    does not convert to int8, InfeasibleConfig where it cannot be built)."""
    key = built_key(space, values, n_classes)
    if key not in _measured:
        _measured[key] = _of_configuration(space, values, n_classes)
    return dict(_measured[key])


def untrained_or_none(space, values: Mapping[str, Any], n_classes: int) -> dict[str, float]:
    """untrained's costs; none, with a warning, where the network does not convert (its trial stands)."""
    from tuner_app.errors import TunerAppError

    try:
        return untrained(space, values, n_classes)
    except TunerAppError as error:
        log.warning("no device costs for %s: %s", values, error)
        return {}


def built_key(space, values: Mapping[str, Any], n_classes: int) -> str:
    """Exactly what the converted network depends on: the front-end and the blocks."""
    from tuner_app.model.architecture.configured import blocks, frontend_config

    return repr((frontend_config(space, values), blocks(space, values, n_classes)))


def _of_configuration(space, values: Mapping[str, Any], n_classes: int) -> dict[str, float]:
    from tuner_app.model.architecture.build import build_model

    with _random_state_kept():  # initialising weights here must not change what the search draws next
        model = build_model(space, values, n_classes)
        return of_model(model, untrained=True)


@contextlib.contextmanager
def _random_state_kept():
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def of_model(model, untrained: bool = False) -> dict[str, float]:
    """DEVICE_COSTS of a built model's network, calibrated on noise (an untrained one: untrained_blob)."""
    from tuner_app.device import features_in

    return of_blob(untrained_blob(model) if untrained else features_in.convert(model, _noise(model)))


def untrained_blob(model) -> bytes:
    """The int8 features-in .tflite of an untrained model, its batch norms first set to the noise's statistics
    (_normalised), calibrated on that noise."""
    from tuner_app.device import features_in

    noise = _noise(model)
    _normalised(model, noise)
    return features_in.convert(model, noise)


def _noise(model) -> np.ndarray:
    noise = np.random.default_rng(NOISE_SEED).normal(0.0, NOISE_LEVEL, (NOISE_CLIPS, model.input_shape[-1]))
    return noise.astype(np.float32)


def _normalised(model, noise: np.ndarray) -> None:
    """Untrained, a batch norm's moving statistics (mean 0, variance 1) normalise nothing: a deep DS-CNN's
    activations then shrink ~5x per block, to a softmax input range TFLite Micro's int8 kernel aborts on (below
    2^-26), and zero offsets let the converter drop additions a trained model keeps (BC-ResNet-1: 191 ops
    against 203). One training-mode pass with momentum 0 sets them to the noise's own, as training would."""
    from tuner_app.model.space.recipe import set_batch_norm_momentum

    set_batch_norm_momentum(model, 0.0)
    model(noise, training=True)


def of_blob(blob: bytes) -> dict[str, float]:
    """DEVICE_COSTS of an int8 features-in .tflite. RAM is our own plan of TFLite Micro's arena (memory_plan.py:
    equal to the arena TFLM allocates on every model benchmarks/ram_estimate.py checks), milliseconds to compute
    where TFLM takes a child process; a trial scored in int8 also gets TFLM's own (trial_int8.py)."""
    from tuner_app.device import memory_plan

    return {"flash_bytes": float(len(blob)), "ram_bytes": float(memory_plan.arena_bytes(blob)),
            "latency_ms": host_latency_ms(blob)}


def host_latency_ms(blob: bytes, runs: int = LATENCY_RUNS) -> float:
    """Median wall time of one invoke in LiteRT, one thread, after one untimed invoke."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=blob, num_threads=1)
    interpreter.allocate_tensors()
    interpreter.invoke()
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        interpreter.invoke()
        seconds.append(time.perf_counter() - started)
    return 1000 * float(np.median(seconds))
