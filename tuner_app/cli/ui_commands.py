"""`tuner-app ui`: the MLflow UI on the project's store, opened on an experiment's runs."""

from __future__ import annotations

import sys

import click
from click.core import ParameterSource

from tuner_app.cli.root import cli
from tuner_app.redaction import redact


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; 0.0.0.0 exposes it to other machines (and warns).")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow store to show (default: SQLite in ./mlruns).")
@click.option("--experiment", default="tuner-app", show_default=True,
              help="The experiment whose runs the UI opens on (the default one is created if missing).")
@click.option("--open/--no-open", "open_browser", default=True, show_default=True,
              help="Open the runs view in the desktop's browser once the server answers.")
@click.pass_context
def ui(ctx: click.Context, host: str, port: int, tracking_uri: str | None, experiment: str,
       open_browser: bool) -> None:
    """Start the MLflow UI on the project's runs; Ctrl-C stops it. The server's own logging shows with
    --verbose (before the command)."""
    from tuner_app.tracking import store
    from tuner_app.tracking import ui as mlflow_ui

    verbose = bool(ctx.find_root().params.get("verbose"))
    store.check_uri(tracking_uri or store.default_tracking_uri())  # a bad --tracking-uri fails first
    command = mlflow_ui.ui_command(tracking_uri, host, port, verbose)  # and one that is a tracking server
    mlflow_ui.check_port_free(host, port)
    warning = mlflow_ui.exposure_warning(host, "MLflow UI")
    if warning:
        click.echo(warning, err=True)
    create = ctx.get_parameter_source("experiment") is ParameterSource.DEFAULT  # a named one must exist
    experiment_id = mlflow_ui.prepare_runs_view(tracking_uri, experiment, create)
    url = mlflow_ui.runs_view_url(host, port, experiment_id)
    click.echo(f"MLflow UI of {redact(tracking_uri or store.default_tracking_uri())}: {url}")
    click.echo("Ctrl-C stops it.", err=True)
    opener = (lambda: mlflow_ui.open_in_browser(url)) if open_browser else None
    code = mlflow_ui.serve_ui(command, verbose, mlflow_ui.server_url(host, port), opener)
    if code > 0:
        sys.exit(code)
