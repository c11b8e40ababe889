"""Bad input, fed on purpose to the real command line: every case ends in one `Error: ...` line on stderr that
names the file, folder or key at fault, with the documented exit code (2; `predict` answers the files it can
and exits 1), never a traceback. Also the security rules: the UI warns when it is exposed beyond this machine,
and no module loads YAML unsafely or unpickles anything.

Already covered elsewhere, not repeated here: the wording of each search-space error (test_spaces.py), a
nonexistent corpus path (test_cli.py::test_missing_path_is_one_line_not_a_traceback for `data prepare`,
test_corpus.py::test_cli_errors_are_one_line for `data stats`), the reason each bad clip is skipped with when
not --strict (test_cache_robustness.py::test_every_skipped_file_is_named_with_its_own_reason), a missing audio
file given to `predict` (test_inference.py::test_cli_predict_exit_code_and_formats).

A model is never trained or exported here: the file cases happen before the model sees anything, so `predict`
runs on a stub in place of the loaded export.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import cli_error_line, tone, write_wav

from tuner_app.cli import cli
from tuner_app.constants import CLIP_SAMPLES, SAMPLE_RATE
from tuner_app.serving import inference

PACKAGE = Path(__file__).resolve().parent.parent / "tuner_app"


def _invoke(*args):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def assert_one_line_error(result, *culprits, exit_code: int = 2) -> str:
    """The command failed with `exit_code` through its own error handling: stderr is one `Error: ` line naming
    every culprit."""
    line = cli_error_line(result, exit_code, alone=True)
    for culprit in culprits:
        assert str(culprit) in line
    return line


# --- search spaces: `search --space FILE --dry-run` -------------------------------------------------------

SPACES = {
    "malformed.yaml": ("model: cnn2d\nhyperparameters:\n  conv_layers: {type: int, min_value: 1\n",
                       "malformed YAML at line 4"),
    "unknown_key.yaml": ("model: cnn2d\nfrontend: {kind: stft}\noptimiser: adam\n", "optimiser: unknown key"),
    "wrong_type.yaml": ("hyperparameters:\n  conv_layers: {type: int, min_value: 1, max_value: four}\n",
                        "hyperparameters.conv_layers.max_value: expected int, got 'four'"),
    "empty_range.yaml": ("hyperparameters:\n  conv_layers: {type: int, min_value: 4, max_value: 1}\n",
                         "hyperparameters.conv_layers: empty range"),
    # Loaded safely: a Python tag is refused by yaml.safe_load, never constructed (here: never run).
    "python_tag.yaml": ("!!python/object/apply:os.system ['echo owned']\n", "could not determine a constructor"),
    "empty.yaml": ("# nothing but a comment\n", "empty search space"),  # not a search of every default
    "binary.yaml": (b"\x00\xff\xfe not text", "not a YAML text file (byte 1 is not UTF-8)"),
}


@pytest.mark.parametrize("name", SPACES)
def test_a_bad_search_space_is_one_line_naming_the_file_and_key(name, tmp_path):
    content, fragment = SPACES[name]
    path = tmp_path / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    assert_one_line_error(_invoke("search", "--space", path, "--dry-run"), name, fragment)


@pytest.mark.parametrize("uri", ["foo://bar", "relative/folder"])
def test_a_tracking_uri_mlflow_cannot_use_is_named(uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _invoke("pareto", "--tracking-uri", uri)
    assert_one_line_error(result, f"MLflow store {uri}: MLflow cannot use it", "sqlite:///PATH")


def test_a_folder_that_is_not_a_trial_is_named_by_export(tmp_path):
    (tmp_path / "runs" / "p" / "notes").mkdir(parents=True)
    result = _invoke("export", "--trial-dir", tmp_path / "runs" / "p" / "notes", "--out", tmp_path / "out")
    assert_one_line_error(result, tmp_path / "runs" / "p" / "notes", "not a trial directory (no trial.json)")


def test_a_file_where_a_folder_belongs_is_named_without_a_wrong_remedy(tmp_path):
    root = _corpus(tmp_path / "corpus", "yes/a_nohash_0.wav", "no/b_nohash_0.wav")
    (tmp_path / "cache").write_text("a file, not a folder")
    result = _invoke("data", "prepare", "--data", root, "--classes", "yes,no", "--cache-dir", tmp_path / "cache")
    line = assert_one_line_error(result, tmp_path / "cache", "Not a directory; choose another --cache-dir")
    assert "free space" not in line and "writable" not in line


# --- corpora: `data stats DIR`, `data prepare --data DIR --strict` -----------------------------------------

def _corpus(root: Path, *files: str) -> Path:
    for name in files:
        write_wav(root / name, tone())
    return root


def test_an_empty_data_directory_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(_invoke("data", "stats", tmp_path / "empty"), tmp_path / "empty", "no class folders")


def test_a_class_with_no_clips_is_named(tmp_path):
    root = _corpus(tmp_path / "corpus", "yes/a_nohash_0.wav")
    (root / "no").mkdir()
    result = _invoke("data", "stats", root, "--classes", "yes,no")
    assert_one_line_error(result, root, "no folder with audio for class 'no'")


def test_a_split_list_naming_no_present_file_is_named(tmp_path):
    # It used to leave its split empty without a word; a search then had nothing to validate on.
    root = _corpus(tmp_path / "corpus", "yes/a_nohash_0.wav", "no/b_nohash_0.wav")
    (root / "validation_list.txt").write_text("yes/a_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("left/c_nohash_0.wav\nright/d_nohash_0.wav\n")
    result = _invoke("data", "prepare", "--data", root, "--classes", "yes,no", "--strict",
                     "--cache-dir", tmp_path / "cache")
    assert_one_line_error(result, root / "testing_list.txt", "names no audio file", "'left/c_nohash_0.wav'")


def _bad_wavs(folder: Path) -> dict[str, Path]:
    """A .wav-named file of every broken kind: {kind: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {kind: folder / f"{kind}.wav" for kind in ("truncated", "zero_length", "text", "nan", "inf")}
    whole = write_wav(folder / "whole.wav", tone()).read_bytes()
    files["truncated"].write_bytes(whole[:5000])  # the data chunk promises 16000 bytes
    files["zero_length"].write_bytes(b"")
    files["text"].write_text("hello, I am not audio")
    for kind, value in (("nan", np.nan), ("inf", np.inf)):
        samples = tone()
        samples[100] = value
        write_wav(files[kind], samples, bits=32, float_format=True)
    (folder / "whole.wav").unlink()
    return files


def test_prepare_strict_names_every_broken_clip_on_one_line(tmp_path):
    root = _corpus(tmp_path / "corpus", "yes/a_nohash_0.wav", "no/b_nohash_0.wav")
    bad = _bad_wavs(root / "no")
    result = _invoke("data", "prepare", "--data", root, "--classes", "yes,no", "--strict",
                     "--cache-dir", tmp_path / "cache")
    line = assert_one_line_error(result, "5 unreadable, empty or corrupt file(s)", *bad.values())
    assert line.count("NaN or infinite samples") == 2 and "truncated WAV" in line


# --- audio given to `predict` -------------------------------------------------------------------------------

class _RecordingModel:
    """Stands in for a loaded export: keeps the waveforms it is given and answers class a."""

    class_names = ("a", "b")

    def __init__(self):
        self.waveforms: list[np.ndarray] = []

    def probabilities(self, waveforms):
        self.waveforms.append(np.array(waveforms))
        return np.tile([0.75, 0.25], (len(waveforms), 1))


@pytest.fixture
def stub_model(monkeypatch) -> _RecordingModel:
    model = _RecordingModel()
    monkeypatch.setattr(inference, "load", lambda path, runtime="saved_model": model)
    return model


PREDICT_REASONS = {
    "truncated": "truncated WAV (data chunk of 16000 bytes, 4956 in the file)",  # what `data prepare` says
    "zero_length": "unreadable audio (not WAV, FLAC, Ogg Vorbis or MP3 audio)",
    "text": "unreadable audio (not WAV, FLAC, Ogg Vorbis or MP3 audio)",
    "nan": "NaN or infinite samples",
    "inf": "NaN or infinite samples",
}


def test_predict_names_each_broken_file_and_answers_nothing_for_it(stub_model, tmp_path):
    for kind, path in _bad_wavs(tmp_path).items():
        result = _invoke("predict", "model", path)
        assert_one_line_error(result, f"Error: {path}: {PREDICT_REASONS[kind]}", exit_code=1)
        assert result.stdout == ""
    assert stub_model.waveforms == []  # a NaN clip never reached the model


def _write_int16_wav(path: Path, samples: np.ndarray) -> Path:
    """16 kHz mono int16 WAV straight from numpy: a 10-minute file (19 MB) in a few milliseconds."""
    raw = samples.astype("<i2").tobytes()
    header = np.array([1, 1], "<u2").tobytes() + np.array([SAMPLE_RATE, 2 * SAMPLE_RATE], "<u4").tobytes()
    fmt = header + np.array([2, 16], "<u2").tobytes()
    body = b"WAVEfmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" + len(raw).to_bytes(4, "little") + raw
    path.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    return path


def test_a_ten_minute_file_is_answered_on_its_first_second(stub_model, tmp_path):
    # Decided, as audio.read does for every clip: the first second counts, the rest is not read into the model.
    samples = np.random.default_rng(0).integers(-3000, 3000, 600 * SAMPLE_RATE).astype(np.int16)
    path = _write_int16_wav(tmp_path / "ten_minutes.wav", samples)
    result = _invoke("predict", "model", path)
    assert result.exit_code == 0 and result.stdout == f"{path}: a 0.750, b 0.250\n", result.output
    (seen,) = stub_model.waveforms
    np.testing.assert_array_equal(seen[0], samples[:CLIP_SAMPLES] / 32768.0)


def test_a_one_sample_file_is_answered_padded_with_silence(stub_model, tmp_path):
    path = _write_int16_wav(tmp_path / "one_sample.wav", np.array([16384], np.int16))
    result = _invoke("predict", "model", path)
    assert result.exit_code == 0, result.output
    (seen,) = stub_model.waveforms
    assert seen.shape == (1, CLIP_SAMPLES) and seen[0, 0] == 0.5 and not seen[0, 1:].any()


# --- model directories that are not a model -------------------------------------------------------------

def _not_a_model(tmp_path: Path) -> dict[str, tuple[Path, str, str]]:
    """{case: (directory, what predict says, what visualize and activations say)}."""
    empty = tmp_path / "empty"
    empty.mkdir()
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "tuner_app.json").write_text('{"class_names": ["a", "b"]}')
    (garbage / "saved_model.pb").write_bytes(b"\x00\xffnot a protocol buffer")
    return {"empty": (empty, "not a tuner-app export", "neither a tuner-app export"),
            "garbage": (garbage, "cannot load the SavedModel", "it names no trial")}


def test_a_directory_that_is_not_a_model_is_named_by_every_command(tmp_path):
    clip = write_wav(tmp_path / "clip.wav", tone())
    for directory, predict_says, inspect_says in _not_a_model(tmp_path).values():
        assert_one_line_error(_invoke("predict", directory, clip), directory, predict_says)
        result = _invoke("visualize", directory, "--input", clip, "--out", tmp_path / "figures")
        assert_one_line_error(result, directory, inspect_says)
        result = _invoke("activations", directory, "--stimuli", tmp_path, "--out", tmp_path / "layers.npz")
        assert_one_line_error(result, directory, inspect_says)
    assert not (tmp_path / "figures").exists() and not (tmp_path / "layers.npz").exists()


# --- security -----------------------------------------------------------------------------------------------

@pytest.fixture
def no_server(monkeypatch):
    """`tuner-app ui` up to the point where it would start the MLflow server, which it then does not."""
    from tuner_app.tracking import ui as mlflow_ui

    served = []
    monkeypatch.setattr(mlflow_ui, "check_port_free", lambda host, port: None)
    monkeypatch.setattr(mlflow_ui, "prepare_runs_view", lambda uri, experiment, create: "1")
    monkeypatch.setattr(mlflow_ui, "serve_ui", lambda command, *rest: served.append(command) or 0)
    return served


def test_the_ui_binds_to_localhost_and_warns_once_when_told_otherwise(no_server):
    local = _invoke("ui", "--no-open", "--port", 5999)
    assert local.exit_code == 0 and "Warning" not in local.output, local.output
    exposed = _invoke("ui", "--no-open", "--port", 5999, "--host", "0.0.0.0")
    assert exposed.exit_code == 0, exposed.output
    warnings = [line for line in exposed.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "--host 0.0.0.0 exposes the MLflow UI" in warnings[0]
    hosts = [command[command.index("--host") + 1] for command in no_server]
    assert hosts == ["127.0.0.1", "0.0.0.0"]


UNSAFE_LOADS = re.compile(r"yaml\.load\(|yaml\.unsafe_load|yaml\.full_load|pickle\.loads?\(|allow_pickle=True|"
                          r"safe_mode=False|keras\.models\.load_model\(")


def test_no_module_loads_yaml_unsafely_or_unpickles():
    # Models load through tf.saved_model.load or Keras weights files (keras.weights.h5), never a pickle.
    found = [f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
             for path in sorted(PACKAGE.rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if UNSAFE_LOADS.search(line)]
    assert found == []
    import yaml

    from tuner_app.model.space.bounded_yaml import BoundedLoader

    assert issubclass(BoundedLoader, yaml.SafeLoader)  # what reads space files


# --- leftovers: a header-only WAV, and visualize's --input --------------------------------------------------

def test_predict_names_a_wav_that_is_only_a_header(stub_model, tmp_path):
    # A recorder's placeholder: 44 bytes whose format fields were never filled in, and no data after them.
    path = tmp_path / "clip.wav"
    path.write_bytes(b"RIFF" + (36).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little") + bytes(16)
                     + b"data" + bytes(4))
    result = _invoke("predict", "model", path)
    assert_one_line_error(result, f"Error: {path}: no audio samples (header only)", exit_code=1)
    assert stub_model.waveforms == []


def test_visualize_refuses_a_truncated_input_as_predict_does(tmp_path):
    truncated = _bad_wavs(tmp_path / "clips")["truncated"]
    result = _invoke("visualize", tmp_path / "no_model", "--input", truncated, "--out", tmp_path / "figures")
    assert_one_line_error(result, f"Error: {truncated}: {PREDICT_REASONS['truncated']}")
    assert not (tmp_path / "figures").exists()
