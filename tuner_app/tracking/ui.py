"""`tuner-app ui`: the MLflow UI (an `mlflow server` subprocess) on the project's store, bound to
localhost unless told otherwise, opened on the runs of one experiment with tuner-app's columns.

MLflow keeps a user's columns and sort in the browser only; the one thing a server can offer is a shared
view (an experiment tag the URL names with `viewStateShareKey`), which the UI applies under a banner
("You're viewing a shared view") until the user exits it or saves it as their own.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import webbrowser
from collections.abc import Callable

from mlflow.exceptions import MlflowException

from tuner_app.errors import TunerAppError
from tuner_app.model.space.search_space import SIZE_OBJECTIVES
from tuner_app.redaction import redact
from tuner_app.search.distribution import is_loopback
from tuner_app.tracking.store import (
    artifact_root,
    default_tracking_uri,
    find_experiment,
    make_store_folder,
    sqlite_path,
    store,
    tag_model_development,
)

# `mlflow server` reads these options from these variables when they are not given.
STORE_URI_VARIABLES = {"--backend-store-uri": "MLFLOW_BACKEND_STORE_URI",
                       "--registry-store-uri": "MLFLOW_REGISTRY_STORE_URI"}
SHARE_KEY = "tuner-app"
VIEW_TAG = f"mlflow.sharedViewState.{SHARE_KEY}"
# A trial's scores (float, then its int8 model's validation accuracy) and sizes (then its int8 model's costs on a
# device: flash, TFLM arena, host int8 latency), then the search's headline metrics (on its parent run: the knee
# on whichever size axis its front is on); a column whose metric no run has is left out by the UI.
VIEW_METRICS = ("best_val_accuracy", "test_accuracy", "val_accuracy_int8", *SIZE_OBJECTIVES,
                "hypervolume", *(f"knee_{size}" for size in SIZE_OBJECTIVES), "trials_completed", "trials_rejected")
# Quiet mode drops these lines of the server's output: start-up INFO logs and the security banner.
SERVER_NOISE = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d INFO |INFO |\[MLflow\] Security middleware enabled)")


def ui_command(tracking_uri: str | None, host: str, port: int, verbose: bool = False,
               serve_artifacts: bool = False, option: str = "--tracking-uri") -> list[str]:
    """The `mlflow server` command line serving the UI on the store (whose folder it creates if embedded);
    unless verbose, uvicorn logs warnings and errors only. `serve_artifacts`: the server stores the artifacts
    its clients upload (under the store's artifacts folder), so a worker on another machine needs no path of
    the server's; otherwise new experiments keep artifacts beside the SQLite store, where local clients write.
    `option` is the flag that named the store, for the one line if its folder cannot be made."""
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith(("http://", "https://")):
        raise TunerAppError(f"--tracking-uri {uri} is a tracking server already: open it in a browser")
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--registry-store-uri", uri,
               "--host", host, "--port", str(port), "--workers", "1"]
    if sqlite_path(uri):
        make_store_folder(uri, option)
        command += (["--serve-artifacts", "--artifacts-destination", artifact_root(uri)] if serve_artifacts
                    else ["--default-artifact-root", artifact_root(uri)])
    return command if verbose else command + ["--uvicorn-opts", "--log-level warning"]


def exposure_warning(host: str, what: str) -> str | None:
    """The one-line warning a server bound beyond this machine deserves; None on a loopback address."""
    if is_loopback(host):
        return None
    return (f"Warning: --host {host} exposes the {what} to every machine that can reach this one, without "
            "authentication; use it only on a trusted network")


def check_port_free(host: str, port: int, what: str = "MLflow UI") -> None:
    """A one-line error where the `what` server could not listen: uvicorn would only log it, and
    `mlflow server` exit 0."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
            probe.bind(address)
    except OSError as err:
        reason = (err.strerror or str(err)).lower()
        # `ui` and `server` both default to port 5000: the likeliest holder of one's port is the other
        remedy = ("is another tuner-app ui or server, or another program, on that port? Choose another --port"
                  if err.errno == errno.EADDRINUSE else "choose another --host or --port")
        raise TunerAppError(f"--host {host} --port {port}: the {what} cannot listen there ({reason}); "
                            f"{remedy}") from None


def runs_view_state() -> dict:
    """The shared view `tuner-app ui` opens: every run flat (a sort other than by date un-nests the trials
    from their search), best validation accuracy first, the scores and sizes as the first columns."""
    metrics = [f"metrics.`{name}`" for name in VIEW_METRICS]
    others = ["tags.`model`", "attributes.`Dataset`", "attributes.`Models`"]
    return {"orderByKey": metrics[0], "orderByAsc": False, "selectedColumns": metrics + others,
            "columnOrder": ["attributes.`Run Name`", "runDateAndNestInfo", *metrics, *others],
            "columnWidths": {f"metrics.`{name}`": _header_width(name) for name in VIEW_METRICS}}


def _header_width(name: str) -> int:
    # px: the header in full (MLflow's default width cuts best_val_accuracy), and no wider
    return max(90, 8 * len(name) + 30)


def prepare_runs_view(tracking_uri: str | None, experiment: str, create: bool) -> str:
    """Tag the experiment (created if `create` and missing) as model development and give it the shared
    runs view; returns its id."""
    uri, client = store(tracking_uri)
    experiment_id = find_experiment(client, uri, experiment, create)
    tag_model_development(client, uri, experiment_id)
    try:
        client.set_experiment_tag(experiment_id, VIEW_TAG, json.dumps(runs_view_state(), separators=(",", ":")))
    except MlflowException as err:
        raise TunerAppError(f"MLflow store {uri}: {err.message}") from None
    return experiment_id


def server_url(host: str, port: int) -> str:
    """Where a browser on this machine reaches a server bound to host (any-address binds included)."""
    local = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://[{local}]:{port}" if ":" in local else f"http://{local}:{port}"


def runs_view_url(host: str, port: int, experiment_id: str) -> str:
    # The bare experiment route redirects to its tab and drops the query; workflowType picks the
    # model-training side of the UI (its sidebar too), the share key the columns.
    return (f"{server_url(host, port)}/#/experiments/{experiment_id}/runs"
            f"?workflowType=machine_learning&viewStateShareKey={SHARE_KEY}")


def open_in_browser(url: str) -> bool:
    """Open url in the desktop's browser; False where there is none (headless), or only a console browser,
    which would take over the terminal the server reports to."""
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    if type(browser) is webbrowser.GenericBrowser and "BROWSER" not in os.environ:
        return False
    return browser.open(url)


def serve_ui(command: list[str], verbose: bool = False, base_url: str | None = None,
             when_serving: Callable[[], object] | None = None) -> int:
    """Run the UI server until it exits, Ctrl-C or SIGTERM; returns its exit code. Unless verbose, its
    deprecation warnings and INFO logs are hidden (errors still show). when_serving runs, in a thread, once
    base_url answers."""
    server, forwarder = _start_server(command, verbose)
    if when_serving and base_url:
        threading.Thread(target=_call_when_serving, args=(server, base_url, when_serving), daemon=True).start()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` must not orphan the server
    try:
        return server.wait()
    except KeyboardInterrupt:
        return _stop(server)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if forwarder:
            forwarder.join(timeout=5)  # the server's last words (a port in use) before ours


def _start_server(command: list[str], verbose: bool) -> tuple[subprocess.Popen, threading.Thread | None]:
    # MLflow's GenAI job runner is of no use here, and it holds up the server's exit for tens of seconds.
    # Its own session: a Ctrl-C reaches only us and we stop it once (twice, uvicorn prints a traceback).
    command, env = store_uris_to_environment(command, {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    if verbose:
        return subprocess.Popen(command, env=env, start_new_session=True), None
    env["PYTHONWARNINGS"] = "ignore"  # starlette's and MLflow's deprecation warnings, in the server and its worker
    server = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace")
    forwarder = threading.Thread(target=_forward_output, args=(server.stdout,), daemon=True)
    forwarder.start()
    return server, forwarder


def store_uris_to_environment(command: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command without its store URIs, and env with them in mlflow's own variables instead: any user of
    the machine can read a process's arguments (ps), only its owner its environment, and a database URI may
    hold a password."""
    command, env = list(command), dict(env)
    for option, variable in STORE_URI_VARIABLES.items():
        if option in command:
            at = command.index(option)
            env[variable] = command[at + 1]
            del command[at:at + 2]
    return command, env


def _forward_output(stream) -> None:
    for line in stream:
        if not SERVER_NOISE.match(line):
            sys.stderr.write(redact(line))  # the server's errors may quote its store URI
            sys.stderr.flush()


def _call_when_serving(server: subprocess.Popen, base_url: str, action: Callable[[], object]) -> None:
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an http_proxy
    while server.poll() is None:
        try:
            direct.open(f"{base_url}/health", timeout=5).close()
        except OSError:
            time.sleep(0.5)
            continue
        action()
        return


def _stop(server: subprocess.Popen) -> int:
    server.terminate()  # mlflow forwards it to its uvicorn worker
    try:
        return server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        return server.wait()
