"""model_int8_features.tflite: the network alone, int8 features in and int8 scores out, as a microcontroller
runs it; TFLite Micro (its own interpreter and reference kernels) runs it, in an arena it reports."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import tone_clips

from tuner_app.errors import TunerAppError
from tuner_app.device import features_in, micro
from tuner_app.serving import export, inference
from tuner_app.serving.runtimes import RUNTIMES


@pytest.fixture(scope="module")
def exported(tiny_trial_dir, tmp_path_factory):
    clips = tone_clips(7, 2)
    return export.export_trial(tiny_trial_dir, tmp_path_factory.mktemp("features_in") / "model", quantize="int8",
                               representative=tone_clips(1, 2).waveforms, check=(clips.waveforms, clips.labels))


@pytest.fixture(scope="module")
def blob(exported) -> bytes:
    return (exported.path / features_in.TFLITE_INT8_FEATURES).read_bytes()


@pytest.fixture(scope="module")
def model(tiny_trial_dir):
    return export.load_trial(tiny_trial_dir).model


def test_every_op_of_the_features_in_model_is_int8(exported):
    ops = exported.tflite["int8_features"]["ops"]
    assert set(ops) == {"int8"} and "CONV_2D" in ops["int8"]  # no float op, no flex op: it runs on an int8 MCU


def test_tuner_app_json_describes_the_frontend_and_the_quantization(exported, blob, model):
    described = json.loads((exported.path / export.METADATA).read_text())["tflite"]["int8_features"]
    assert described["file"] == features_in.TFLITE_INT8_FEATURES and described["bytes"] == len(blob)
    assert described["frontend"] == model.get_layer("frontend").config.to_dict()
    assert described["input"]["dtype"] == described["output"]["dtype"] == "int8"
    assert described["input"]["shape"] == [1, *model.get_layer("frontend").output.shape[1:]]
    assert described["input"]["scale"] > 0 and described["tflm_arena_bytes"] > 0


def test_its_dequantized_scores_follow_the_float_model(blob, model):
    waveforms = tone_clips(7, 2).waveforms[:8]
    scores = features_in.probabilities(blob, features_in.features_of(model, waveforms))
    float_scores = model(waveforms, training=False).numpy()
    np.testing.assert_allclose(scores, float_scores, atol=0.1)  # int8 steps of 1/256, a few of them
    assert (scores.argmax(axis=1) == float_scores.argmax(axis=1)).mean() >= 0.75


def _reference_kernel_scores(blob: bytes, quantized: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=blob,
                                      experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    (given,), (returned,) = interpreter.get_input_details(), interpreter.get_output_details()
    rows = []
    for row in quantized:
        interpreter.set_tensor(given["index"], row[np.newaxis])
        interpreter.invoke()
        rows.append(interpreter.get_tensor(returned["index"])[0])
    return np.stack(rows)


def test_tflite_micro_computes_what_tflite_s_reference_kernels_compute(blob, model):
    # To the bit for convolutions, dense layers and pooling (this model); LiteRT's default, optimized kernels
    # round otherwise, so their accuracy is reported beside TFLM's, not instead of it (docs/deploy.md).
    features = features_in.features_of(model, tone_clips(7, 2).waveforms[:6])
    quantized = features_in.quantized(features, features_in.tensors(blob)["input"])
    np.testing.assert_array_equal(micro.scores(blob, quantized), _reference_kernel_scores(blob, quantized))


def test_the_model_runs_in_exactly_the_arena_tflite_micro_reports(blob, model):
    arena = micro.arena_bytes(blob)
    assert 0 < arena < micro.ARENA_LIMIT
    features = features_in.features_of(model, tone_clips(7, 1).waveforms[:2])
    row = features_in.quantized(features[:1], features_in.tensors(blob)["input"])
    interpreter = micro._interpreter(blob, arena)  # allocation fails if the report is short
    interpreter.set_input(row, 0)
    interpreter.invoke()
    np.testing.assert_array_equal(np.array(interpreter.get_output(0)), micro.scores(blob, row))


def test_the_export_reports_its_accuracy_in_litert_and_in_tflite_micro(exported):
    accuracy = exported.accuracy
    assert accuracy["clips"] > 0
    assert abs(accuracy["tflm_int8_features"] - accuracy["tflite_int8_features"]) <= 0.25
    assert abs(accuracy["tflite_int8_features"] - accuracy["saved_model"]) <= 0.25


def test_a_model_tflite_micro_cannot_run_is_one_line(exported):
    waveform_model = Path(exported.tflite["float"]["path"]).read_bytes()  # float RFFT2D, strings: not for TFLM
    with pytest.raises(TunerAppError, match="TFLite Micro cannot allocate"):
        micro.arena_bytes(waveform_model)


def test_predict_and_evaluate_run_each_of_the_exports_models(exported, tmp_path):
    from click.testing import CliRunner
    from conftest import write_wav

    from tuner_app.cli import cli

    clips = tone_clips(7, 1)
    waveforms = clips.waveforms[:4]
    scores = {runtime: inference.load(exported.path, runtime).probabilities(waveforms) for runtime in RUNTIMES}
    assert all(value.shape == scores["saved_model"].shape for value in scores.values())
    np.testing.assert_allclose(scores["tflm"], scores["int8-features"], atol=0.1)  # int8 steps of 1/256, kernels round
    np.testing.assert_allclose(scores["tflite"], scores["saved_model"], atol=1e-4)
    wav = write_wav(tmp_path / "clip.wav", waveforms[0])
    result = CliRunner().invoke(cli, ["predict", str(exported.path), str(wav), "--runtime", "tflm", "--format",
                                      "json"])
    assert result.exit_code == 0, result.output
    on_micro = inference.predict_files(inference.load(exported.path, "tflm"), [wav], top_k=3)
    assert json.loads(result.output)[0]["top"] == on_micro[0]["top"]


def test_a_runtime_the_export_lacks_is_one_line_naming_the_file(tiny_export):
    with pytest.raises(TunerAppError, match=r"model_int8_features\.tflite: not in this export .*--quantize int8"):
        inference.load(tiny_export, "tflm")


def test_an_int8_export_is_replaced_by_force_as_tuner_app_s_own(exported, tiny_trial_dir, tmp_path):
    from tuner_app import outputs

    assert {entry.name for entry in exported.path.iterdir()} <= outputs.EXPORT_ENTRIES
    copy = tmp_path / "model"
    shutil.copytree(exported.path, copy)
    export.export_trial(tiny_trial_dir, copy, force=True)  # was refused: "holds model_int8_features.tflite"
    assert not (copy / features_in.TFLITE_INT8_FEATURES).exists()  # replaced whole, by a float-only export
