"""An export is checked against its model when it is loaded (issue 23, case 4), and weights that do not fit
the model a trial or export rebuilds are one line (case 9c): each mismatch names its file and field."""

import json
import shutil
from pathlib import Path

import pytest
import tensorflow as tf
from click.testing import CliRunner
from conftest import cli_error_line, copy_trial, one_line_error, tone, two_word_corpus, write_wav

from tuner_app.cli import cli
from tuner_app.constants import CLIP_SAMPLES
from tuner_app.data.corpus import SEED_WORDS
from tuner_app.files import save_weights
from tuner_app.inspection import source
from tuner_app.model.architecture import build
from tuner_app.serving import export, inference, weights_errors

CLASS_NAMES = list(SEED_WORDS)  # the tiny trial's 16 classes, in the model's order
REMEDY = "re-export the trial"


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export  # conftest's: read here, never written


def _edited(exported: Path, tmp_path: Path, **changes) -> Path:
    """A copy of the export whose tuner_app.json has `changes` (a key set to None is removed)."""
    copy = Path(shutil.copytree(exported, tmp_path / "model"))
    metadata = {**json.loads((copy / export.METADATA).read_text()), **changes}
    (copy / export.METADATA).write_text(json.dumps({key: value for key, value in metadata.items() if value is not None}))
    return copy


def _invoke(*args):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def test_fewer_class_names_than_the_model_scores_are_one_line_for_predict_and_evaluate(exported, tmp_path):
    model = _edited(exported, tmp_path, class_names=CLASS_NAMES[:3])
    clip, data = write_wav(tmp_path / "clip.wav", tone()), two_word_corpus(tmp_path / "data")
    expected = f"{model / export.METADATA}: class_names lists 3 names but the model scores 16 classes; {REMEDY}"
    for command in (["predict", model, clip], ["evaluate", model, "--data", data]):
        assert cli_error_line(_invoke(*command), alone=True).startswith(f"Error: {expected}")


def test_class_names_out_of_the_models_order_are_refused_by_predict_and_activations(exported, tmp_path):
    model = _edited(exported, tmp_path, class_names=CLASS_NAMES[1:] + CLASS_NAMES[:1])
    expected = "class_names are not the model's own (position 0: 'one' here, 'zero' in the model)"
    line = cli_error_line(_invoke("predict", model, write_wav(tmp_path / "clip.wav", tone())), alone=True)
    assert f"{model / export.METADATA}: {expected}" in line
    one_line_error(lambda: source.load(model), model / export.METADATA, expected)


@pytest.mark.parametrize("field, value, says", [
    ("sample_rate", 8000, "sample_rate is 8000 but the model takes 16000 Hz audio"),
    ("input_shape", [None, 8000], "input_shape is [null, 8000] but the model takes [null, 16000]"),
])
def test_a_rate_or_input_shape_the_model_does_not_take_is_one_line(exported, tmp_path, field, value, says):
    model = _edited(exported, tmp_path, **{field: value})
    one_line_error(lambda: inference.load(model), model / export.METADATA, says, REMEDY)


class _WithoutEmbeddedNames(tf.Module):
    """A SavedModel without the class names and rate an export embeds, as one made without them would be."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, CLIP_SAMPLES], tf.float32, name="waveform")])
    def serve(self, waveform):
        return {"probabilities": self.model(waveform, training=False)}


def test_an_export_without_the_embedded_names_or_the_new_fields_still_loads(exported, tiny_trial_dir, tmp_path):
    reordered = CLASS_NAMES[::-1]
    model = _edited(exported, tmp_path, class_names=reordered, sample_rate=None, input_shape=None)
    bare = _WithoutEmbeddedNames(export.load_trial(tiny_trial_dir).model)
    tf.saved_model.save(bare, str(model), signatures={"serving_default": bare.serve.get_concrete_function()})
    assert inference.load(model).class_names == tuple(reordered)  # the order is known nowhere else: trusted
    (model / export.METADATA).write_text(json.dumps({**json.loads((model / export.METADATA).read_text()),
                                                     "class_names": CLASS_NAMES[:3]}))
    one_line_error(lambda: inference.load(model), "class_names lists 3 names but the model scores 16 classes")


def _activations(model: Path, tmp_path: Path):
    stimuli = tmp_path / "stimuli"
    write_wav(stimuli / "a.wav", tone())
    return _invoke("activations", model, "--stimuli", stimuli, "--out", tmp_path / "layers.npz")


def test_truncated_weights_are_one_line_for_activations(tiny_trial_dir, tmp_path):
    trial = copy_trial(tiny_trial_dir, tmp_path / "runs")
    weights = trial / export.CHECKPOINT
    weights.write_bytes(weights.read_bytes()[:-1000])
    line = cli_error_line(_activations(trial, tmp_path), alone=True)
    assert f"{weights}: cannot load the weights (truncated, damaged or another model's: " in line
    assert line.endswith("; use another trial, or run the search again with --fresh"), line
    assert not (tmp_path / "layers.npz").exists()


def test_weights_of_a_model_of_another_shape_are_one_line_for_activations_and_export(tiny_trial_dir, tmp_path):
    trial = copy_trial(tiny_trial_dir, tmp_path / "runs")
    rebuilt = export.load_trial(trial)
    save_weights(build.build_model(rebuilt.space, rebuilt.values, 3), trial / export.CHECKPOINT)  # 3 classes, not 16
    line = cli_error_line(_activations(trial, tmp_path), alone=True)
    assert f"{trial / export.CHECKPOINT}: cannot load the weights (truncated, damaged or another model's: " in line
    assert "where this model has (" in line and len(line) < 400, line  # the shapes, not the variable's values
    one_line_error(lambda: export.export_trial(trial, tmp_path / "out"), trial / export.CHECKPOINT, "another model's")
    assert not (tmp_path / "out").exists()


_ONE_OBJECT = "A total of 1 objects could not be loaded. Example error message for object <{}>:\n\n{}\n\n" \
              "List of objects that could not be loaded:\n[<{}>]"


@pytest.mark.parametrize("error, gist", [  # what Keras 3 and h5py said for each kind of bad weights file
    (ValueError(_ONE_OBJECT.format(
        "Dense name=b03_dense, built=True", "The shape of the target variable and the shape of the target value in "
        "`variable.assign(value)` must match. variable.shape=(4, 16), Received: value.shape=(8, 8). Target "
        "variable: <Variable path=b03_dense/kernel, shape=(4, 16), dtype=float32, value=[[ 0.1\n 0.2]]>", "Dense")),
     "1 object(s) do not fit, first b03_dense: the file has shape (8, 8) where this model has (4, 16)"),
    (ValueError(_ONE_OBJECT.format("keras.src.optimizers.adam.Adam object at 0x7f5a0e579010",
                                   "Unable to get group info (bad symbol table node signature)", "Adam")),
     "1 object(s) do not fit, first Adam: Unable to get group info (bad symbol table node signature)"),
    (KeyError("Unable to synchronously open object (bad object header version number)"),
     "Unable to synchronously open object (bad object header version number)"),
])
def test_the_gist_of_a_weights_error_is_one_short_line(error, gist):
    assert weights_errors.reason(error) == gist
