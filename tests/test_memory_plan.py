"""device/memory_plan.py: TFLite Micro's arena computed from the .tflite alone, without its interpreter: the
greedy planner on hand-made lifetimes, the lifetimes TFLM gives a graph, and tiny int8 models against the arena
TFLM itself reports."""

import numpy as np
import pytest

from tuner_app.device import memory_plan, micro
from tuner_app.device.memory_plan import Graph, Op, Span, Tensor


def test_buffers_never_alive_together_share_memory():
    spans = [Span(64, 0, 1), Span(64, 2, 3)]
    assert memory_plan.greedy_offsets(spans) == [0, 0]
    assert memory_plan.planned_bytes(spans) == 64


def test_buffers_alive_together_never_overlap():
    spans = [Span(64, 0, 2), Span(32, 2, 3)]  # both alive in scope 2
    assert memory_plan.greedy_offsets(spans) == [0, 64]
    assert memory_plan.planned_bytes(spans) == 96


def test_a_smaller_buffer_fills_the_gap_a_larger_one_leaves():
    # The largest goes first at 0; each of the others overlaps it but not each other, so they share one slot.
    spans = [Span(64, 0, 1), Span(64, 2, 3), Span(128, 1, 2)]
    assert memory_plan.greedy_offsets(spans) == [128, 128, 0]
    assert memory_plan.planned_bytes(spans) == 192


def test_the_plan_is_the_one_tflite_micro_s_own_tests_expect():
    # greedy_memory_planner_test.cc, TestGreedyMedium and TestOverlapCase (sizes unaligned there)
    medium = [Span(10, 0, 1), Span(20, 1, 2), Span(30, 2, 3), Span(40, 3, 4), Span(50, 0, 1)]
    assert memory_plan.greedy_offsets(medium) == [50, 70, 40, 0, 0]
    assert memory_plan.planned_bytes(medium) == 90
    assert memory_plan.planned_bytes([Span(100, 0, 1), Span(50, 2, 3), Span(20, 1, 2)]) == 120


def _graph() -> Graph:
    int8 = lambda *shape: Tensor(shape, int(np.prod(shape)), False, False, 1)  # noqa: E731
    tensors = (int8(1, 4, 4, 3), Tensor((3, 1, 1, 3), 9, True, False, 3), int8(1, 4, 4, 3),
               Tensor((2,), 8, True, False, 0), int8(1, 3))
    ops = (Op("CONV_2D", (0, 1, -1), (2,)), Op("MEAN", (2, 3), (4,)))
    return Graph(tensors, ops, inputs=(0,), outputs=(4,))


def test_inputs_live_from_the_start_outputs_to_the_end_and_constants_are_not_planned():
    spans, scratch = memory_plan.lifetimes(_graph())
    # input 48 bytes from scope 0 to its last reader (op 1); the conv's output to the MEAN (op 2); the output,
    # 3 bytes rounded to 16, from op 2 to the end; the weights and axes are flash, not planned
    assert spans[:3] == [Span(48, 0, 1), Span(48, 1, 2), Span(16, 2, 2)]
    # int8 MEAN's scratch in the reference kernel: the accumulator (3 int32), input iterator (4), axes (2)
    assert scratch == spans[3:] == [Span(16, 2, 2), Span(16, 2, 2), Span(16, 2, 2)]
    assert memory_plan.planned_bytes(spans) == 48 + 16 * 4


def test_the_tail_counts_alignment_padding():
    assert memory_plan.tail_bytes([(1, 1), (16, 16)], fixed=0) == 32  # the 16-aligned buffer starts past the byte
    assert memory_plan.tail_bytes([(16, 16), (1, 1)], fixed=0) == 17


def _int8_blob(model, shape) -> bytes:
    import tensorflow as tf

    from tuner_app.device import features_in, tflite

    calibration = np.random.default_rng(0).standard_normal((8, *shape)).astype(np.float32)
    function = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec([1, *shape])])
    return tflite.convert_function(function.get_concrete_function(), features_in.fully_int8(calibration))


def _separable():
    import keras

    layers = keras.layers
    x = inputs = keras.Input((10, 12, 1))
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = layers.Conv2D(12, 1, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(4, activation="softmax")(x))


def _residual():
    import keras

    layers = keras.layers
    x = inputs = keras.Input((10, 12, 1))
    x = layers.Conv2D(8, 3, padding="same")(x)
    y = layers.DepthwiseConv2D(3, padding="same")(x)
    y = layers.Activation("swish")(y)  # LOGISTIC and MUL
    x = layers.Add()([x, y])
    x = layers.ZeroPadding2D(((1, 1), (0, 0)))(x)
    x = layers.AveragePooling2D((1, 2))(x)
    x = layers.MaxPooling2D((2, 1))(x)
    x = layers.Permute((2, 1, 3))(x)  # TRANSPOSE
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(8, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(4, activation="softmax")(x))


@pytest.mark.parametrize("build", [_separable, _residual])
def test_a_tiny_int8_model_s_estimate_is_within_5_percent_of_tflite_micro_s_arena(build):
    import keras

    keras.utils.set_random_seed(0)
    blob = _int8_blob(build(), (10, 12, 1))
    estimate, measured = memory_plan.arena_bytes(blob), micro.arena_bytes(blob)
    assert abs(estimate - measured) <= 0.05 * measured, (estimate, measured)
    parts = memory_plan.breakdown(blob)
    assert parts["activations"] + parts["persistent"] == estimate and parts["scratch"] > 0  # MEAN's
