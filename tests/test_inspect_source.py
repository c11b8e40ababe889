"""The model `visualize` and `activations` look inside: rebuilt as Keras layers from an export or a trial, and
split at the front-end into the training front-end function and a features model with the same weights."""

import json
import shutil

import numpy as np
import pytest
from conftest import FAMILY_SPACES, inspected_model
from conftest import tone_clips as _clips

from tuner_app.errors import TunerAppError
from tuner_app.features import frontend
from tuner_app.inspection import probe, source
from tuner_app.serving import export, inference


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export  # conftest's: read here, never written


def test_an_export_rebuilds_to_the_saved_models_probabilities(exported):
    waveforms = _clips(3).waveforms
    inspected = source.load(exported)
    served = inference.load(exported).probabilities(waveforms)
    assert inspected.name == "cnn2d" and inspected.origin == str(exported)
    assert np.abs(inspected.model(waveforms, training=False).numpy() - served).max() < 1e-5
    last = probe.layer_outputs(inspected, waveforms)[inspected.walk.rows[-1].name]
    assert np.abs(last - served).max() < 1e-5  # the features model has the trained weights too


def test_a_trial_directory_rebuilds_the_same_model(exported, tiny_trial_dir):
    waveforms = _clips(4).waveforms
    from_trial, from_export = source.load(tiny_trial_dir), source.load(exported)
    assert from_trial.values == from_export.values and from_trial.class_names == from_export.class_names
    np.testing.assert_array_equal(from_trial.model(waveforms).numpy(), from_export.model(waveforms).numpy())


def test_an_old_export_falls_back_to_its_trial_or_says_what_to_do(exported, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(exported, old)
    metadata = json.loads((old / export.METADATA).read_text())
    del metadata["space"]
    (old / export.METADATA).write_text(json.dumps(metadata))
    assert source.load(old).walk.params_total == metadata["params"]
    (old / export.METADATA).write_text(json.dumps({**metadata, "trial_dir": str(tmp_path / "gone")}))
    with pytest.raises(TunerAppError, match="export the trial again"):
        source.load(old)


def test_paths_that_are_no_model_are_named(tmp_path):
    with pytest.raises(TunerAppError, match=f"{tmp_path / 'nothing'}: no such model"):
        source.load(tmp_path / "nothing")
    with pytest.raises(TunerAppError, match="neither a tuner-app export"):
        source.load(tmp_path)
    (tmp_path / export.METADATA).write_text("{not json")
    with pytest.raises(TunerAppError, match="cannot read the export's metadata"):
        source.load(tmp_path)


@pytest.mark.parametrize("space_name", list(FAMILY_SPACES))
def test_every_layer_output_has_its_walk_shape_and_the_last_is_the_models_output(space_name):
    inspected = inspected_model(space_name)
    waveforms = np.random.default_rng(0).normal(0, 0.1, (2, 16000)).astype(np.float32)
    outputs = probe.layer_outputs(inspected, waveforms)
    shapes = {row.name: row.output_shape for row in inspected.walk.rows}
    assert list(outputs) == probe.default_layers(inspected)
    assert outputs[probe.FRONTEND].shape == (2, *frontend.output_shape(inspected.frontend))
    assert {name: array.shape[1:] for name, array in outputs.items() if name != probe.FRONTEND} == \
        {name: tuple(shapes[name]) for name in outputs if name != probe.FRONTEND}
    np.testing.assert_allclose(outputs[inspected.walk.rows[-1].name], inspected.model(waveforms).numpy(), atol=1e-5)


def test_a_keras_layer_inside_a_block_can_be_named_and_an_unknown_one_is_refused():
    inspected = inspected_model("dscnn_s")
    waveforms = np.zeros((1, 16000), np.float32)
    inside = probe.layer_outputs(inspected, waveforms, ["b02_depthwise_separable_dw_bn"])
    assert inside["b02_depthwise_separable_dw_bn"].shape == (1, 5, 25, 64)
    with pytest.raises(TunerAppError, match="--layers: no layer 'b99_conv'.*blocks: b00_conv"):
        probe.layer_outputs(inspected, waveforms, ["b99_conv"])
