"""`tuner-app server`: the tracking server that several search processes log to over HTTP, its /health
check, and its artifacts served to clients that share no path with it."""

import socket
import urllib.request
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner
from conftest import SMOKE_SPACE, cli_error_line, two_word_corpus

from tuner_app.cli import cli
from tuner_app.tracking import runs as tracking_runs
from tuner_app.tracking import ui as mlflow_ui

SMOKE = Path(SMOKE_SPACE)
def _one_trial_search(tmp_path: Path, monkeypatch, tracking_uri: str, experiment: str) -> str:
    """`tuner-app search` of one smoke trial on a two-word tone corpus, logged to `tracking_uri`."""
    monkeypatch.chdir(tmp_path)
    space = tmp_path / "one.yaml"
    space.write_text(SMOKE.read_text().replace("max_trials: 2", "max_trials: 1"))
    data = two_word_corpus(tmp_path / "data")
    result = CliRunner().invoke(cli, ["search", "--space", str(space), "--data", str(data), "--cache-dir",
                                      str(tmp_path / "cache"), "--runs-dir", str(tmp_path / "runs"),
                                      "--tracking-uri", tracking_uri, "--experiment", experiment])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_search_logs_to_the_tracking_server_over_http(tracking_server, tmp_path, monkeypatch):
    url, store = tracking_server
    assert urllib.request.urlopen(f"{url}/health", timeout=10).read() == b"OK"
    _one_trial_search(tmp_path, monkeypatch, url, "served")
    (row,) = tracking_runs.trial_runs(url, "served")
    assert row["outcome"] == "COMPLETED"
    assert [row["run_id"] for row in tracking_runs.trial_runs(store, "served")] == [row["run_id"]]  # in its store
    client = mlflow.MlflowClient(url)
    assert "architecture.png" in {item.path for item in client.list_artifacts(row["run_id"])}
    location = client.get_experiment_by_name("served").artifact_location
    assert location.startswith("mlflow-artifacts:"), location  # uploaded through the server, no shared path
    assert (tmp_path / "served" / "artifacts").is_dir() and not (tmp_path / "mlruns").exists()


def test_a_server_bound_beyond_this_machine_warns_and_a_loopback_one_does_not():
    assert mlflow_ui.exposure_warning("127.0.0.1", "tracking server") is None
    assert mlflow_ui.exposure_warning("localhost", "UI") is None
    warning = mlflow_ui.exposure_warning("0.0.0.0", "tracking server")
    assert warning.startswith("Warning: --host 0.0.0.0 exposes the tracking server") and "\n" not in warning
    command = mlflow_ui.ui_command("sqlite:////tmp/x/mlflow.db", "127.0.0.1", 5000, serve_artifacts=True)
    assert command[command.index("--artifacts-destination") + 1] == "file:///tmp/x/artifacts"
    assert "--default-artifact-root" not in command


def test_a_port_in_use_is_one_line_naming_the_server_that_cannot_listen(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        server = CliRunner().invoke(cli, ["server", "--port", port, "--backend-store-uri", store])
        ui = CliRunner().invoke(cli, ["ui", "--no-open", "--port", port, "--tracking-uri", store])
    remedy = "(address already in use); is another tuner-app ui or server, or another program, on that port?"
    assert f"--port {port}: the tracking server cannot listen there {remedy}" in cli_error_line(server, alone=True)
    assert f"--port {port}: the MLflow UI cannot listen there {remedy}" in cli_error_line(ui, alone=True)


def test_a_store_uri_travels_to_the_server_in_its_environment_not_its_arguments():
    uri = "postgresql://mlflow:s3cret-pw@db/mlflow"
    command = mlflow_ui.ui_command(uri, "127.0.0.1", 5000, serve_artifacts=True, option="--backend-store-uri")
    argv, env = mlflow_ui.store_uris_to_environment(command, {"PATH": "/bin"})
    assert not any("s3cret-pw" in argument for argument in argv)  # ps shows arguments to every user
    assert env == {"PATH": "/bin", "MLFLOW_BACKEND_STORE_URI": uri, "MLFLOW_REGISTRY_STORE_URI": uri}
    assert argv[:4] == command[:4] and "--host" in argv and "--backend-store-uri" not in argv


def test_the_server_takes_its_store_from_the_environment_off_its_own_command_line(tmp_path, monkeypatch):
    served = []
    monkeypatch.setattr(mlflow_ui, "check_port_free", lambda host, port, what: None)
    monkeypatch.setattr(mlflow_ui, "serve_ui", lambda command, *rest: served.append(command) or 0)
    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    result = CliRunner().invoke(cli, ["server", "--port", "5999"], env={"MLFLOW_BACKEND_STORE_URI": store})
    assert result.exit_code == 0, result.output
    (command,) = served
    assert command[command.index("--backend-store-uri") + 1] == store and (tmp_path / "store").is_dir()


@pytest.fixture
def postgresql(tmp_path):
    """The URI of a real PostgreSQL server (pgserver's binaries from PyPI), in a data folder of the test's."""
    pgserver = pytest.importorskip("pgserver", reason="pgserver (PyPI, in the test extras) is not installed")
    server = pgserver.get_server(tmp_path / "pgdata", cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def test_a_search_logs_to_a_real_postgresql_store(postgresql, tmp_path, monkeypatch):
    assert postgresql.startswith("postgresql://postgres:@")
    # A password in the URI (the local socket's trust authentication accepts it) must be printed and logged nowhere.
    output = _one_trial_search(tmp_path, monkeypatch, postgresql.replace(":@", ":s3cret-pw@", 1), "pg")
    assert "s3cret-pw" not in output and "postgresql://postgres:***@" in output
    client = mlflow.MlflowClient(postgresql)
    logged = client.search_runs([client.get_experiment_by_name("pg").experiment_id])
    assert len(logged) == 2 and not any("s3cret-pw" in str(run.data.params) + str(run.data.tags) for run in logged)
    (row,) = tracking_runs.trial_runs(postgresql, "pg")
    assert row["outcome"] == "COMPLETED" and row["metrics"]["params_total"] > 0
    parent = mlflow.MlflowClient(postgresql).get_run(row["parent_run_id"])
    assert parent.data.metrics["trials_completed"] == 1 and parent.info.status == "FINISHED"
    inputs = mlflow.MlflowClient(postgresql).get_run(row["run_id"]).inputs.dataset_inputs
    assert [item.dataset.name for item in inputs] == ["data/train", "data/validation", "data/test"]
