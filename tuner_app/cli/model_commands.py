"""`tuner-app export`, `predict` and `evaluate`: the chosen models."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tuner_app.cli.root import (DEFAULT_CACHE, accuracy_option, cli, comma_list, decoded_corpus, echo_json,
                                size_axis_option)
from tuner_app import outputs
from tuner_app.errors import TunerAppError
from tuner_app.serving import runtimes


def _trial_to_export(trial_dir: Path | None, run_id: str | None, select: str | None, tracking_uri: str | None,
                     experiment: str, parent: str | None, x_axis: str = "params_total",
                     accuracy: str = "float") -> tuple[Path, str | None, dict | None]:
    """(trial directory, MLflow run id, metrics) of the trial to export: --trial-dir, --run-id or --select (on
    the size axis `x_axis` and the validation accuracy of `accuracy`)."""
    from tuner_app.analysis import axes, pareto_report
    from tuner_app.tracking import runs

    given = [name for name, value in (("--trial-dir", trial_dir), ("--run-id", run_id), ("--select", select)) if value]
    if len(given) != 1:
        raise TunerAppError(f"export: give exactly one of --trial-dir, --run-id, --select (got {', '.join(given) or 'none'})")
    if trial_dir is not None:
        return trial_dir, None, None
    if run_id is not None:
        row = runs.run_info(tracking_uri, run_id)
    else:
        row = pareto_report.select(runs.trial_runs(tracking_uri, experiment, parent), select, x_axis, accuracy)
        click.echo(f"--select {select}: trial {row['trial_id']} (run {row['run_id']}), "
                   f"{x_axis} {row['metrics'][x_axis]:,.6g}, {axes.accuracy_metric(accuracy)} "
                   f"{row['metrics'][axes.accuracy_metric(accuracy)]:.4f}", err=True)
    runs.completed(row, "nothing to export")
    return Path(row["trial_dir"]), row["run_id"], row["metrics"]


def _export_samples(data_dir: Path | None, cache_dir: Path, searched: dict):
    """(the corpus, its training clips for int8 calibration, (waveforms, model label ids) to compare float and
    TFLite)), from --data or else the corpus the search trained on (its search record)."""
    from tuner_app.device import tflite

    data_dir = data_dir or _searched_corpus(searched)
    click.echo(f"Calibration and check clips: corpus {data_dir}", err=True)
    found, splits = decoded_corpus(data_dir, cache_dir)
    return (data_dir, *tflite.samples(splits, found.classes, searched.get("class_names", [])))


def _searched_corpus(searched: dict) -> Path:
    path = (searched.get("data") or {}).get("path")
    if not path:
        raise TunerAppError("the search record names no corpus: give --data CORPUS for the calibration and check clips")
    if not Path(path).is_dir():
        raise TunerAppError(f"the search's corpus {path} is gone: give --data CORPUS for the calibration and "
                            "check clips")
    return Path(path)


@cli.command("export")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Directory to create, an MLflow Model: the SavedModel, tuner_app.json, MLmodel, any .tflite files.")
@click.option("--trial-dir", type=click.Path(path_type=Path), help="The trial to export: <runs-dir>/<project>/trial_<id>.")
@click.option("--run-id", help="The MLflow run of the trial to export.")
@click.option("--select", help="Pick the trial from MLflow by validation accuracy: best | smallest-within:D | knee.")
@size_axis_option("With --select: the size that smallest-within and knee minimise (flash_bytes, ram_bytes, "
                  "latency_ms: the int8 model's on a device).")
@accuracy_option("With --select: whose validation accuracy chooses, the trained model's or its int8 conversion's.")
@click.option("--experiment", default="tuner-app", show_default=True, help="MLflow experiment --select reads.")
@click.option("--parent", help="With --select: only the trials of this search (its parent run id).")
@click.option("--register", metavar="NAME", help="Also register the logged model in the MLflow model registry.")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow store (default: SQLite in ./mlruns).")
@click.option("--force", is_flag=True, help="Replace an existing --out directory.")
@click.option("--tflite", is_flag=True, help="Also write model.tflite (waveform input).")
@click.option("--quantize", type=click.Choice(["int8"]), help="Also write model_int8.tflite and model_int8_features.tflite (the network alone, int8 "
              "features in, for microcontrollers), calibrated on training clips.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path),
              help="Corpus for the calibration and check clips (default: the one the search trained on).")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=DEFAULT_CACHE, show_default=True,
              envvar="TUNER_APP_CACHE", help="Synthetic corpus and decoded-waveform cache.")
def export_model(out: Path, trial_dir: Path | None, run_id: str | None, select: str | None, x_axis: str,
                 accuracy: str, experiment: str, parent: str | None, register: str | None, tracking_uri: str | None,
                 force: bool, tflite: bool, quantize: str | None, data_dir: Path | None, cache_dir: Path) -> None:
    """Export a trained trial (its checkpointed weights, no retraining) as a SavedModel that takes audio, in a
    directory that is also an MLflow Model; with its run, log it there as a LoggedModel."""
    from tuner_app.search import record
    from tuner_app.serving import export, export_summary

    trial_dir, run_id, metrics = _trial_to_export(trial_dir, run_id, select, tracking_uri, experiment, parent,
                                                  x_axis, accuracy)
    if register and not run_id:
        raise TunerAppError("--register needs the trial's MLflow run: use --run-id or --select")
    stores = _store_files(tracking_uri)
    outputs.check_new_directory(out.expanduser(), "--out", force, stores)  # before the slow part
    samples = {}
    if tflite or quantize:
        searched = record.read_search_record(trial_dir.expanduser().parent)
        corpus, representative, check = _export_samples(data_dir, cache_dir.expanduser(), searched)
        if quantize and not len(representative):
            raise TunerAppError(f"{corpus}: no training clips to calibrate --quantize int8 on; give --data a corpus "
                                "with a train split")
        samples = {"representative": representative if quantize else None, "check": check}
    result = export.export_trial(trial_dir, out, force=force, run_id=run_id, metrics=metrics, tflite=tflite,
                                 quantize=quantize, stores=stores, **samples)
    click.echo(export_summary.format_result(result))
    if run_id:
        _track_export(tracking_uri, run_id, trial_dir, result, metrics, register)


def _store_files(tracking_uri: str | None) -> list[Path]:
    """The MLflow store's SQLite file and artifacts, if the tracking URI names one: an export never goes there."""
    from tuner_app.tracking import store

    path = store.sqlite_path(tracking_uri or store.default_tracking_uri())
    return [path, path.parent / "artifacts"] if path else []


def _track_export(tracking_uri: str | None, run_id: str, trial_dir: Path, result, metrics: dict | None,
                  register: str | None) -> None:
    """Log the export (`result`, export_trial's ExportResult) as a LoggedModel of the trial's run, with the
    trial's params and metrics; register it as `register` (if given) with its size, accuracy and front-end."""
    from tuner_app.tracking import mlflow_model

    tags = mlflow_model.model_tags(result.metadata)
    params = {**result.metadata["hyperparameters"], "frontend_config": result.metadata["frontend"]}
    model_id = mlflow_model.log_logged_model(tracking_uri, run_id, result.path, params, metrics,
                                             name=f"{result.metadata['model']}-{trial_dir.name}", tags=tags)
    click.echo(f"Logged to MLflow run {run_id} as models:/{model_id}")
    if register:
        version = mlflow_model.register(tracking_uri, model_id, register, tags)
        click.echo(f"Registered as {register!r} version {version}: models:/{register}/{version}")


RUNTIME_OPTION = click.option(
    "--runtime", type=click.Choice(runtimes.RUNTIMES), default="saved_model", show_default=True,
    help="Which of the export's models scores: the SavedModel; model.tflite or model_int8.tflite in LiteRT; "
         "model_int8_features.tflite in LiteRT (int8-features) or in TFLite Micro (tflm), fed by the front-end.")


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top-k", default=3, show_default=True, type=click.IntRange(min=1), help="Labels per file.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@RUNTIME_OPTION
def predict(model: Path, files: tuple[Path, ...], top_k: int, output_format: str, runtime: str) -> None:
    """Top-k labels of each audio FILE (WAV/FLAC/OGG/MP3, any rate) with an exported MODEL directory."""
    from tuner_app.serving import inference

    entries = inference.predict_files(inference.load(model, runtime), files, top_k)
    for entry in entries:
        if "error" in entry:
            click.echo(f"Error: {entry['error']}", err=True)
    if output_format == "json":
        echo_json(entries)
    elif any("top" in entry for entry in entries):
        click.echo(inference.format_predictions(entries))
    if any("error" in entry for entry in entries):
        sys.exit(1)


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--data", "data_dir", required=True, type=click.Path(path_type=Path), help="Corpus directory.")
@click.option("--split", type=click.Choice(["train", "validation", "test"]), default="test", show_default=True)
@click.option("--classes", multiple=True, help="Comma-separated class folders (default: the model's classes present).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("confusion.png"), show_default=True,
              help="Where to write the confusion matrix PNG.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@RUNTIME_OPTION
def evaluate(model: Path, data_dir: Path, split: str, classes: tuple[str, ...], out: Path, output_format: str,
             runtime: str) -> None:
    """Accuracy, per-class precision and recall and the confusion matrix of MODEL on a corpus split."""
    from tuner_app.serving import inference

    out = out.expanduser()
    outputs.check_replaceable_file(out, "--out", outputs.figure_is_ours, "a figure")  # before the slow part
    evaluation = inference.evaluate(inference.load(model, runtime), data_dir, split, comma_list(classes))
    inference.write_confusion_png(evaluation, out)
    echo_json(evaluation.to_dict()) if output_format == "json" else click.echo(inference.format_evaluation(evaluation))
    click.echo(f"Confusion matrix: {out.resolve()}", err=True)


