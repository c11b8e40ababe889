"""int8 export keeps the front-end float by location (the `frontend` layer), not by op type: the CNN's own
ADD (residual), MUL and MEAN (global average) are int8 like its convolutions, and the front-end's LOG, MEAN and
MUL stay float32. TC-ResNet takes the feature rows as channels: the int8 file divides them by per-row scales in
float, with the front-end (device/row_scale.py)."""

from pathlib import Path

import numpy as np
import pytest
from conftest import tone_clips

from tuner_app.model.architecture import build
from tuner_app.model.space import search_space
from tuner_app.device import row_scale, tflite
from tuner_app.serving import export

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A TC-ResNet8 (residual ADDs, a global-average MEAN) on 40 MFCCs with per-clip standardisation (the
    front-end's own MEAN, MUL, ADD), untrained: its float and int8 TFLite files."""
    space = search_space.load(ROOT / "search_spaces" / "tcresnet8.yaml")
    values = {name: spec["value"] for name, spec in space.hyperparameters.items()}
    model, clips = build.build_model(space, values, 4), tone_clips(0).waveforms
    module = export.AudioClassifier(model, ["a", "b", "c", "d"])
    scaled = export.AudioClassifier(row_scale.waveform_model(model, clips), ["a", "b", "c", "d"])
    written, _ = tflite.write_tflite(module, tmp_path_factory.mktemp("tflite"), "int8", clips, scaled)
    return {kind: Path(entry["path"]).read_bytes() for kind, entry in written.items()}, written


def test_the_frontend_nodes_are_exactly_the_frontend_layers_ops(converted):
    blobs, _ = converted
    nodes = tflite.frontend_nodes(blobs["float"])
    assert nodes and all("frontend" in part for node in nodes for part in node.split(";") if part)
    assert any(node.endswith("/Log") for node in nodes)
    assert not any("b0" in node or "classifier" in node for node in nodes)  # no block of the CNN


def test_the_cnn_is_int8_as_a_whole_and_the_frontend_stays_float(converted):
    _, written = converted
    ops = written["int8"]["ops"]
    assert {"CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED"} <= set(ops["int8"])  # the residual ADDs and the pooling
    assert {"LOG", "RFFT2D"} <= set(ops["float32"]) | set(ops.get("complex64", []))
    assert "MEAN" in ops["float32"]  # the per-clip standardisation, in the front-end


def test_the_rows_are_divided_in_float_and_the_one_quantize_follows(converted):
    import tensorflow as tf

    blobs, _ = converted
    interpreter = tf.lite.Interpreter(model_content=blobs["int8"])
    tensors = {detail["index"]: detail for detail in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    divided = [tensors[op["outputs"][0]] for op in ops if row_scale.ROWS_LAYER in tensors[op["outputs"][0]]["name"]
               and op["op_name"] != "QUANTIZE"]
    assert len(divided) == 1 and divided[0]["dtype"] == np.float32
    quantizes = [op for op in ops if op["op_name"] == "QUANTIZE" and tensors[op["inputs"][0]]["dtype"] == np.float32]
    assert [op["inputs"][0] for op in quantizes] == [divided[0]["index"]]


def test_the_row_scaled_int8_file_follows_the_float_one(converted):
    blobs, _ = converted
    clips = tone_clips(3).waveforms
    int8 = tflite.tflite_probabilities(blobs["int8"], clips)
    np.testing.assert_allclose(int8, tflite.tflite_probabilities(blobs["float"], clips), atol=0.05)
