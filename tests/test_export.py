import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from conftest import N_CLASSES, write_wav
from conftest import tone_clips as _clips

import tuner_app
from tuner_app.cli import cli
from tuner_app.data import corpus
from tuner_app.errors import TunerAppError
from tuner_app.features import frontend
from tuner_app.model.architecture import configured
from tuner_app.serving import export, inference

CLASS_NAMES = list(corpus.SEED_WORDS)



@pytest.fixture(scope="module")
def trial_dir(tiny_trial_dir):
    return tiny_trial_dir  # trained once per run (conftest); never written to here


@pytest.fixture(scope="module")
def exported(trial_dir, tmp_path_factory):
    return export.export_trial(trial_dir, tmp_path_factory.mktemp("exports") / "model", metrics={"note": 1.0})


@pytest.fixture(scope="module")
def reloaded(exported):
    return inference.load(exported.path).saved_model


def test_reloaded_saved_model_gives_the_keras_probabilities(trial_dir, reloaded):
    trial = export.load_trial(trial_dir)
    clips = _clips(7)
    keras_probabilities = trial.model(clips.waveforms, training=False)  # the front-end is its first layer
    served = reloaded.signatures["serving_default"](waveform=tf.constant(clips.waveforms))
    assert served["probabilities"].shape == (N_CLASSES, N_CLASSES)
    assert np.abs(served["probabilities"].numpy() - keras_probabilities.numpy()).max() < 1e-5
    assert served["class_id"].dtype == tf.int64
    np.testing.assert_array_equal(served["class_id"].numpy(), served["probabilities"].numpy().argmax(axis=1))
    assert [name.decode() for name in served["class_name"].numpy()] == [CLASS_NAMES[i] for i in served["class_id"]]
    assert np.mean(served["class_id"].numpy() == clips.labels) >= 3 / N_CLASSES  # learnt: 3x chance, not 100%


def test_serve_bytes_agrees_with_serving_default(reloaded, tmp_path):
    clips = _clips(8)
    files = [write_wav(tmp_path / f"{i}.wav", clip).read_bytes() for i, clip in enumerate(clips.waveforms)]
    from_bytes = reloaded.signatures["serve_bytes"](audio=tf.constant(files))
    from_waveforms = reloaded.signatures["serving_default"](waveform=tf.constant(clips.waveforms))
    assert np.abs(from_bytes["probabilities"].numpy() - from_waveforms["probabilities"].numpy()).max() < 1e-3
    np.testing.assert_array_equal(from_bytes["class_id"].numpy(), from_waveforms["class_id"].numpy())
    np.testing.assert_array_equal(from_bytes["class_name"].numpy(), from_waveforms["class_name"].numpy())


def test_metadata_is_complete(exported, trial_dir):
    written = json.loads((exported.path / export.METADATA).read_text())
    assert written == exported.metadata
    trial = export.load_trial(trial_dir)
    counts = configured.sizes(trial.space, trial.values, N_CLASSES)
    assert written["class_names"] == CLASS_NAMES
    assert written["hyperparameters"] == trial.values and written["model"] == "cnn2d"
    assert written["frontend"] == dataclasses.asdict(frontend.FrontendConfig())
    assert written["params"] == counts["params_total"] == trial.model.count_params() == 98_424
    assert written["param_counts"] == counts
    assert written["metrics"]["params_total"] == counts["params_total"] and written["metrics"]["note"] == 1.0
    observations = json.loads((trial_dir / "trial.json").read_text())["metrics"]["metrics"]
    assert written["metrics"]["val_accuracy"] == observations["val_accuracy"]["observations"][-1]["value"][0]
    assert written["mlflow_run_id"] is None
    assert (written["tensorflow_version"], written["tuner_app_version"]) == (tf.__version__, tuner_app.__version__)
    assert written["trial_dir"] == str(trial_dir.resolve()) and written["created"].endswith("+00:00")


def test_a_failed_export_leaves_nothing_behind(trial_dir, tmp_path, monkeypatch):
    def fail(module, directory):
        (directory / "half-written").write_text("x")
        raise OSError("disk full")

    monkeypatch.setattr(export, "save_module", fail)
    with pytest.raises(OSError, match="disk full"):
        export.export_trial(trial_dir, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_an_existing_directory_is_refused_unless_forced(trial_dir, tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(TunerAppError, match=f"{out}: already exists; use --force"):
        export.export_trial(trial_dir, out)
    assert (out / "old.txt").exists()
    with pytest.raises(TunerAppError, match=f"--out {out}: not an earlier export \\(holds old.txt\\)"):
        export.export_trial(trial_dir, out, force=True)  # --force replaces only an export (test_never_delete.py)
    (out / "old.txt").unlink()
    export.export_trial(trial_dir, out, force=True, run_id="abc123")  # an empty folder is nothing to lose
    assert (out / "saved_model.pb").exists()
    assert json.loads((out / export.METADATA).read_text())["mlflow_run_id"] == "abc123"
    assert [path.name for path in tmp_path.iterdir()] == ["model"]  # no temporary or set-aside directory


def test_missing_or_corrupt_trial_files_are_named(trial_dir, tmp_path):
    broken = tmp_path / "runs" / "project" / "trial_9"
    broken.mkdir(parents=True)
    with pytest.raises(TunerAppError, match=r"trial_9: not a trial directory \(no trial.json\)"):
        export.export_trial(broken, tmp_path / "out")
    (broken / "trial.json").write_text("{not json")
    with pytest.raises(TunerAppError, match="tuner_app_search.json: cannot read the search record"):
        export.export_trial(broken, tmp_path / "out")
    (broken.parent / "tuner_app_search.json").write_text((trial_dir.parent / "tuner_app_search.json").read_text())
    with pytest.raises(TunerAppError, match="trial_9/trial.json: cannot read the keras-tuner trial"):
        export.export_trial(broken, tmp_path / "out")
    (broken / "trial.json").write_text((trial_dir / "trial.json").read_text())
    with pytest.raises(TunerAppError, match="trial_9/checkpoint.weights.h5: no trained weights"):
        export.export_trial(broken, tmp_path / "out")
    (broken / "checkpoint.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(TunerAppError, match="trial_9/checkpoint.weights.h5: cannot load the weights"):
        export.export_trial(broken, tmp_path / "out")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["runs"]  # no "out"


def test_tflite_float_and_int8(trial_dir, reloaded, tmp_path):
    check = _clips(9)
    result = export.export_trial(trial_dir, tmp_path / "model", quantize="int8",
                                 representative=_clips(1, 2).waveforms, check=(check.waveforms, check.labels))
    float_file, int8_file = tmp_path / "model" / "model.tflite", tmp_path / "model" / "model_int8.tflite"
    assert result.tflite["float"]["path"] == float_file and result.tflite["int8"]["path"] == int8_file
    assert result.tflite["float"]["bytes"] == float_file.stat().st_size > 0
    assert result.tflite["int8"]["bytes"] == int8_file.stat().st_size > 0
    from tuner_app.device.tflite import tflite_probabilities

    served = reloaded.signatures["serving_default"](waveform=tf.constant(check.waveforms[:4]))["probabilities"]
    np.testing.assert_allclose(tflite_probabilities(float_file.read_bytes(), check.waveforms[:4]), served, atol=1e-4)
    assert "CONV_2D" in result.tflite["int8"]["ops"]["int8"] and "CONV_2D" in result.tflite["float"]["ops"]["float32"]
    assert "int8 ops: " in result.quantization and "RFFT2D" in result.quantization  # the STFT stays float
    assert "LOG" in result.tflite["int8"]["ops"]["float32"]  # so does the rest of the front-end
    # Each score is that model's own predictions against the check labels, whatever the training reached.
    served_ids = reloaded.signatures["serving_default"](waveform=tf.constant(check.waveforms))["class_id"]
    predicted = {"saved_model": served_ids,
                 "tflite": tflite_probabilities(float_file.read_bytes(), check.waveforms).argmax(axis=1),
                 "tflite_int8": tflite_probabilities(int8_file.read_bytes(), check.waveforms).argmax(axis=1)}
    scores = {kind: float(np.mean(np.asarray(ids) == check.labels)) for kind, ids in predicted.items()}
    assert {key: result.accuracy[key] for key in ("clips", *scores)} == {"clips": N_CLASSES, **scores}
    assert set(result.accuracy) == {"clips", *scores, "tflite_int8_features", "tflm_int8_features"}
    assert result.metadata["tflite"]["int8"]["bytes"] == int8_file.stat().st_size


def test_cli_export_prints_what_it_wrote_and_refuses_to_overwrite(trial_dir, tmp_path):
    out = tmp_path / "model"
    result = CliRunner().invoke(cli, ["export", "--out", str(out), "--trial-dir", str(trial_dir)])
    assert result.exit_code == 0, result.output
    assert f"Wrote {out}: cnn2d, 98,424 params" in result.output
    again = CliRunner().invoke(cli, ["export", "--out", str(out), "--trial-dir", str(trial_dir)])
    assert again.exit_code == 2 and f"{out}: already exists" in again.output
    both = CliRunner().invoke(cli, ["export", "--out", str(tmp_path / "m2"), "--trial-dir", str(trial_dir),
                                    "--select", "best"])
    assert both.exit_code == 2 and "give exactly one of --trial-dir, --run-id, --select (got --trial-dir, --select)" in both.output
    register = CliRunner().invoke(cli, ["export", "--out", str(tmp_path / "m3"), "--trial-dir", str(trial_dir),
                                        "--register", "kws"])
    assert register.exit_code == 2 and "--register needs the trial's MLflow run" in register.output
    assert not (tmp_path / "m3").exists()
