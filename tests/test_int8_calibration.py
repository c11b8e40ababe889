"""int8 activation ranges (device/calibration.py): the median over subsets of the calibration examples, so that
one unusual example cannot stretch a range; and the private TFLite steps it relies on, pinned (TF 2.17):
TFLiteConverter._experimental_calibrate_only, optimize.calibrator.Calibrator(model).calibrate(dataset) and
convert.mlir_quantize, which together make what converter.convert() makes."""

import numpy as np
import pytest
import tensorflow as tf

from tuner_app.device import calibration, features_in, tflite

SHAPE = (6, 4, 1)


@pytest.fixture(scope="module")
def keras_model():
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input(SHAPE), keras.layers.Conv2D(4, 3, activation="relu"),
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, activation="softmax")])


@pytest.fixture
def function(keras_model):  # the model fixture keeps its variables alive while the function is converted
    return tf.function(lambda x: keras_model(x, training=False),
                       input_signature=[tf.TensorSpec([1, *SHAPE])]).get_concrete_function()


def _examples(outlier: float = 1.0) -> np.ndarray:
    examples = np.random.default_rng(0).standard_normal((30, *SHAPE)).astype(np.float32)
    examples[7] *= outlier  # one example far outside the others
    return examples


def _setup(examples, then):
    def run(converter):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        converter.representative_dataset = lambda: ([row[np.newaxis]] for row in examples)
        return then(converter)

    return run


def _input_range(blob: bytes) -> tuple[float, float]:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(blob))
    quantization = model.subgraphs[0].tensors[model.subgraphs[0].inputs[0]].quantization
    return quantization.min[0], quantization.max[0]


def _quantization(blob: bytes) -> list:
    interpreter = tf.lite.Interpreter(model_content=blob)
    return [(detail["name"], detail["dtype"], detail["quantization_parameters"]["scales"].tolist(),
             detail["quantization_parameters"]["zero_points"].tolist()) for detail in interpreter.get_tensor_details()]


def test_calibrating_then_quantizing_makes_what_the_converter_makes(function):
    examples = _examples()
    converted = tflite.convert_function(function, _setup(examples, lambda converter: converter.convert()))
    ours = tflite.convert_function(function, _setup(examples, lambda converter: calibration.quantized(
        calibration.calibrate_only(converter), int8_io=True)))
    assert _quantization(ours) == _quantization(converted), \
        "calibrate_only + mlir_quantize no longer quantize as TFLiteConverter.convert does"
    assert tflite.tflite_ops(ours) == tflite.tflite_ops(converted)


def test_a_calibrator_run_on_a_calibrated_model_records_its_own_examples_ranges(function):
    calibrated = tflite.convert_function(function, _setup(_examples(), calibration.calibrate_only))
    low, high = _input_range(calibration._calibrated_on(calibrated, _examples()[:3]))
    every = _examples()
    assert (low, high) != _input_range(calibrated), "Calibrator.calibrate kept the model's earlier ranges"
    assert low == pytest.approx(float(every[:3].min()), rel=1e-5)
    assert high == pytest.approx(float(every[:3].max()), rel=1e-5)


def test_one_outlier_stretches_the_extremes_but_not_the_median_ranges(function):
    examples = _examples(outlier=50.0)
    calibrated = tflite.convert_function(function, _setup(examples, calibration.calibrate_only))
    extremes, medians = _input_range(calibrated), _input_range(calibration.median_ranges(calibrated, examples, 10))
    assert extremes[1] > 50 and medians[1] < 5 and extremes[0] < -50 and medians[0] > -5
    ordinary = _input_range(calibration.median_ranges(
        tflite.convert_function(function, _setup(_examples(), calibration.calibrate_only)), _examples(), 10))
    assert medians == pytest.approx(ordinary, rel=0.5)  # as if the outlier had not been there


def test_too_few_examples_for_two_subsets_keep_the_extremes(function):
    examples = _examples(outlier=50.0)[:2 * calibration.SUBSET_CLIPS - 1]
    calibrated = tflite.convert_function(function, _setup(examples, calibration.calibrate_only))
    assert calibration.median_ranges(calibrated, examples) == calibrated


def test_the_features_in_model_takes_the_median_input_range(function):
    examples = _examples(outlier=50.0)
    blob = tflite.convert_function(function, features_in.fully_int8(examples))
    scale = tf.lite.Interpreter(model_content=blob).get_input_details()[0]["quantization"][0]
    assert scale < 10 / 255, "the input's int8 step still spans the outlier's range"
