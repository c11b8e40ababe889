"""model_int8.tflite keeps the whole front-end float: the waveform reaches the FFT unquantized, and the one
float -> int8 step is at the front-end's output, where the features-in model's input is quantized. A GATHER
(the STFT's framing) named "<scope>/GatherV2;" once fell off the deny list: the waveform itself went int8."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import tone_clips

from tuner_app.device import tflite
from tuner_app.model.architecture import build
from tuner_app.model.space import search_space
from tuner_app.serving import export

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, inside", [
    ("m/frontend_1/stft/frame/GatherV2;", True),  # how TF 2.17 names a GATHER
    ("m/frontend_1/Log;m/frontend_1/add", True),
    ("m/frontend_1/truediv;m/b00_conv_1/convolution", False),  # fused across the boundary: the CNN's own
    ("m/b00_conv_1/convolution", False),
    (";", False),
    ("", False),
])
def test_a_tensor_is_in_the_frontend_when_every_named_part_is(name, inside):
    assert tflite.in_frontend(name) is inside


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory) -> bytes:
    """The smoke space's CNN on an STFT, untrained: its int8 waveform file."""
    space = search_space.load(ROOT / "search_spaces" / "smoke.yaml")
    values = {name: spec.get("value", spec.get("min_value")) for name, spec in space.hyperparameters.items()}
    module = export.AudioClassifier(build.build_model(space, values, 4), ["a", "b", "c", "d"])
    written, _ = tflite.write_tflite(module, tmp_path_factory.mktemp("tflite"), "int8", tone_clips(0).waveforms)
    return Path(written["int8"]["path"]).read_bytes()


def test_no_frontend_tensor_is_int8_and_one_quantize_ends_the_frontend(int8_model):
    interpreter = tf.lite.Interpreter(model_content=int8_model)
    tensors = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    # The boundary QUANTIZE may carry the front-end's name ("<scope>/ExpandDims1"): its input is what counts.
    in_frontend = [tensors[index] for op in ops if op["op_name"] != "QUANTIZE" for index in op["outputs"]
                   if tflite.in_frontend(tensors[index]["name"])]
    assert in_frontend and not [t["name"] for t in in_frontend if t["dtype"] == np.int8]
    boundary = [op for op in ops
                if op["op_name"] == "QUANTIZE" and tflite.in_frontend(tensors[op["inputs"][0]]["name"])]
    assert len(boundary) == 1 and boundary[0]["inputs"][0] == in_frontend[-1]["index"]  # the front-end's last op
