"""Smaller defects: the export's default corpus, the knee of identical points, a fixed hypervolume reference,
the dry run's class count, MP3 in the corpus scan."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import cli_error_line, copy_trial, tone, write_wav

from tuner_app.analysis import front_table, pareto_report
from tuner_app.cli import cli, search_commands
from tuner_app.data import corpus, synth
from tuner_app.errors import ConversionError, TunerAppError
from tuner_app.model.architecture import configured
from tuner_app.model.space import search_space
from tuner_app.search import pareto_geometry, record

SPACES = Path(__file__).resolve().parents[1] / "search_spaces"


# --- export: calibrate and check on the search's own corpus -------------------------------------------


def _tone_corpus(root: Path, words=corpus.SEED_WORDS) -> Path:
    """One clip per word and split, the tone of each class (as test_export's trial learnt), listed splits."""
    lists = {"validation": [], "test": []}
    for label, word in enumerate(words):
        for split in ("train", "validation", "test"):
            name = f"{word}/{split[:3]}{label}_nohash_0.wav"
            write_wav(root / name, 0.3 * np.sin(2 * np.pi * (200 + 150 * label) * np.arange(16000) / 16000))
            lists.get(split, []).append(name)
    (root / "validation_list.txt").write_text("\n".join(lists["validation"]) + "\n")
    (root / "testing_list.txt").write_text("\n".join(lists["test"]) + "\n")
    return root


@pytest.fixture(scope="module")
def trained(tiny_trial_dir, tmp_path_factory):
    return copy_trial(tiny_trial_dir, tmp_path_factory.mktemp("runs"))  # the tests rewrite its search record


def _record_corpus(trial_dir: Path, data_path: Path) -> None:
    project = trial_dir.parent
    saved = record.read_search_record(project)
    saved["data"] = {"path": str(data_path)}
    (project / record.SEARCH_RECORD).write_text(json.dumps(saved))


@pytest.fixture
def no_synthesis(monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("the built-in corpus was used")

    monkeypatch.setattr(synth, "default_corpus", must_not_run)


def test_export_calibrates_on_the_searched_corpus_by_default(trained, tmp_path, no_synthesis):
    data = _tone_corpus(tmp_path / "tones")
    _record_corpus(trained, data)
    args = ["export", "--out", str(tmp_path / "model"), "--trial-dir", str(trained), "--quantize", "int8",
            "--cache-dir", str(tmp_path / "cache")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"corpus {data}" in result.output and (tmp_path / "model" / "model_int8.tflite").is_file()


def test_a_corpus_with_no_training_clips_to_calibrate_int8_on_is_one_line(trained, tmp_path, no_synthesis):
    data = _tone_corpus(tmp_path / "tones")
    for clip in data.glob("*/tra*.wav"):
        clip.unlink()  # validation and test clips only
    args = ["export", "--out", str(tmp_path / "model"), "--trial-dir", str(trained), "--quantize", "int8",
            "--data", str(data), "--cache-dir", str(tmp_path / "cache")]
    line = cli_error_line(CliRunner().invoke(cli, args))
    assert f"{data}: no training clips to calibrate --quantize int8 on" in line and not (tmp_path / "model").exists()


def test_an_op_tflite_has_no_kernel_for_is_named_in_one_line():
    import tensorflow as tf

    from tuner_app.device import tflite

    function = tf.function(lambda x: tf.linalg.svd(x)[0]).get_concrete_function(tf.TensorSpec([1, 4, 4]))
    with pytest.raises(ConversionError) as raised:
        tflite.convert_function(function, lambda converter: converter.convert())
    assert str(raised.value) == "TFLite conversion failed: TFLite has no kernel for tf.Svd (an op the model uses)"


def test_a_model_that_does_not_convert_is_one_line_naming_its_trial(trained, tmp_path, no_synthesis, monkeypatch):
    from tuner_app.device import tflite

    def refuses(*args):
        raise ConversionError("TFLite conversion failed: TFLite has no kernel for tf.Svd (an op the model uses)")

    monkeypatch.setattr(tflite, "write_tflite", refuses)
    _record_corpus(trained, _tone_corpus(tmp_path / "tones"))
    args = ["export", "--out", str(tmp_path / "model"), "--trial-dir", str(trained), "--tflite",
            "--cache-dir", str(tmp_path / "cache")]
    line = cli_error_line(CliRunner().invoke(cli, args))
    assert line.endswith(f"{trained}: TFLite conversion failed: TFLite has no kernel for tf.Svd (an op the model uses)")
    assert not (tmp_path / "model").exists()


def test_export_without_the_searched_corpus_asks_for_data(trained, tmp_path, no_synthesis):
    _record_corpus(trained, tmp_path / "gone")
    args = ["export", "--out", str(tmp_path / "model"), "--trial-dir", str(trained), "--tflite",
            "--cache-dir", str(tmp_path / "cache")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().count("\n") == 0
    assert str(tmp_path / "gone") in result.output and "--data" in result.output
    assert not (tmp_path / "model").exists()


# --- knee ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("points", [[(100.0, 0.5)] * 3, [(100.0, 0.5)] * 5])
def test_knee_of_identical_points_is_the_first(points):
    assert pareto_geometry.knee(points) == 0


def test_select_knee_among_identical_trials():
    rows = [{"run_id": name, "status": "FINISHED", "metrics": {"params_total": 500.0, "best_val_accuracy": 0.7}}
            for name in "abc"]
    assert pareto_report.select(rows, "knee")["run_id"] == "a"


# --- a fixed hypervolume reference --------------------------------------------------------------------


def _rows(sizes_accuracies=((10, 0.5), (100, 0.7), (1000, 0.9))):
    return [{"run_id": f"r{i}", "trial_id": str(i), "status": "FINISHED", "model": "cnn2d", "hyperparameters": {},
             "metrics": {"params_total": float(size), "best_val_accuracy": accuracy}}
            for i, (size, accuracy) in enumerate(sizes_accuracies)]


def test_analyse_uses_and_records_a_given_reference(tmp_path):
    analysis = pareto_report.analyse(_rows(), tmp_path, hv_reference=(100_000.0, 0.1))
    assert analysis.reference_point == (100_000.0, 0.1)
    # log10 sizes 1, 2, 3 against 5: 4 * 0.4 + 3 * 0.2 + 2 * 0.2
    assert analysis.hypervolume == pytest.approx(2.6)
    saved = json.loads(analysis.json_path.read_text())
    assert saved["hv_reference"] == [100_000.0, 0.1] and saved["hv_reference_source"] == "--hv-reference"
    assert saved["hypervolume"] == pytest.approx(2.6)
    assert "--hv-reference" in front_table.format_table(analysis)


@pytest.mark.parametrize("x", ["params_total", "macs"])
def test_the_default_reference_is_fixed_per_axis_and_recorded_as_such(tmp_path, x):
    rows = _rows()
    for row in rows:
        row["metrics"]["macs"] = row["metrics"]["params_total"] * 100
    analysis = pareto_report.analyse(rows, tmp_path, x=x)
    saved = json.loads(analysis.json_path.read_text())
    assert saved["hv_reference"] == list(search_space.HV_REFERENCES[x]) and "default" in saved["hv_reference_source"]
    assert "default" in front_table.format_table(analysis).splitlines()[-1]
    # it does not move with the trials: a bigger trial leaves the reference where it was
    bigger = pareto_report.analyse([*rows, *_rows([(10**6, 0.2)])], tmp_path / "b", x=x)
    assert bigger.reference_point == analysis.reference_point


def _log_trials(tracking_uri: str) -> str:
    """A parent run and three finished trial runs, as a search leaves them; returns the parent's id."""
    import mlflow

    from tuner_app.tracking.store import PARENT_TAG
    from tuner_app.tracking.tracker import PROJECT_TAG

    client = mlflow.MlflowClient(tracking_uri)
    experiment = client.create_experiment("tuner-app")
    parent = client.create_run(experiment, tags={PROJECT_TAG: "runs/p"}).info.run_id
    for row in _rows():
        run = client.create_run(experiment, tags={PARENT_TAG: parent, "trial_id": row["trial_id"], "model": "cnn2d"})
        for name, value in row["metrics"].items():
            client.log_metric(run.info.run_id, name, value)
        client.set_terminated(run.info.run_id, "FINISHED")
    return parent


def test_cli_pareto_records_the_reference_on_the_parent_run(tmp_path, new_store):
    import mlflow

    uri = new_store(tmp_path / "store.db")
    parent = _log_trials(uri)
    result = CliRunner().invoke(cli, ["pareto", "--tracking-uri", uri, "--out", str(tmp_path / "out"),
                                      "--hv-reference", "1e5,0.1"])
    assert result.exit_code == 0, result.output
    assert "hypervolume 2.6000" in result.output and "params_total=100,000" in result.output
    run = mlflow.MlflowClient(uri).get_run(parent)
    assert run.data.tags["hv_reference"] == "100000,0.1" and run.data.tags["hv_axis"] == "params_total"
    assert run.data.metrics["hypervolume"] == pytest.approx(2.6)
    assert json.loads((tmp_path / "out" / "pareto.json").read_text())["hv_reference"] == [100_000.0, 0.1]


@pytest.mark.parametrize("text", ["abc", "1e5", "1e5,0.1,3", "0,0.1", "-5,0.1", "1e5,nan", "1e5,1.5", "inf,0"])
def test_a_malformed_hv_reference_is_one_line_naming_the_option(text, tmp_path):
    for command in (["pareto"], ["search", "--dry-run", "--space", "smoke"]):
        result = CliRunner().invoke(cli, [*command, "--hv-reference", text, "--tracking-uri",
                                          f"sqlite:///{tmp_path}/store.db"])
        assert result.exit_code == 2, result.output
        assert "--hv-reference" in result.output and result.output.strip().count("\n") == 0


def test_search_passes_its_hv_reference_to_the_analysis(tmp_path, monkeypatch, new_store):
    uri = new_store(tmp_path / "store.db")
    parent = _log_trials(uri)

    class Tracker:
        tracking_uri, parent_run_id = uri, parent

        def check_reachable(self):
            pass

    monkeypatch.setattr(search_commands, "_tracker", lambda *args: Tracker())
    monkeypatch.setattr(search_commands, "_run_search",
                        lambda *args: ([{"status": "COMPLETED"}], tmp_path / "runs" / "p", False))
    monkeypatch.setattr("tuner_app.search.summary.format_trials", lambda rows: "table")
    result = CliRunner().invoke(cli, ["search", "--space", "smoke", "--hv-reference", "1e5,0.1"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "runs" / "p" / "pareto" / "pareto.json").read_text())["hv_reference"] == [
        100_000.0, 0.1]
    space_file = tmp_path / "own.yaml"
    space_file.write_text((SPACES / "smoke.yaml").read_text() + "\nobjective: {hv_reference: [2.0e5, 0.05]}\n")
    result = CliRunner().invoke(cli, ["search", "--space", str(space_file)])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "runs" / "p" / "pareto" / "pareto.json").read_text())
    assert saved["hv_reference"] == [200_000.0, 0.05] and "own.yaml" in saved["hv_reference_source"]


def test_cli_pareto_of_one_search_reuses_the_reference_it_recorded(tmp_path, new_store):
    uri = new_store(tmp_path / "store.db")
    parent = _log_trials(uri)
    first = CliRunner().invoke(cli, ["pareto", "--tracking-uri", uri, "--out", str(tmp_path / "a"),
                                     "--hv-reference", "1e5,0.1"])
    again = CliRunner().invoke(cli, ["pareto", "--tracking-uri", uri, "--out", str(tmp_path / "b"),
                                     "--parent", parent])
    assert first.exit_code == again.exit_code == 0, again.output
    saved = json.loads((tmp_path / "b" / "pareto.json").read_text())
    assert saved["hv_reference"] == [100_000.0, 0.1] and "recorded" in saved["hv_reference_source"]


# --- the dry run's class count ------------------------------------------------------------------------


def test_dry_run_counts_for_the_classes_of_the_corpus(tmp_path):
    words = corpus.SEED_WORDS[:10]
    data = tmp_path / "digits"
    for word in words:
        write_wav(data / word / "spk0_nohash_0.wav", tone())
    space_file = SPACES / "seed_2d.yaml"
    result = CliRunner().invoke(cli, ["search", "--space", str(space_file), "--dry-run", "--format", "json",
                                      "--data", str(data)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    space = search_space.load(space_file)
    feasible = [row for row in rows if row["params"] is not None]
    for row in feasible[:3]:
        assert row["params"] == configured.sizes(space, row["hyperparameters"], 10)["params_total"]
        assert row["params"] != configured.sizes(space, row["hyperparameters"], 16)["params_total"]
    assert "10 classes" in result.stderr and str(data) in result.stderr


def test_dry_run_without_data_says_it_assumes_sixteen_classes():
    result = CliRunner().invoke(cli, ["search", "--space", "smoke", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "16 classes" in result.stderr


# --- MP3 in the corpus scan ---------------------------------------------------------------------------


def test_scan_finds_mp3_files(tmp_path):
    write_wav(tmp_path / "cat" / "a_nohash_0.wav", tone())
    (tmp_path / "cat" / "b_nohash_0.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00 an mp3")
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "c_nohash_0.MP3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00 an mp3")
    found = corpus.scan(tmp_path)
    assert sorted(clip.path.name for clip in found.clips) == ["a_nohash_0.wav", "b_nohash_0.mp3", "c_nohash_0.MP3"]
    assert found.classes == ("cat", "dog")


def test_a_bad_hv_reference_in_the_library_is_refused(tmp_path):
    with pytest.raises(TunerAppError, match="reference"):
        pareto_report.analyse(_rows(), tmp_path, hv_reference=(0.0, 0.1))
