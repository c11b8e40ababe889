"""int8 activation ranges that a few unusual clips cannot set: each tensor's range is the median, over subsets of
the calibration clips, of the min and max the subset reaches, instead of the extremes over every clip.

TFLite's converter takes each tensor's min and max over all its calibration examples. On a searched BC-ResNet-1
(FSDD by speaker) that made the int8 model's accuracy depend on which 100 clips were drawn: 0.73 to 0.88 against
0.826 in float. With the median over subsets, 0.852 to 0.862 (docs/deploy.md). The converter's own steps are
kept: convert and calibrate (`_experimental_calibrate_only`), then quantize with the calibrated ranges
(`mlir_quantize`, as the converter and TFLite's quantization debugger call it). Every private TFLite name used
is here; tests/test_int8_calibration.py pins them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

SUBSETS = 10  # of the calibration clips (100: 10 clips each)
SUBSET_CLIPS = 10  # at least, in each: fewer clips make fewer subsets, and under 2 subsets the extremes stand


def int8_model(converter, examples: np.ndarray, int8_io: bool, denylisted_nodes: Sequence[str] = ()) -> bytes:
    """The converter's int8 model, calibrated on `examples` (one model input per row) to median ranges. The
    first calibration only lays out the ranges, which the medians replace: one slice is enough for it."""
    subsets = _subsets(len(examples))
    first = examples if subsets < 2 else examples[::subsets]
    converter.representative_dataset = lambda: ([row[np.newaxis]] for row in first)
    calibrated = median_ranges(calibrate_only(converter), examples, subsets)
    return quantized(calibrated, int8_io, denylisted_nodes)


def calibrate_only(converter) -> bytes:
    """The float model with each tensor's min and max over the converter's representative dataset."""
    converter._experimental_calibrate_only = True
    return converter.convert()


def quantized(calibrated: bytes, int8_io: bool, denylisted_nodes: Sequence[str] = ()) -> bytes:
    """The calibrated model quantized as the converter does (int8 input and output where `int8_io`), the ops that
    output `denylisted_nodes` kept float."""
    from tensorflow.lite.python import convert

    io_type = tf.int8 if int8_io else tf.float32
    return convert.mlir_quantize(calibrated, input_data_type=io_type, output_data_type=io_type,
                                 denylisted_nodes=list(denylisted_nodes) or None)


def median_ranges(calibrated: bytes, examples: np.ndarray, subsets: int = SUBSETS) -> bytes:
    """`calibrated` with each tensor's range the median over `subsets` slices of `examples` (one model input per
    row, SUBSET_CLIPS at least in each) of the slice's min and max: a range no longer stretched by one clip."""
    from tensorflow.lite.tools import flatbuffer_utils

    subsets = _subsets(len(examples), subsets)
    if subsets < 2:
        return calibrated
    slices = [examples[start::subsets] for start in range(subsets)]
    medians = np.median([_ranges(_calibrated_on(calibrated, part)) for part in slices], axis=0)  # [tensors, 2]
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    ranged = [tensor for tensor in model.subgraphs[0].tensors if _has_range(tensor)]
    for tensor, (low, high) in zip(ranged, medians):
        tensor.quantization.min, tensor.quantization.max = [float(low)], [float(high)]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _subsets(examples: int, wanted: int = SUBSETS) -> int:
    return min(wanted, examples // SUBSET_CLIPS)


def _calibrated_on(calibrated: bytes, examples: np.ndarray) -> bytes:
    from tensorflow.lite.python.optimize import calibrator

    return calibrator.Calibrator(calibrated).calibrate(lambda: ([row[np.newaxis]] for row in examples))


def _ranges(calibrated: bytes) -> np.ndarray:
    """[ranged tensors, 2]: the (min, max) of each tensor that has one (activations; not weights or constants)."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(calibrated))
    return np.array([(tensor.quantization.min[0], tensor.quantization.max[0])
                     for tensor in model.subgraphs[0].tensors if _has_range(tensor)], np.float64).reshape(-1, 2)


def _has_range(tensor) -> bool:
    quantization = tensor.quantization
    return quantization is not None and quantization.min is not None and len(quantization.min) == 1
