"""The whole workflow through the CLI: search (with its Pareto analysis), pareto, export by selection, predict."""

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import tone, write_wav

from tuner_app.cli import cli
from tuner_app.tracking import runs as tracking_runs
from tuner_app.tracking import store as tracking_store

SMOKE = Path(__file__).resolve().parents[1] / "search_spaces" / "smoke.yaml"


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One smoke search (2 trials) on a two-word corpus, tracked in its own SQLite store."""
    root = tmp_path_factory.mktemp("workflow")
    data = root / "data"
    for word, base in (("zero", 200), ("one", 900)):
        for index in range(6):
            write_wav(data / word / f"spk{index}_nohash_0.wav", tone(freq=base + 20 * index))
    (data / "validation_list.txt").write_text("zero/spk0_nohash_0.wav\none/spk1_nohash_0.wav\n")
    (data / "testing_list.txt").write_text("zero/spk2_nohash_0.wav\none/spk3_nohash_0.wav\n")
    uri = f"sqlite:///{root}/mlruns/mlflow.db"
    result = CliRunner().invoke(cli, ["search", "--space", str(SMOKE), "--data", str(data), "--cache-dir",
                                      str(root / "cache"), "--runs-dir", str(root / "runs"), "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    return root, uri, result


def test_search_ends_with_the_pareto_analysis(searched):
    root, uri, result = searched
    project = root / "runs" / "smoke-random"
    assert (project / "pareto" / "pareto.csv").is_file() and (project / "pareto" / "pareto.png").is_file()
    assert "Pareto front:" in result.stderr and "hypervolume" in result.stderr.lower()
    runs = tracking_runs.trial_runs(uri, "tuner-app")
    assert len(runs) == 2
    # The parent run holds the CSV and PNG.
    client = tracking_store.client_for(uri)
    names = {item.path for item in client.list_artifacts(runs[0]["parent_run_id"])}
    assert {"pareto.csv", "pareto.png"} <= names


def test_pareto_command_writes_csv_png_and_tags(searched, tmp_path):
    _, uri, _ = searched
    result = CliRunner().invoke(cli, ["pareto", "--tracking-uri", uri, "--out", str(tmp_path), "--reference", "seed"])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "pareto.csv", newline="") as stream:
        lines = list(csv.DictReader(stream))
    assert len(lines) == 2
    assert (tmp_path / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    client = tracking_store.client_for(uri)
    tags = {row["run_id"]: client.get_run(row["run_id"]).data.tags["pareto"] for row in tracking_runs.trial_runs(uri, "tuner-app")}
    assert sorted(tags.values()) in (["false", "true"], ["true", "true"])
    assert {line["run_id"]: line["pareto"] for line in lines} == tags


def test_export_by_selection_registers_and_predicts(searched, tmp_path):
    root, uri, _ = searched
    out = tmp_path / "model"
    result = CliRunner().invoke(cli, ["export", "--select", "smallest-within:0.5", "--out", str(out),
                                      "--tracking-uri", uri, "--register", "keyword-spotter"])
    assert result.exit_code == 0, result.output
    assert "Registered as 'keyword-spotter' version 1" in result.output
    metadata = json.loads((out / "tuner_app.json").read_text())
    runs = {row["run_id"]: row for row in tracking_runs.trial_runs(uri, "tuner-app")}
    chosen = runs[metadata["mlflow_run_id"]]
    assert metadata["params"] == min(int(row["metrics"]["params_total"]) for row in runs.values()
                                     if row["metrics"]["best_val_accuracy"] >= max(
                                         r["metrics"]["best_val_accuracy"] for r in runs.values()) - 0.5)
    assert metadata["params"] == int(chosen["metrics"]["params_total"])
    client = tracking_store.client_for(uri)
    (output,) = client.get_run(chosen["run_id"]).outputs.model_outputs  # the export, as the run's LoggedModel
    assert {"MLmodel", "saved_model.pb"} <= {item.path for item in client.list_logged_model_artifacts(output.model_id)}
    clip = root / "data" / "one" / "spk4_nohash_0.wav"
    predicted = CliRunner().invoke(cli, ["predict", str(out), str(clip), "--format", "json"])
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.stdout)[0]["top"][0]["label"] in ("zero", "one")


def test_export_needs_exactly_one_trial(searched, tmp_path):
    _, uri, _ = searched
    result = CliRunner().invoke(cli, ["export", "--out", str(tmp_path / "x"), "--tracking-uri", uri])
    assert result.exit_code == 2
    assert "give exactly one of --trial-dir, --run-id, --select (got none)" in result.stderr


def test_export_selects_on_the_size_axis_and_accuracy_it_is_given(searched, tmp_path):
    _, uri, _ = searched
    runs = tracking_runs.trial_runs(uri, "tuner-app")
    fewest_macs = min(runs, key=lambda row: (row["metrics"]["macs"], -row["metrics"]["best_val_accuracy"]))
    result = CliRunner().invoke(cli, ["export", "--select", "smallest-within:0.99", "--x", "macs", "--out",
                                      str(tmp_path / "model"), "--tracking-uri", uri])
    assert result.exit_code == 0, result.output
    assert f"trial {fewest_macs['trial_id']} " in result.stderr and "macs " in result.stderr
    assert json.loads((tmp_path / "model" / "tuner_app.json").read_text())["mlflow_run_id"] == fewest_macs["run_id"]


def test_export_on_int8_accuracy_without_int8_scores_is_one_line(searched, tmp_path):
    _, uri, _ = searched
    result = CliRunner().invoke(cli, ["export", "--select", "best", "--accuracy", "int8", "--out",
                                      str(tmp_path / "model"), "--tracking-uri", uri])
    assert result.exit_code == 2 and not (tmp_path / "model").exists()
    assert result.stderr.strip().splitlines()[-1].startswith("Error: no finished trial with val_accuracy_int8")
