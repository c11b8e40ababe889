"""The export is an MLflow Model: `export --run-id --register` logs it as an MLflow 3 LoggedModel of the
trial's run and registers it; MLflow's own pyfunc loader and `mlflow models serve` give its probabilities."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import free_port, one_line_error, tone_clips
from mlflow.entities import LoggedModelStatus

from tuner_app.cli import cli
from tuner_app.serving import inference, pyfunc
from tuner_app.tracking import store as tracking_store
from tuner_app.tracking.tracker import OUTCOME_TAG

NAME = "kws-tiny"
SERVER_START_S = 120


@pytest.fixture(scope="module")
def registered(tiny_trial_dir, tmp_path_factory, new_store):
    """The tiny trial as a finished trial run of a store of this module's own, exported with --run-id and
    --register: (store URI, run id, CLI output, export dir, waveforms, the export's probabilities)."""
    root = tmp_path_factory.mktemp("mlflow_model")
    uri = new_store(root / "mlruns" / "mlflow.db")
    run_id = _trial_run(uri, tiny_trial_dir)
    out = root / "model"
    result = CliRunner().invoke(cli, ["export", "--run-id", run_id, "--out", str(out), "--tracking-uri", uri,
                                      "--register", NAME])
    assert result.exit_code == 0, result.output
    waveforms = tone_clips(5).waveforms[:3]
    return uri, run_id, result.output, out, waveforms, inference.load(out).probabilities(waveforms)


def _trial_run(uri: str, trial_dir: Path) -> str:
    """A finished trial run as the tracker leaves one: tags, a param, a metric curve and final metrics."""
    client = tracking_store.client_for(uri)
    experiment_id = tracking_store.find_experiment(client, uri, "mlflow-model", create=True)
    tags = {"trial_id": "0", "trial_dir": str(trial_dir), OUTCOME_TAG: "COMPLETED"}
    run_id = client.create_run(experiment_id, run_name="trial_0", tags=tags).info.run_id
    client.log_param(run_id, "conv_layers", "1")
    for step, value in enumerate((0.25, 0.5)):
        client.log_metric(run_id, "val_accuracy", value, step=step)
    client.log_metric(run_id, "best_val_accuracy", 0.5)
    client.log_metric(run_id, "params_total", 98_424)
    client.set_terminated(run_id)
    return run_id


def test_the_registered_model_loads_with_mlflow_pyfunc(registered, monkeypatch):
    uri, run_id, output, out, waveforms, probabilities = registered
    model_id = output.split("as models:/")[1].split()[0]
    assert f"Registered as '{NAME}' version 1: models:/{NAME}/1" in output
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    loaded = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    predicted = loaded.predict(waveforms)
    assert predicted.dtype == np.float32 and predicted.shape == (3, probabilities.shape[1])
    np.testing.assert_allclose(predicted, probabilities, atol=1e-5)
    assert loaded.metadata.get_input_schema().inputs[0].shape == (-1, 16000)
    assert mlflow.models.Model.load(str(out / "MLmodel")).load_input_example(str(out)).shape == (1, 16000)
    metadata = json.loads((out / "tuner_app.json").read_text())
    assert loaded.metadata.metadata["class_names"] == metadata["class_names"]
    client = mlflow.MlflowClient(uri)
    version, logged = client.get_model_version(NAME, "1"), client.get_logged_model(model_id)
    assert version.run_id == run_id and version.source == logged.artifact_location
    assert version.tags["params_total"] == str(metadata["params"]) == "98424"
    assert version.tags["accuracy"] == "0.5" and version.tags["frontend"] == metadata["frontend"]["kind"]
    assert logged.name == f"{metadata['model']}-trial_0" and logged.tags["params_total"] == "98424"
    assert logged.source_run_id == run_id and logged.status == LoggedModelStatus.READY
    assert logged.params["conv_layers"] == "1" and logged.params["frontend_config.kind"] == metadata["frontend"]["kind"]
    assert {metric.key: (metric.value, metric.step) for metric in logged.metrics} == {
        "val_accuracy": (0.5, 1), "best_val_accuracy": (0.5, 0), "params_total": (98_424, 0)}
    assert [entry.value for entry in client.get_metric_history(run_id, "val_accuracy")] == [0.25, 0.5]
    assert [linked.model_id for linked in client.get_run(run_id).outputs.model_outputs] == [model_id]
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": NAME, "version": 1}]


def test_the_pyfunc_loader_takes_what_the_scoring_server_hands_over():
    import pandas as pd

    clips = np.random.default_rng(0).standard_normal([2, 16000]).astype(np.float32)
    cases = [(clips, clips), (clips.tolist(), clips), (pd.DataFrame(clips), clips),
             (pd.DataFrame({"waveform": list(clips)}), clips), (clips[0], clips[:1])]  # a column of clips; one clip
    for given, expected in cases:
        converted = pyfunc.waveforms(given)
        assert converted.dtype == np.float32
        np.testing.assert_array_equal(converted, expected)
    one_line_error(lambda: pyfunc.waveforms(np.zeros([2, 100])), "[n, 16000]", "[2, 100]")


def test_the_registered_model_serves_with_mlflow_models_serve(registered, tmp_path):
    uri, _, _, _, waveforms, probabilities = registered
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # serve runs `uvicorn`
    log = tmp_path / "server.log"
    with open(log, "wb") as stream:
        server = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{NAME}/1",
                                   "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
                                  env=env, stdout=stream, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_up(port, server, log)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations",
                                         data=json.dumps({"inputs": waveforms.tolist()}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            predictions = np.asarray(json.load(response)["predictions"], np.float32)
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # its own session: uvicorn and any worker go with it
        server.wait()
    np.testing.assert_allclose(predictions, probabilities, atol=1e-4)


def _wait_until_up(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"mlflow models serve exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    pytest.fail(f"mlflow models serve did not answer /ping in {SERVER_START_S} s:\n{log.read_text()[-3000:]}")
