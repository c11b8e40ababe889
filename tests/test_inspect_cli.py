"""`tuner-app visualize`, `activations` and `compare-rdms` end to end on an exported model and on a trial
named by its MLflow run: what they write, what they print, and one-line refusals."""

import json

import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner
from conftest import tone, write_wav

from tuner_app.cli import cli
from tuner_app.tracking import runs


@pytest.fixture(scope="module")
def exported(tiny_export):
    return tiny_export  # conftest's: read here, never written


@pytest.fixture(scope="module")
def stimulus_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stimuli")
    for index, freq in enumerate([300, 700, 1500, 3000, 5000]):
        write_wav(folder / f"s{index}.wav", tone(0.8, freq=freq, amplitude=0.3))
    return folder


def _invoke(*args):
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def test_visualize_writes_the_figures_and_one_html_page(exported, stimulus_dir, tmp_path):
    result = _invoke("visualize", exported, "--input", stimulus_dir / "s1.wav", "--out", tmp_path / "figs",
                     "--class", "dog", "--format", "html")
    assert result.exit_code == 0, result.output
    written = result.stdout.split()
    assert written[0].endswith("filters.png") and written[-1].endswith("report.html")
    assert any(name.endswith("saliency_dog.png") for name in written) and any("sizes.png" in n for n in written)
    page = (tmp_path / "figs" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(written) - 1 and "cnn2d" in page


def test_activations_write_npz_mat_and_rdms_in_the_stimulus_order(exported, stimulus_dir, tmp_path):
    out = tmp_path / "acts.npz"
    result = _invoke("activations", exported, "--stimuli", stimulus_dir, "--out", out, "--rdm")
    assert result.exit_code == 0, result.output
    saved = np.load(out)
    assert saved["stimuli"].tolist() == [f"s{index}.wav" for index in range(5)]
    assert saved["layers"].tolist() == ["frontend", "b00_conv", "b01_pool", "b02_flatten", "b03_dense"]
    assert saved["b00_conv"].shape[0] == 5 and saved["rdm_b00_conv"].shape == (5, 5)
    assert json.loads(str(saved["metadata"]))["model"] == "cnn2d"
    matlab = scipy.io.loadmat(out.with_suffix(".mat"))
    np.testing.assert_array_equal(matlab["b00_conv"], saved["b00_conv"])
    for suffix in (".rdms.hdf5", ".rdms.png", ".rdm_similarity.png"):
        assert out.with_suffix(suffix).stat().st_size > 0
    again = _invoke("activations", exported, "--stimuli", stimulus_dir, "--out", out)
    assert again.exit_code == 2 and "already exists; use --force" in again.output


def test_compare_rdms_against_a_user_rdm_and_a_wrong_sized_one(exported, stimulus_dir, tmp_path):
    out = tmp_path / "acts.npz"
    assert _invoke("activations", exported, "--stimuli", stimulus_dir, "--out", out, "--rdm").exit_code == 0
    by_pitch = np.abs(np.subtract.outer(np.arange(5.0), np.arange(5.0)))  # a "brain" RDM: distance in pitch rank
    np.savetxt(tmp_path / "brain.csv", by_pitch, delimiter=",")
    result = _invoke("compare-rdms", out, tmp_path / "brain.csv", "--out", tmp_path / "cmp")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].split() == ["layer_a", "layer_b", "spearman"]
    table = [line.split(",") for line in (tmp_path / "cmp.csv").read_text().splitlines()[1:]]
    assert [row[0] for row in table] == ["frontend", "b00_conv", "b01_pool", "b02_flatten", "b03_dense"]
    assert float(table[0][2]) > 0.5  # the spectrogram orders the tones by pitch as the "brain" does
    assert (tmp_path / "cmp.png").stat().st_size > 0
    np.savetxt(tmp_path / "small.csv", by_pitch[:4, :4], delimiter=",")
    wrong = _invoke("compare-rdms", out, tmp_path / "small.csv")
    assert wrong.exit_code == 2 and "is 4x4, but there are 5 stimuli" in wrong.output
    assert len(wrong.output.strip().splitlines()) == 1


def test_a_trial_is_found_by_its_run_id_and_model_and_run_id_exclude_each_other(tiny_trial_dir, stimulus_dir,
                                                                               tmp_path, monkeypatch):
    row = {"trial_id": "0000", "outcome": "COMPLETED", "trial_dir": str(tiny_trial_dir)}
    monkeypatch.setattr(runs, "run_info", lambda uri, run_id: {**row, "run_id": run_id})
    result = _invoke("activations", "--run-id", "abc", "--stimuli", stimulus_dir, "--out", tmp_path / "a.npz",
                     "--layers", "b03_dense")
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "a.npz")["layers"].tolist() == ["b03_dense"]
    both = _invoke("activations", tiny_trial_dir, "--run-id", "abc", "--stimuli", stimulus_dir,
                   "--out", tmp_path / "b.npz")
    assert both.exit_code == 2 and "exactly one of MODEL" in both.output
