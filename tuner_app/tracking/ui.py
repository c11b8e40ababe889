"""`tuner-app ui`: the MLflow UI (an `mlflow server` subprocess) on the project's store, bound to
localhost unless told otherwise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tuner_app.errors import TunerAppError
from tuner_app.tracking.store import artifact_root, default_tracking_uri, sqlite_path


def ui_command(tracking_uri: str | None, host: str, port: int) -> list[str]:
    """The `mlflow server` command line serving the UI on the store (whose folder it creates if embedded)."""
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith(("http://", "https://")):
        raise TunerAppError(f"--tracking-uri {uri} is a tracking server already: open it in a browser")
    command = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri,
               "--host", host, "--port", str(port), "--workers", "1"]
    if sqlite_path(uri):
        sqlite_path(uri).parent.mkdir(parents=True, exist_ok=True)
        command += ["--default-artifact-root", artifact_root(uri)]
    return command


def serve_ui(command: list[str]) -> int:
    """Run the UI server until it exits, Ctrl-C or SIGTERM; returns its exit code."""
    # MLflow's GenAI job runner is of no use here, and it holds up the server's exit for tens of seconds.
    # Its own session: a Ctrl-C reaches only us and we stop it once (twice, uvicorn prints a traceback).
    server = subprocess.Popen(command, env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                              start_new_session=True)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` must not orphan the server
    try:
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()  # mlflow forwards it to its uvicorn worker
        try:
            return server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            return server.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
