"""`tuner-app search` and `tuner-app pareto`: run or resume a search, and analyse its front."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import click

from tuner_app.cli import numbers
from tuner_app.cli.root import DEFAULT_CACHE, accuracy_option, cli, decoded_corpus, echo_json, size_axis_option
from tuner_app.redaction import redact


@cli.command()
@click.option("--space", "space_file", default="default", show_default=True,
              help="Search space: a YAML file, or the name of one in search_spaces/ (default, cnn2d, seed_2d, ...).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), help="Corpus directory (default: the built-in synthetic corpus).")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=DEFAULT_CACHE, show_default=True,
              envvar="TUNER_APP_CACHE", help="Synthetic corpus and decoded-waveform cache.")
@click.option("--runs-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Where the tuner keeps its trials (resume reads them back).")
@click.option("--tuner", "tuner_name", type=click.Choice(["random", "bayesian", "hyperband", "grid", "pareto"]),
              help="Override the space's tuner.")
@click.option("--max-params", type=click.IntRange(min=1), help="Size budget: larger configurations are never trained.")
@click.option("--max-flash", "max_flash_kb", type=numbers.KILOBYTES,
              help="Flash budget in KB (1,024 bytes) of the int8 model: larger configurations are never trained.")
@click.option("--max-ram", "max_ram_kb", type=numbers.KILOBYTES,
              help="RAM budget in KB of the int8 model's TFLite Micro arena: larger configurations are never trained.")
@click.option("--fresh", is_flag=True, help="Start over instead of resuming the same search.")
@click.option("--dry-run", is_flag=True, help="Train nothing: list every configuration with its parameter count.")
@click.option("--trials", type=numbers.TRIALS, help="With --dry-run on a sampled space: how many to sample.")
@click.option("--seed", type=numbers.SEED, help="Seed for sampling and weight initialisation (default: the space's).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI",
              help="MLflow store: a tracking server or database URI (default: SQLite in ./mlruns).")
@click.option("--experiment", default="tuner-app", show_default=True, help="MLflow experiment of the runs.")
@click.option("--hv-reference", metavar="SIZE,ACC",
              help="Hypervolume reference point of the final analysis (default: the space's objective.hv_reference).")
@click.option("--chief", is_flag=True,
              help="Distributed search: run the oracle for the workers (no training); ends with the analysis.")
@click.option("--worker", "worker_id", metavar="ID",
              help="Distributed search: train the trials the chief hands out, as worker ID (unique per process).")
@click.option("--oracle", "oracle_address", metavar="HOST:PORT",
              help="Where the chief listens (default: KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT, else 127.0.0.1:8000).")
@click.option("--worker-timeout", type=numbers.WORKER_TIMEOUT, default=60.0, show_default=True,
              help="With --chief: seconds without a word from a worker before its trial is given to another.")
def search(space_file: str, data_dir: Path | None, cache_dir: Path, runs_dir: Path, tuner_name: str | None,
           max_params: int | None, max_flash_kb: float | None, max_ram_kb: float | None, fresh: bool,
           dry_run: bool, trials: int | None, seed: int | None,
           output_format: str, tracking_uri: str | None, experiment: str, hv_reference: str | None,
           chief: bool, worker_id: str | None, oracle_address: str | None, worker_timeout: float) -> None:
    """Search a YAML space; trials are resumed unless --fresh. Ends with the Pareto analysis.

    A search may spread over processes and machines: one `--chief` and any number of `--worker ID`, sharing
    the corpus, the cache, --runs-dir and a tracking server (`tuner-app server`); see the README."""
    from tuner_app.device import budget as device_budget
    from tuner_app.model.space import search_space
    from tuner_app.search import summary

    space = search_space.load(search_space.locate(space_file))
    reference_point = _hv_reference(hv_reference)  # a typo fails now, not after the search
    budget = device_budget.of_options(max_params, max_flash_kb, max_ram_kb)
    if dry_run:
        return _dry_run(space, data_dir, trials, seed, budget, output_format)
    tracker = _tracker(tracking_uri, experiment, search_space.locate(space_file), tuner_name, seed)
    role = _distributed_role(chief, worker_id, oracle_address, fresh, tracker.tracking_uri)
    tracker.check_reachable()  # a store that does not answer stops the search before any training
    # Progress (keras-tuner and Keras print it) goes to stderr, so stdout holds only the result.
    with contextlib.redirect_stdout(sys.stderr):
        rows, project_dir, untracked = _run_search(space, data_dir, cache_dir.expanduser(), runs_dir, tuner_name,
                                                   budget, fresh, seed, tracker, worker_timeout)
    echo_json(rows) if output_format == "json" else click.echo(summary.format_trials(rows))
    click.echo(f"Trials and their weights: {project_dir.resolve()}", err=True)
    if untracked:
        _still_untracked(tracker.tracking_uri, project_dir, role)
    if role == "worker":
        return  # the chief analyses the whole search once every worker is done
    if tracker.parent_run_id and any(row["status"] == "COMPLETED" for row in rows):
        if reference_point is None:
            reference_point = (space.objective["hv_reference"], f"{Path(space.source).name}: objective.hv_reference")
        analysis = _pareto(tracker.tracking_uri, experiment, tracker.parent_run_id, project_dir / "pareto",
                           space.objective["size"], "val", "seed", reference_point, out_option="--runs-dir",
                           accuracy=space.objective["accuracy"])
        click.echo(f"MLflow: {redact(tracker.tracking_uri)}, experiment {experiment!r}, run {tracker.parent_run_id} "
                   f"(browse with `tuner-app ui`)\nPareto front: {analysis.csv_path}, {analysis.png_path}", err=True)


def _pareto(tracking_uri: str | None, experiment: str, parent: str | None, out_dir: Path, x: str, y: str,
            reference: str | None, hv_reference: tuple | None = None, out_option: str = "--out",
            accuracy: str = "float"):
    """Analyse the runs of an experiment (or of one search), tag them, log the CSV, PNG and hypervolume (with
    its reference point) on the search's parent run, print the front. hv_reference: (point, where it comes
    from); by default the one recorded on the search's parent run for this axis, else the axis's fixed one."""
    from tuner_app.analysis import front_table, pareto_report
    from tuner_app.tracking import runs

    rows = runs.trial_runs(tracking_uri, experiment, parent)
    if hv_reference is None and parent:
        recorded = runs.recorded_hv_reference(tracking_uri, parent, x)
        hv_reference = (recorded, "recorded on the search's parent run") if recorded else None
    point, source = hv_reference or (None, "")
    analysis = pareto_report.analyse(rows, out_dir, x=x, y=y, reference=reference, hv_reference=point,
                                     reference_source=source, out_option=out_option, accuracy=accuracy)
    runs.tag_pareto(tracking_uri, [row["run_id"] for row in analysis.front],
                        [row["run_id"] for row in analysis.all_rows])
    parents = {row["parent_run_id"] for row in analysis.all_rows}
    if parent or len(parents) == 1:
        parent = parent or parents.pop()
        runs.log_artifacts(tracking_uri, parent, [analysis.csv_path, analysis.png_path, analysis.json_path])
        runs.record_hypervolume(tracking_uri, parent, x, analysis.reference_point, analysis.hypervolume, accuracy)
    click.echo(front_table.format_table(analysis), err=True)
    return analysis


def _hv_reference(text: str | None) -> tuple | None:
    """`--hv-reference SIZE,ACC` as ((size, accuracy), "--hv-reference"); None when the option was not given."""
    from tuner_app.model.space import search_space

    if text is None:
        return None
    return search_space.checked_reference(text.split(","), f"--hv-reference {text!r}"), "--hv-reference"


def _class_count(data_dir: Path | None) -> int:
    """How many classes a dry run sizes the output layer for: --data's (a scan, no decoding), else 16."""
    from tuner_app.data import corpus

    if data_dir is None:
        count, source = len(corpus.SEED_WORDS), "the built-in corpus's words"
    else:
        count, source = len(corpus.scan(data_dir).classes), f"the class folders of {data_dir}"
    click.echo(f"Sizes assume {count} classes ({source}).", err=True)
    return count


@cli.command("pareto")
@click.option("--experiment", default="tuner-app", show_default=True, help="MLflow experiment to read.")
@click.option("--parent", "parent_run_id", help="Only the trials of this search (its parent run id).")
@size_axis_option("Size axis (log scale); flash_bytes, ram_bytes and latency_ms are the int8 model's on a device.")
@click.option("--y", "y_axis", type=click.Choice(["val", "test"]), default="val", show_default=True,
              help="Accuracy shown; the front is always chosen on validation accuracy (of --accuracy).")
@accuracy_option("Whose accuracy chooses the front: the trained model's, or its int8 conversion's (runs without it "
                 "are left out).")
@click.option("--reference", type=click.Choice(["seed"]), help="Overlay the seed study's published points.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("pareto"), show_default=True,
              help="Directory for pareto.csv and pareto.png.")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow store (default: SQLite in ./mlruns).")
@click.option("--hv-reference", metavar="SIZE,ACC",
              help="Hypervolume reference point (default: the one the search recorded, else a fixed one per axis).")
def pareto_command(experiment: str, parent_run_id: str | None, x_axis: str, y_axis: str, accuracy: str,
                   reference: str | None, out_dir: Path, tracking_uri: str | None, hv_reference: str | None) -> None:
    """Pareto front of accuracy against size, read back from MLflow; tags runs pareto=true/false."""
    analysis = _pareto(tracking_uri, experiment, parent_run_id, out_dir, x_axis, y_axis, reference,
                       _hv_reference(hv_reference), accuracy=accuracy)
    click.echo(f"Wrote {analysis.csv_path} and {analysis.png_path}", err=True)


def _dry_run(space, data_dir: Path | None, trials: int | None, seed: int | None, budget, output_format: str) -> None:
    """Every configuration (or `trials` samples) with its size, and its int8 flash and RAM under such a budget."""
    from tuner_app.device import budget as device_budget
    from tuner_app.model.architecture import space_sizes
    from tuner_app.search import summary

    n_classes = _class_count(data_dir)
    rows = space_sizes.dry_run(space, trials=trials, seed=seed or 0, max_params=budget.params, n_classes=n_classes)
    if budget.on_device:
        rows = device_budget.with_device_costs(space, rows, budget, n_classes)
    if output_format == "json":
        return echo_json(rows)
    click.echo(summary.format_dry_run(rows, budget))
    # sampled rows may all miss; say if the space does
    space_sizes.check_budget(space, budget.params, n_classes=n_classes)
    device_budget.check_device_budget(space, budget, n_classes)


def _tracker(tracking_uri: str | None, experiment: str, space_path: Path, tuner_name, seed):
    """The MLflow observer of a search, with the command line's choices as parent-run params (the budget: the
    tracker reads it from the tuner)."""
    from tuner_app.tracking import tracker

    return tracker.MLflowTracker(tracking_uri, experiment, space_path, {"tuner": tuner_name, "seed": seed})


def _distributed_role(chief: bool, worker_id: str | None, address: str | None, fresh: bool, tracking_uri: str) -> str:
    """Set keras-tuner's variables for --chief / --worker; the role this process plays (search/distribution.py)."""
    from tuner_app.errors import TunerAppError
    from tuner_app.search import distribution
    from tuner_app.tracking import store

    os.environ.update(distribution.environment(chief, worker_id, address))
    role = distribution.role()
    if role == "solo":
        return role
    if role == "worker" and fresh:
        raise TunerAppError("--fresh: only the chief may start a distributed search over")
    store.check_shareable(tracking_uri, f"--{role}")
    warning = distribution.exposure_warning()
    if warning:
        click.echo(warning, err=True)
    return role


def _run_search(space, data_dir, cache_dir, runs_dir, tuner_name, budget, fresh, seed, tracker, worker_timeout):
    """(summary rows, project directory) of the search, run or resumed."""
    from tuner_app.data import cache
    from tuner_app.search import progress, summary, run as search_run

    found, splits = decoded_corpus(data_dir, cache_dir)
    noise = cache.noise_bank(found.background_noise)
    data = {"path": str(found.root), "fingerprint": found.fingerprint(), "counts": found.counts(),
            **found.speaker_summary()}  # resume compares only data["fingerprint"] (search/fingerprint.py)
    tuner = search_run.run_search(space, splits, runs_dir, tuner_name=tuner_name, budget=budget,
                              fresh=fresh, seed=seed, noise=noise, class_names=found.classes, data=data,
                              observers=[progress.ProgressReporter(), tracker], worker_timeout=worker_timeout)
    return summary.summary_rows(tuner), Path(tuner.project_dir), tracker in tuner.observers.paused


def _still_untracked(tracking_uri: str, project_dir: Path, role: str) -> None:
    """The store went away mid-search and has not come back: say so, and how to finish, rather than fail later
    in the Pareto analysis on MLflow's own error."""
    from tuner_app.errors import TunerAppError

    then = "" if role == "worker" else ", and the Pareto analysis made,"
    raise TunerAppError(f"MLflow store {redact(tracking_uri)} still does not answer: the finished trials are kept in "
                        f"{project_dir} and will be logged{then} when the same command runs again with it answering")


