"""`tuner-app ui`: the experiment it opens (tagged as model development, with tuner-app's shared runs view),
the quiet MLflow server it runs on a smoke search's store, bound to localhost and gone with it, and the
printed runs view in headless Chromium, which must list the trial runs by name."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import webbrowser
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner
from conftest import SMOKE_SPACE, free_port, one_line_error, smoke_space, tone_splits

from tuner_app.cli import cli
from tuner_app.search import run as search_run
from tuner_app.tracking import store as tracking_store
from tuner_app.tracking import ui as mlflow_ui
from tuner_app.tracking.tracker import MLflowTracker

HANG = 600  # seconds: only a hung server or browser takes this long, however loaded the machine
KIND = tracking_store.EXPERIMENT_KIND_TAG
VIEW_QUERY = "?workflowType=machine_learning&viewStateShareKey=tuner-app"


def _uri(directory: Path) -> str:
    return f"sqlite:///{directory / 'mlruns' / 'mlflow.db'}"


def test_experiments_open_as_model_development_with_the_runs_view(tmp_path):
    uri = _uri(tmp_path)
    client = tracking_store.client_for(uri)
    created = tracking_store.find_experiment(client, uri, "new", create=True)
    assert client.get_experiment(created).tags[KIND] == "custom_model_development"
    older = client.create_experiment("older")  # as an earlier tuner-app, or MLflow itself, made it
    assert KIND not in client.get_experiment(older).tags
    assert mlflow_ui.prepare_runs_view(uri, "older", create=False) == older
    tags = client.get_experiment(older).tags
    assert tags[KIND] == "custom_model_development"
    view = json.loads(tags[mlflow_ui.VIEW_TAG])
    assert (view["orderByKey"], view["orderByAsc"]) == ("metrics.`best_val_accuracy`", False)
    assert view["selectedColumns"][:4] == ["metrics.`best_val_accuracy`", "metrics.`test_accuracy`",
                                           "metrics.`val_accuracy_int8`", "metrics.`params_total`"]
    device = ["metrics.`flash_bytes`", "metrics.`ram_bytes`", "metrics.`latency_ms`"]  # the int8 model's costs
    assert all(column in view["selectedColumns"] and column in view["columnWidths"] for column in device)
    assert {"metrics.`knee_params_total`", "metrics.`knee_flash_bytes`"} <= set(view["selectedColumns"])
    assert view["columnOrder"][2] == "metrics.`best_val_accuracy`" and "attributes.`Source`" not in view["columnOrder"]
    one_line_error(lambda: mlflow_ui.prepare_runs_view(uri, "nope", create=False), "'nope'", uri)


def _no_browser():
    raise webbrowser.Error("could not locate runnable browser")


def test_server_command_url_and_browser(tmp_path, monkeypatch):
    uri = _uri(tmp_path)
    quiet, verbose = mlflow_ui.ui_command(uri, "127.0.0.1", 5001), mlflow_ui.ui_command(uri, "127.0.0.1", 5001, True)
    assert quiet == verbose + ["--uvicorn-opts", "--log-level warning"]
    assert verbose[verbose.index("--registry-store-uri") + 1] == uri and "127.0.0.1" in verbose
    one_line_error(lambda: mlflow_ui.ui_command("http://host:5000", "127.0.0.1", 5001), "--tracking-uri")
    assert mlflow_ui.runs_view_url("0.0.0.0", 5001, "7") == f"http://127.0.0.1:5001/#/experiments/7/runs{VIEW_QUERY}"
    assert mlflow_ui.runs_view_url("::1", 5001, "7").startswith("http://[::1]:5001/#/experiments/7/runs?")
    noise = ["[MLflow] Security middleware enabled with default settings (localhost-only). To allow ...",
             "2026/01/02 03:04:05 INFO mlflow.store.db.utils: Creating initial MLflow database tables...",
             "INFO  [alembic.runtime.migration] Context impl SQLiteImpl."]
    kept = "2026/01/02 03:04:05 ERROR:    [Errno 98] error while attempting to bind on address: address already in use"
    assert all(mlflow_ui.SERVER_NOISE.match(line) for line in noise) and not mlflow_ui.SERVER_NOISE.match(kept)
    # Headless: no browser at all, or only a console one (one that would succeed), which must not take over
    # the terminal
    monkeypatch.delenv("BROWSER", raising=False)
    monkeypatch.setattr(webbrowser, "get", lambda: webbrowser.GenericBrowser(["true"]))
    assert mlflow_ui.open_in_browser("http://127.0.0.1:5001/") is False
    monkeypatch.setattr(webbrowser, "get", _no_browser)
    assert mlflow_ui.open_in_browser("http://127.0.0.1:5001/") is False
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_line_error(lambda: mlflow_ui.check_port_free("127.0.0.1", port), f"--port {port}", "address already in use")


def test_ui_command_prints_the_view_opens_it_and_passes_verbose(tmp_path, monkeypatch):
    served, opened = [], []
    monkeypatch.setattr(mlflow_ui, "serve_ui", lambda *args: served.append(args) or 0)
    monkeypatch.setattr(mlflow_ui, "open_in_browser", opened.append)
    uri, port = _uri(tmp_path), free_port()
    options = ["--port", str(port), "--tracking-uri", uri]
    result = CliRunner().invoke(cli, ["ui", *options])
    assert result.exit_code == 0, result.output
    client = tracking_store.client_for(uri)
    experiment = client.get_experiment_by_name("tuner-app")  # the default experiment, made for a store not searched yet
    assert experiment.tags[KIND] == "custom_model_development" and mlflow_ui.VIEW_TAG in experiment.tags
    url = f"http://127.0.0.1:{port}/#/experiments/{experiment.experiment_id}/runs{VIEW_QUERY}"
    assert result.stdout == f"MLflow UI of {uri}: {url}\n"
    (command, verbose, base_url, opener), = served
    assert not verbose and "--uvicorn-opts" in command and base_url == f"http://127.0.0.1:{port}"
    opener()  # what serve_ui calls once the server answers
    assert opened == [url]
    assert CliRunner().invoke(cli, ["--verbose", "ui", "--no-open", *options]).exit_code == 0
    (command, verbose, _, opener) = served[-1]
    assert verbose and "--uvicorn-opts" not in command and opener is None
    result = CliRunner().invoke(cli, ["ui", *options, "--experiment", "nope"])
    assert result.exit_code == 2 and "Error: MLflow experiment 'nope' not found" in result.stderr
    assert len(served) == 2  # a named experiment is never created


def _printed_url(log: Path, server: subprocess.Popen) -> str | None:
    """The runs view URL `tuner-app ui` printed, once its server answers; None if it exited first."""
    deadline = time.monotonic() + HANG
    while server.poll() is None and time.monotonic() < deadline:
        printed = re.search(r"^MLflow UI of .*: (http://\S+)$", log.read_text(), re.MULTILINE)
        if printed:
            try:
                urllib.request.urlopen(printed.group(1).split("/#")[0] + "/health", timeout=5).close()
                return printed.group(1)
            except OSError:
                pass
        time.sleep(0.5)
    return None


def _start_ui(uri: str, log: Path) -> tuple[subprocess.Popen, str]:
    """`tuner-app ui --no-open` on a free port: (server, the URL it printed). Another process can take the
    port between _free_port and the server's bind: then the ui command exits and we try another."""
    for _ in range(5):
        with log.open("w") as stream:
            server = subprocess.Popen([sys.executable, "-m", "tuner_app.cli", "ui", "--no-open", "--port",
                                       str(free_port()), "--tracking-uri", uri],
                                      stdout=stream, stderr=subprocess.STDOUT)
        url = _printed_url(log, server)
        if url:
            return server, url
        if server.poll() is None or "address already in use" not in log.read_text():
            server.kill()
            raise AssertionError(f"the UI server did not answer: {log.read_text()[-2000:]}")
    raise AssertionError("five free ports were all taken before the server could bind them")


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory, new_store):
    """`tuner-app ui` on the store of a smoke search (two trials): (server, printed URL, its log, store URI)."""
    directory = tmp_path_factory.mktemp("ui")
    uri = new_store(directory / "mlruns" / "mlflow.db")
    tracker = MLflowTracker(uri, "tuner-app", SMOKE_SPACE, {"tuner": "random"})
    search_run.run_search(smoke_space(), tone_splits(), directory / "runs", observers=[tracker], verbose=0)
    log = directory / "ui.log"
    server, url = _start_ui(uri, log)
    try:
        yield server, url, log, uri
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def _trial_names(uri: str) -> list[str]:
    client = tracking_store.client_for(uri)
    experiment_id = tracking_store.find_experiment(client, uri, "tuner-app", create=False)
    return sorted(run.info.run_name for run in tracking_store.search_runs(client, experiment_id,
                                                                         "tags.trial_id LIKE '%'"))


def test_ui_prints_the_runs_view_and_serves_the_store_quietly(ui_server):
    _, url, log, uri = ui_server
    experiment = mlflow.MlflowClient(uri).get_experiment_by_name("tuner-app")
    assert experiment.tags[KIND] == "custom_model_development"
    assert url.startswith("http://127.0.0.1:") and url.endswith(f"/#/experiments/{experiment.experiment_id}/runs"
                                                                f"{VIEW_QUERY}")
    base = url.split("/#")[0]
    with urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/search?max_results=10", timeout=30) as answer:
        assert "tuner-app" in [found["name"] for found in json.loads(answer.read())["experiments"]]
    text = log.read_text()
    assert text.startswith(f"MLflow UI of {uri}: {url}\n")
    assert not re.search(r"DeprecationWarning| INFO|Security middleware|Registry store URI", text), text


def _chromium() -> str | None:
    names = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
    return next((path for path in map(shutil.which, names) if path), None)


def test_the_printed_view_lists_the_trial_runs_in_headless_chromium(ui_server, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; .ci/run does it as root)")
    _, url, _, uri = ui_server
    names = _trial_names(uri)
    assert len(names) == 2 and all(name.startswith("trial_") for name in names)
    command = [chromium, "--headless", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
               "--virtual-time-budget=15000", url]
    if os.geteuid() == 0:
        command.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    dom = subprocess.run(command, capture_output=True, text=True, timeout=HANG, check=True).stdout
    # The trials are listed flat (sorted by a metric, not nested under their collapsed search), by name,
    # under the shared view's columns
    listed = re.findall(r">(trial_\w+)</span></a>", dom)
    assert sorted(listed) == names, dom[-3000:]
    assert "best_val_accuracy" in dom and "shared view" in dom


def test_ui_stops_with_its_server(ui_server):
    server, url, _, _ = ui_server
    server.terminate()
    assert server.wait(timeout=HANG) == 0
    with pytest.raises(OSError):  # the server went with it
        urllib.request.urlopen(url.split("/#")[0] + "/health", timeout=5)
