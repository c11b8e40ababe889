"""A depthwise convolution with unequal strides runs on TensorFlow's own CPU kernels
(model/architecture/depthwise.py)."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tuner_app.model.architecture.depthwise import depthwise_2d


def _per_column(images, kernel, bias, stride: int, padding: str):
    """The reference: each time column alone, as a width-1 image, where strides (s, s) act as (s, 1)."""
    batch, rows, columns, channels = images.shape
    stacked = tf.reshape(tf.transpose(images, [0, 2, 1, 3]), [-1, rows, 1, channels])
    out = tf.nn.depthwise_conv2d(stacked, kernel, [1, stride, stride, 1], padding.upper()) + bias
    return tf.transpose(tf.reshape(out, [batch, columns, -1, channels]), [0, 2, 1, 3])


@pytest.mark.parametrize("rows, size, stride, padding", [(40, 3, 2, "same"), (41, 5, 2, "same"),
                                                          (20, 3, 3, "same"), (40, 3, 2, "valid")])
def test_a_frequency_stride_computes_what_the_strided_convolution_does(rows, size, stride, padding):
    inputs = keras.Input((rows, 7, 4))
    model = keras.Model(inputs, depthwise_2d(inputs, (size, 1), (stride, 1), padding, True, "dw"))
    images = np.random.default_rng(0).standard_normal((2, rows, 7, 4)).astype("float32")
    kernel, bias = model.get_layer("dw").get_weights()
    np.testing.assert_allclose(model(images), _per_column(images, kernel, bias, stride, padding), atol=1e-6)


def test_equal_strides_stay_one_layer_and_unequal_ones_keep_its_name_and_weights():
    inputs = keras.Input((40, 7, 4))
    equal = keras.Model(inputs, depthwise_2d(inputs, (3, 3), (2, 2), "same", False, "dw"))
    unequal = keras.Model(inputs, depthwise_2d(inputs, (3, 1), (2, 1), "same", False, "dw"))
    assert [layer.name for layer in equal.layers[1:]] == ["dw"]
    assert [layer.name for layer in unequal.layers[1:]] == ["dw_pad", "dw", "dw_stride"]
    assert [weight.shape for weight in unequal.weights] == [(3, 1, 4, 1)]


BC_RESNET_STEP = """
import keras, numpy as np
from tuner_app.model.architecture.build import build_model
from tuner_app.model.space import search_space
space = search_space.load("search_spaces/bcresnet1.yaml")
model = build_model(space, {name: spec["value"] for name, spec in space.hyperparameters.items()}, 4)
waveforms = np.random.default_rng(0).standard_normal((4, 16000)).astype("float32") * 0.1
model.optimizer.build(model.trainable_variables)  # as the search does: else the train step is traced twice
model.train_on_batch(waveforms, np.arange(4))
print(model.predict(waveforms, verbose=0).shape)
"""


def test_bc_resnet_trains_and_predicts_without_onednn():
    # TensorFlow's own kernels (oneDNN off, as TensorFlow leaves it on some x86 CPUs) refused BC-ResNet's (2, 1)
    # stride in training and inference alike.
    result = subprocess.run([sys.executable, "-c", BC_RESNET_STEP], capture_output=True, text=True, timeout=300,
                            env={"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "(4, 4)"
