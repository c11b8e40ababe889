"""`tuner-app server`: the MLflow tracking server that several search processes (a chief and its workers, on
one machine or several) log to, since several processes must not share one SQLite file."""

from __future__ import annotations

import sys

import click

from tuner_app.cli.root import cli
from tuner_app.redaction import redact


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; 0.0.0.0 lets workers on other machines log to it (and warns).")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--backend-store-uri", envvar=["MLFLOW_BACKEND_STORE_URI", "MLFLOW_TRACKING_URI"],
              help="The store it serves: SQLite (default: ./mlruns/mlflow.db) or postgresql://USER@HOST/DB. A URI "
                   "with a password is best given as MLFLOW_BACKEND_STORE_URI: every user sees the arguments.")
@click.pass_context
def server(ctx: click.Context, host: str, port: int, backend_store_uri: str | None) -> None:
    """Serve the project's MLflow store over HTTP until Ctrl-C: searches log to it with
    --tracking-uri http://HOST:PORT (or MLFLOW_TRACKING_URI), and it answers GET /health."""
    from tuner_app.tracking import store
    from tuner_app.tracking import ui as mlflow_ui

    verbose = bool(ctx.find_root().params.get("verbose"))
    store.check_uri(backend_store_uri or store.default_tracking_uri(), "--backend-store-uri")
    command = mlflow_ui.ui_command(backend_store_uri, host, port, verbose, serve_artifacts=True,
                                   option="--backend-store-uri")
    mlflow_ui.check_port_free(host, port, "tracking server")
    warning = mlflow_ui.exposure_warning(host, "tracking server")
    if warning:
        click.echo(warning, err=True)
    url = mlflow_ui.server_url(host, port)
    click.echo(f"Tracking server of {redact(backend_store_uri or store.default_tracking_uri())}: {url} "
               f"(searches: --tracking-uri {url}; health: {url}/health). Ctrl-C stops it.", err=True)
    code = mlflow_ui.serve_ui(command, verbose, url, lambda: click.echo(f"ready: {url}"))
    if code > 0:
        sys.exit(code)
