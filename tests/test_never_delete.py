"""tuner-app replaces only what it wrote itself, never writes an export into a search, corpus or MLflow store,
and leaves no staging or set-aside folder behind (issue 23)."""

import json
import os
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import cli_error_line, copy_trial, one_line_error

from tuner_app import files
from tuner_app.cli.root import cli
from tuner_app.serving import export


@pytest.fixture(scope="module")
def project(tiny_trial_dir, tmp_path_factory):
    """A private copy of the tiny trial's search (read, never changed here), with a second trial beside it."""
    # its own folder two levels up: "{project}/../.." holds nothing but these runs
    trial = copy_trial(tiny_trial_dir, tmp_path_factory.mktemp("never_delete") / "runs")
    (trial.parent / "trial_1").mkdir()
    (trial.parent / "trial_1" / "trial.json").write_text("{}")
    return trial.parent


@pytest.fixture(scope="module")
def earlier_export(project, tmp_path_factory):
    return export.export_trial(project / "trial_0", tmp_path_factory.mktemp("exports") / "model").path


def _leftovers(folder):
    return [path.name for path in folder.iterdir() if ".partial" in path.name or ".old-" in path.name]


def _user_folder(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("thesis.txt", "notes.txt", "data.csv"):
        (folder / name).write_text("precious")
    return folder


def test_force_refuses_a_folder_that_is_not_an_earlier_export(project, tmp_path):
    user = _user_folder(tmp_path / "userdir")
    message = one_line_error(lambda: export.export_trial(project / "trial_0", user, force=True),
                             f"--out {user}: not an earlier export (holds data.csv and 2 more)", "choose another --out")
    assert "tuner-app replaces only its own exports" in message
    assert sorted(path.name for path in user.iterdir()) == ["data.csv", "notes.txt", "thesis.txt"]
    assert _leftovers(tmp_path) == []


def test_force_replaces_an_earlier_export_only_and_leaves_nothing_beside_it(earlier_export, project, tmp_path):
    out = tmp_path / "model"
    shutil.copytree(earlier_export, out)
    (out / "thesis.txt").write_text("precious")
    one_line_error(lambda: export.export_trial(project / "trial_0", out, force=True),
                   f"--out {out}: an earlier export, but it also holds thesis.txt")
    assert (out / "thesis.txt").read_text() == "precious"
    (out / "thesis.txt").unlink()
    export.export_trial(project / "trial_0", out, force=True, run_id="again")
    assert json.loads((out / export.METADATA).read_text())["mlflow_run_id"] == "again"
    assert [path.name for path in tmp_path.iterdir()] == ["model"]


@pytest.mark.parametrize("where, reason", [
    ("{project}", "is a search"), ("{project}/trial_1", "is a trial"), ("{project}/trial_0", "is a trial"),
    ("{project}/trial_1/model", "inside a trial"), ("{project}/model", "inside a search"),
    ("{project}/..", "is a runs directory"), ("{project}/../new", "inside a runs directory"),
    ("{project}/../..", "holds a runs directory"),
])
def test_no_export_goes_into_a_search(project, where, reason):
    out = type(project)(where.format(project=project))
    before = sorted(path.relative_to(project) for path in project.rglob("*"))
    for force in (False, True):
        one_line_error(lambda: export.export_trial(project / "trial_0", out, force=force), f"--out {out}: {reason}")
    assert sorted(path.relative_to(project) for path in project.rglob("*")) == before


def test_no_export_goes_into_a_corpus_or_an_mlflow_store(project, tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "yes").mkdir(parents=True)
    (corpus / "yes" / "a.wav").write_bytes(b"RIFF")
    (corpus / "_background_noise_").mkdir()
    store = tmp_path / "store"
    store.mkdir()
    (tmp_path / "mlruns").mkdir()
    (store / "my.db").write_bytes(b"SQLite")
    cases = {corpus / "model": "inside a corpus", corpus / "yes" / "model": "inside a corpus class",
             tmp_path / "mlruns" / "model": "inside the MLflow store", store / "my.db": "is the MLflow store",
             store / "my.db" / "x": "inside the MLflow store"}
    for out, reason in cases.items():
        one_line_error(lambda: export.export_trial(project / "trial_0", out, force=True, stores=[store / "my.db"]),
                       f"--out {out}: {reason}")
    assert sorted(path.name for path in corpus.iterdir()) == ["_background_noise_", "yes"]


def test_a_sqlite_store_forbids_its_file_not_the_folder_around_it(project, tmp_path):
    store = tmp_path / "mlflow.db"  # MLflow's own docs' sqlite:///mlflow.db, in the user's project folder
    store.write_bytes(b"SQLite")
    out = tmp_path / "exports" / "model"
    export.export_trial(project / "trial_0", out, stores=[store])
    assert (out / export.METADATA).is_file() and store.read_bytes() == b"SQLite"


def test_the_current_home_and_root_folders_are_refused_before_anything_is_made(project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    for out, reason in ((".", "is the current folder"), ("..", "holds the current folder"), ("/", "is the root folder"),
                        (str(tmp_path / "home"), "is the home folder")):
        one_line_error(lambda: export.export_trial(project / "trial_0", out, force=True), f"--out {out}: {reason}")
    assert [path.name for path in tmp_path.iterdir()] == ["home"]


@pytest.mark.parametrize("failing", ["model", ".partial"])  # setting the earlier one aside, or the new one in
def test_a_failed_rename_keeps_the_earlier_export_and_leaves_nothing_beside_it(earlier_export, project, tmp_path,
                                                                            monkeypatch, failing):
    out = tmp_path / "model"
    shutil.copytree(earlier_export, out)
    created = (out / export.METADATA).read_text()
    real_rename = os.rename

    def failing_rename(source, target):
        if str(source).endswith(failing):
            raise OSError(28, "No space left on device")
        return real_rename(source, target)

    monkeypatch.setattr(files.os, "rename", failing_rename)
    one_line_error(lambda: export.export_trial(project / "trial_0", out, force=True), f"cannot write {out}")
    assert (out / export.METADATA).read_text() == created
    assert [path.name for path in tmp_path.iterdir()] == ["model"]


def test_staged_directory_refuses_a_nameless_folder_before_making_anything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError), files.staged_directory(".", replace=True):
        pass
    assert list(tmp_path.iterdir()) == []


def test_cli_export_force_keeps_a_users_folder(project, tmp_path):
    user = _user_folder(tmp_path / "userdir")
    result = CliRunner().invoke(cli, ["export", "--trial-dir", str(project / "trial_0"), "--out", str(user),
                                      "--force", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert "not an earlier export (holds data.csv and 2 more)" in cli_error_line(result, alone=True)
    assert (user / "thesis.txt").read_text() == "precious"


def test_activations_never_replace_a_users_npz_or_mat(tmp_path):
    from tuner_app.inspection import activations

    npz, mat = tmp_path / "acts.npz", tmp_path / "acts.mat"
    import scipy.io

    for data in ("not MATLAB", None):  # a file of the name, and a MATLAB file of the user's
        mat.write_text(data) if data else scipy.io.savemat(mat, {"responses": np.ones(2), "metadata": "{}"})
        one_line_error(lambda: activations.check_replaceable(npz), f"--out {mat}: already exists and is not")
    mat.unlink()
    np.savez(npz, mine=np.zeros(3))
    one_line_error(lambda: activations.check_replaceable(npz), f"--out {npz}: already exists and is not")
    assert np.load(npz)["mine"].shape == (3,)


def test_cli_activations_force_keeps_a_users_npz(tmp_path):
    npz = tmp_path / "acts.npz"
    np.savez(npz, mine=np.zeros(3))
    result = CliRunner().invoke(cli, ["activations", str(tmp_path / "no-model"), "--stimuli", str(tmp_path),
                                      "--out", str(npz), "--force"])
    assert f"--out {npz}: already exists and is not an activations file" in cli_error_line(result, alone=True)
    assert np.load(npz)["mine"].shape == (3,)


def test_figures_and_tables_replace_only_their_own(tmp_path):
    from tuner_app import outputs
    from tuner_app.analysis import pareto_report
    from tuner_app.inspection import figures

    figure = figures.new_figure((40, 30))
    png = tmp_path / "filters.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nmy own picture")
    one_line_error(lambda: figures.save_png(figure, png), f"--out {png}: already exists and is not a figure")
    assert png.read_bytes().endswith(b"my own picture")
    png.unlink()
    figures.save_png(figure, png)
    assert outputs.figure_is_ours(png)
    figures.save_png(figure, png)  # a rerun replaces its own
    csv = tmp_path / "pareto.csv"
    csv.write_text("name,score\n")
    rows = [{"run_id": "r", "trial_id": "0", "status": "FINISHED",
             "metrics": {"best_val_accuracy": 0.5, "params_total": 100}}]
    one_line_error(lambda: pareto_report.analyse(rows, tmp_path),
                   f"--out {csv}: already exists and is not a Pareto table")
    assert csv.read_text() == "name,score\n"
    csv.unlink()
    pareto_report.analyse(rows, tmp_path)
    pareto_report.analyse(rows, tmp_path)  # a rerun replaces its own three files
    assert sorted(path.name for path in tmp_path.iterdir()) == ["filters.png", "pareto.csv", "pareto.json",
                                                                "pareto.png"]


def test_a_report_page_is_replaced_only_when_tuner_app_wrote_it(tmp_path):
    from tuner_app import outputs
    from tuner_app.inspection import report

    page = tmp_path / report.REPORT_FILE
    page.write_text(f"<!DOCTYPE html>\n<html><head>{report.GENERATOR}</head></html>\n" + "x" * 100_000)
    outputs.check_replaceable_file(page, "--out", outputs.head_holds(report.GENERATOR), "a report")
    page.write_text("<html><head><title>my own notes</title></head></html>")
    one_line_error(lambda: outputs.check_replaceable_file(page, "--out", outputs.head_holds(report.GENERATOR),
                                                          "a report"), f"--out {page}: already exists")
