"""The `tuner-app` command line. The only module that imports click.

Heavy modules (TensorFlow, MLflow) are imported inside each command, after the group has
decided how quiet TensorFlow's start-up should be.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import warnings
from pathlib import Path

import click

from tuner_app import __version__
from tuner_app.errors import TunerAppError

DEFAULT_CACHE = Path("~/.cache/tuner-app")


def _quiet_tensorflow() -> None:
    # oneDNN/CUDA/TensorRT banners come from TF's C++ logger before any Python code of ours runs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


class _Group(click.Group):
    """Turns a TunerAppError into one line on stderr and exit code 2, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TunerAppError as err:
            click.echo(f"Error: {err}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tuner-app")
@click.option("--verbose", is_flag=True, help="Show TensorFlow's start-up and debug logging.")
def cli(verbose: bool) -> None:
    """Search compact CNNs for 1-second speech-command clips, tracked in MLflow."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    if not verbose:
        _quiet_tensorflow()


@cli.group()
def data() -> None:
    """Make, import and inspect corpora in the Speech Commands layout."""


@data.command("synth")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--per-class", default=200, show_default=True, type=click.IntRange(min=1), help="Clips per word.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Same seed, same bytes.")
def data_synth(out: Path, per_class: int, seed: int) -> None:
    """Speak the 16 seed words with espeak-ng into a new Speech Commands corpus OUT."""
    from tuner_app.data import synth

    summary = synth.synthesize(out, per_class=per_class, seed=seed)
    for split, clips in summary.clips.items():
        click.echo(f"{split:<10} {clips:>6} clips  {summary.speakers[split]:>4} speakers")
    click.echo(f"wrote {summary.out} in {summary.seconds:.1f} s")


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=False))


def _class_list(values: tuple[str, ...]) -> tuple[str, ...] | None:
    """`--classes a,b --classes c` -> ('a', 'b', 'c'); None when the option was not given."""
    names = tuple(name.strip() for value in values for name in value.split(",") if name.strip())
    return names or None


@data.command("stats")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--classes", multiple=True, help="Comma-separated class folders (default: the 16 seed words).")
@click.option("--unknown", is_flag=True, help="Count other word folders as the _unknown_ class.")
def data_stats(directory: Path, output_format: str, classes: tuple[str, ...], unknown: bool) -> None:
    """Clip counts per class and split, sample rates, durations and unreadable files of DIRECTORY."""
    from tuner_app.data import corpus, stats

    found = corpus.scan(directory, _class_list(classes), unknown=unknown)
    click.echo(stats.format_stats(stats.stats(found), as_json=output_format == "json"))


@data.command("import-fsdd")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
def data_import_fsdd(src: Path, out: Path) -> None:
    """Copy the Free Spoken Digit Dataset at SRC into the Speech Commands layout at OUT."""
    from tuner_app.data import corpus, fsdd

    imported = fsdd.import_fsdd(src, out)
    sizes = {split: len(imported.split(split)) for split in corpus.SPLITS}
    click.echo(f"imported {len(imported.clips)} clips into {out} ({', '.join(f'{k} {v}' for k, v in sizes.items())})")


@data.command("prepare")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), help="Corpus directory (default: the built-in synthetic corpus).")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=DEFAULT_CACHE, show_default=True,
              envvar="TUNER_APP_CACHE", help="Synthetic corpus and decoded-waveform cache.")
@click.option("--strict", is_flag=True, help="Fail on unreadable files instead of skipping them.")
@click.option("--classes", multiple=True, help="Comma-separated class folders (default: the seed words present).")
@click.option("--unknown", is_flag=True, help="Map other word folders to the _unknown_ class.")
def data_prepare(data_dir: Path | None, cache_dir: Path, strict: bool, classes: tuple[str, ...], unknown: bool) -> None:
    """Decode a corpus once into the cache every trial reads, check its background noise, print its counts."""
    from tuner_app.constants import SAMPLE_RATE
    from tuner_app.data import cache

    cache_dir = cache_dir.expanduser()
    found, decoded = _decoded_corpus(data_dir, cache_dir, _class_list(classes), unknown, strict)
    noise = cache.noise_bank(found.background_noise, strict)
    for split, clips in decoded.items():
        click.echo(f"{split:>10}: {len(clips)} clips decoded, {len(clips.skipped)} skipped")
    click.echo(f"{'noise':>10}: {len(noise) / SAMPLE_RATE:.1f} s from {len(found.background_noise)} file(s)")
    click.echo(f"Corpus {found.root} ({len(found.classes)} classes), decoded cache in {cache_dir / 'decoded'}")


@cli.command()
@click.option("--space", "space_file", default="default", show_default=True,
              help="Search space: a YAML file, or the name of one in search_spaces/ (default, cnn2d, seed_2d, ...).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path), help="Corpus directory (default: the built-in synthetic corpus).")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=DEFAULT_CACHE, show_default=True,
              envvar="TUNER_APP_CACHE", help="Synthetic corpus and decoded-waveform cache.")
@click.option("--runs-dir", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Where the tuner keeps its trials (resume reads them back).")
@click.option("--tuner", "tuner_name", type=click.Choice(["random", "bayesian", "hyperband", "grid"]),
              help="Override the space's tuner.")
@click.option("--max-params", type=click.IntRange(min=1), help="Size budget: larger configurations are never trained.")
@click.option("--fresh", is_flag=True, help="Start over instead of resuming the same search.")
@click.option("--dry-run", is_flag=True, help="Train nothing: list every configuration with its parameter count.")
@click.option("--trials", type=click.IntRange(min=1), help="With --dry-run on a sampled space: how many to sample.")
@click.option("--seed", type=int, help="Seed for sampling and weight initialisation (default: the space's).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI",
              help="MLflow store: a tracking server or database URI (default: SQLite in ./mlruns).")
@click.option("--experiment", default="tuner-app", show_default=True, help="MLflow experiment of the runs.")
@click.option("--hv-reference", metavar="SIZE,ACC",
              help="Fixed hypervolume reference point of the final analysis (default: 10x the largest size, 0).")
def search(space_file: str, data_dir: Path | None, cache_dir: Path, runs_dir: Path, tuner_name: str | None,
           max_params: int | None, fresh: bool, dry_run: bool, trials: int | None, seed: int | None,
           output_format: str, tracking_uri: str | None, experiment: str, hv_reference: str | None) -> None:
    """Search a YAML space; trials are resumed unless --fresh. Ends with the Pareto analysis."""
    from tuner_app.model import configurations, spaces
    from tuner_app.search import summary

    space = spaces.load(spaces.locate(space_file))
    reference_point = _hv_reference(hv_reference)  # a typo fails now, not after the search
    if dry_run:
        n_classes = _class_count(data_dir)
        rows = configurations.dry_run(space, trials=trials, seed=seed or 0, max_params=max_params,
                                      n_classes=n_classes)
        if output_format == "json":
            return _echo_json(rows)
        click.echo(summary.format_dry_run(rows, max_params))
        # sampled rows may all miss; say if the space does
        return configurations.check_budget(space, max_params, n_classes=n_classes)
    tracker = _tracker(tracking_uri, experiment, spaces.locate(space_file), tuner_name, max_params, seed)
    # Progress (keras-tuner and Keras print it) goes to stderr, so stdout holds only the result.
    with contextlib.redirect_stdout(sys.stderr):
        rows, project_dir = _run_search(space, data_dir, cache_dir.expanduser(), runs_dir, tuner_name, max_params,
                                        fresh, seed, tracker)
    _echo_json(rows) if output_format == "json" else click.echo(summary.format_trials(rows))
    click.echo(f"Trials and their weights: {project_dir.resolve()}", err=True)
    if tracker.parent_run_id and any(row["status"] == "COMPLETED" for row in rows):
        analysis = _pareto(tracker.tracking_uri, experiment, tracker.parent_run_id, project_dir / "pareto",
                           "params_total", "val", "seed", reference_point)
        click.echo(f"MLflow: {tracker.tracking_uri}, experiment {experiment!r}, run {tracker.parent_run_id} "
                   f"(browse with `tuner-app ui`)\nPareto front: {analysis.csv_path}, {analysis.png_path}", err=True)


def _pareto(tracking_uri: str | None, experiment: str, parent: str | None, out_dir: Path, x: str, y: str,
            reference: str | None, hv_reference: tuple[float, float] | None = None):
    """Analyse the runs of an experiment (or of one search), tag them, log the CSV, PNG and hypervolume (with
    its reference point) on the search's parent run, print the front."""
    from tuner_app.analysis import pareto
    from tuner_app.tracking import runs

    rows = runs.trial_runs(tracking_uri, experiment, parent)
    analysis = pareto.analyse(rows, out_dir, x=x, y=y, reference=reference, hv_reference=hv_reference)
    runs.tag_pareto(tracking_uri, [row["run_id"] for row in analysis.front],
                        [row["run_id"] for row in analysis.all_rows])
    parents = {row["parent_run_id"] for row in analysis.all_rows}
    if parent or len(parents) == 1:
        parent = parent or parents.pop()
        runs.log_artifacts(tracking_uri, parent, [analysis.csv_path, analysis.png_path, analysis.json_path])
        runs.record_hypervolume(tracking_uri, parent, x, analysis.reference_point, analysis.hypervolume)
    click.echo(pareto.format_table(analysis), err=True)
    return analysis


def _hv_reference(text: str | None) -> tuple[float, float] | None:
    """`--hv-reference SIZE,ACC` as (size, accuracy); None when the option was not given."""
    from tuner_app.analysis import pareto

    if text is None:
        return None
    try:
        return pareto.checked_reference(text.split(","))
    except TunerAppError:
        raise TunerAppError(f"--hv-reference {text!r}: {pareto.REFERENCE_HELP}") from None


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
@click.option("--x", "x_axis", type=click.Choice(["params_total", "macs", "model_bytes"]), default="params_total",
              show_default=True, help="Size axis (log scale).")
@click.option("--y", "y_axis", type=click.Choice(["val", "test"]), default="val", show_default=True,
              help="Accuracy shown; the front is always chosen on validation accuracy.")
@click.option("--reference", type=click.Choice(["seed"]), help="Overlay the seed study's published points.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("pareto"), show_default=True,
              help="Directory for pareto.csv and pareto.png.")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow store (default: SQLite in ./mlruns).")
@click.option("--hv-reference", metavar="SIZE,ACC",
              help="Fixed hypervolume reference point, to compare searches (default: 10x the largest size, 0).")
def pareto_command(experiment: str, parent_run_id: str | None, x_axis: str, y_axis: str, reference: str | None,
                   out_dir: Path, tracking_uri: str | None, hv_reference: str | None) -> None:
    """Pareto front of accuracy against size, read back from MLflow; tags runs pareto=true/false."""
    analysis = _pareto(tracking_uri, experiment, parent_run_id, out_dir, x_axis, y_axis, reference,
                       _hv_reference(hv_reference))
    click.echo(f"Wrote {analysis.csv_path} and {analysis.png_path}", err=True)


def _trial_to_export(trial_dir: Path | None, run_id: str | None, select: str | None, tracking_uri: str | None,
                     experiment: str, parent: str | None) -> tuple[Path, str | None, dict | None]:
    """(trial directory, MLflow run id, metrics) of the trial to export: --trial-dir, --run-id or --select."""
    from tuner_app.analysis import pareto
    from tuner_app.tracking import runs

    given = [name for name, value in (("--trial-dir", trial_dir), ("--run-id", run_id), ("--select", select)) if value]
    if len(given) != 1:
        raise TunerAppError(f"export: give exactly one of --trial-dir, --run-id, --select (got {', '.join(given) or 'none'})")
    if trial_dir is not None:
        return trial_dir, None, None
    if run_id is not None:
        row = runs.run_info(tracking_uri, run_id)
    else:
        row = pareto.select(runs.trial_runs(tracking_uri, experiment, parent), select)
        click.echo(f"--select {select}: trial {row['trial_id']} (run {row['run_id']}), "
                   f"{int(row['metrics']['params_total']):,} params, "
                   f"val_acc {row['metrics']['best_val_accuracy']:.4f}", err=True)
    if row.get("outcome") != "COMPLETED":
        raise TunerAppError(f"run {row['run_id']}: trial {row['trial_id']} did not finish ({row.get('outcome')}); "
                            "nothing to export")
    return Path(row["trial_dir"]), row["run_id"], row["metrics"]


def _export_samples(data_dir: Path | None, cache_dir: Path, searched: dict):
    """(training clips for int8 calibration, (waveforms, model label ids) to compare float and TFLite), from
    --data or else the corpus the search trained on (its search record)."""
    from tuner_app.serving import tflite

    data_dir = data_dir or _searched_corpus(searched)
    click.echo(f"Calibration and check clips: corpus {data_dir}", err=True)
    found, splits = _decoded_corpus(data_dir, cache_dir)
    return tflite.samples(splits, found.classes, searched.get("class_names", []))


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
              help="Directory to create: the SavedModel, tuner_app.json and any .tflite files.")
@click.option("--trial-dir", type=click.Path(path_type=Path), help="The trial to export: <runs-dir>/<project>/trial_<id>.")
@click.option("--run-id", help="The MLflow run of the trial to export.")
@click.option("--select", help="Pick the trial from MLflow by validation accuracy: best | smallest-within:D | knee.")
@click.option("--experiment", default="tuner-app", show_default=True, help="MLflow experiment --select reads.")
@click.option("--parent", help="With --select: only the trials of this search (its parent run id).")
@click.option("--register", metavar="NAME", help="Also register the export in the MLflow model registry.")
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow store (default: SQLite in ./mlruns).")
@click.option("--force", is_flag=True, help="Replace an existing --out directory.")
@click.option("--tflite", is_flag=True, help="Also write model.tflite (waveform input).")
@click.option("--quantize", type=click.Choice(["int8"]), help="Also write model_int8.tflite, calibrated on training clips.")
@click.option("--data", "data_dir", type=click.Path(path_type=Path),
              help="Corpus for the calibration and check clips (default: the one the search trained on).")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=DEFAULT_CACHE, show_default=True,
              envvar="TUNER_APP_CACHE", help="Synthetic corpus and decoded-waveform cache.")
def export_model(out: Path, trial_dir: Path | None, run_id: str | None, select: str | None, experiment: str,
                 parent: str | None, register: str | None, tracking_uri: str | None, force: bool, tflite: bool,
                 quantize: str | None, data_dir: Path | None, cache_dir: Path) -> None:
    """Export a trained trial (its checkpointed weights, no retraining) as a SavedModel that takes audio."""
    from tuner_app.search import record
    from tuner_app.serving import export
    from tuner_app.tracking import runs

    trial_dir, run_id, metrics = _trial_to_export(trial_dir, run_id, select, tracking_uri, experiment, parent)
    if register and not run_id:
        raise TunerAppError("--register needs the trial's MLflow run: use --run-id or --select")
    samples = {}
    if tflite or quantize:
        searched = record.read_search_record(trial_dir.expanduser().parent)
        representative, check = _export_samples(data_dir, cache_dir.expanduser(), searched)
        samples = {"representative": representative if quantize else None, "check": check}
    result = export.export_trial(trial_dir, out, force=force, run_id=run_id, metrics=metrics, tflite=tflite,
                                 quantize=quantize, **samples)
    click.echo(export.format_result(result))
    if run_id:
        uri = runs.log_model_dir(tracking_uri, run_id, result.path)
        click.echo(f"Logged to MLflow run {run_id}: {uri}")
    if register:
        version = runs.register_model(tracking_uri, run_id, "exported_model", register)
        click.echo(f"Registered as {register!r} version {version}")


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--top-k", default=3, show_default=True, type=click.IntRange(min=1), help="Labels per file.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def predict(model: Path, files: tuple[Path, ...], top_k: int, output_format: str) -> None:
    """Top-k labels of each audio FILE (WAV/FLAC/OGG/MP3, any rate) with an exported MODEL directory."""
    from tuner_app.serving import inference

    entries = inference.predict_files(inference.load(model), files, top_k)
    for entry in entries:
        if "error" in entry:
            click.echo(f"Error: {entry['error']}", err=True)
    if output_format == "json":
        _echo_json(entries)
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
def evaluate(model: Path, data_dir: Path, split: str, classes: tuple[str, ...], out: Path, output_format: str) -> None:
    """Accuracy, per-class precision and recall and the confusion matrix of MODEL on a corpus split."""
    from tuner_app.serving import inference

    evaluation = inference.evaluate(inference.load(model), data_dir, split, _class_list(classes))
    inference.write_confusion_png(evaluation, out)
    _echo_json(evaluation.to_dict()) if output_format == "json" else click.echo(inference.format_evaluation(evaluation))
    click.echo(f"Confusion matrix: {out.resolve()}", err=True)


def _decoded_corpus(data_dir: Path | None, cache_dir: Path, classes=None, unknown=False, strict=False):
    """(corpus, decoded splits) of --data, or of the built-in corpus made once into the cache."""
    from tuner_app.data import cache, corpus, synth

    if data_dir is None:
        click.echo(f"No --data: using the built-in synthetic corpus (cached under {cache_dir}).", err=True)
        data_dir = synth.default_corpus(cache_dir)
    found = corpus.scan(data_dir, classes, unknown=unknown)
    return found, cache.decode_corpus(found, cache_dir, strict=strict)


def _tracker(tracking_uri: str | None, experiment: str, space_path: Path, tuner_name, max_params, seed):
    """The MLflow observer of a search, with the command line's choices as parent-run params."""
    from tuner_app.tracking import tracker

    return tracker.MLflowTracker(tracking_uri, experiment, space_path,
                                  {"tuner": tuner_name, "max_params": max_params, "seed": seed})


def _run_search(space, data_dir, cache_dir, runs_dir, tuner_name, max_params, fresh, seed, tracker):
    """(summary rows, project directory) of the search, run or resumed."""
    from tuner_app.data import cache
    from tuner_app.search import progress, summary, tuners

    found, splits = _decoded_corpus(data_dir, cache_dir)
    noise = cache.noise_bank(found.background_noise)
    data = {"path": str(found.root), "fingerprint": found.fingerprint(), "counts": found.counts()}
    tuner = tuners.run_search(space, splits, runs_dir, tuner_name=tuner_name, max_params=max_params,
                              fresh=fresh, seed=seed, noise=noise, class_names=found.classes, data=data,
                              observers=[progress.ProgressReporter(), tracker])
    return summary.summary_rows(tuner), Path(tuner.project_dir)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0 exposes it).")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow store to show (default: SQLite in ./mlruns).")
def ui(host: str, port: int, tracking_uri: str | None) -> None:
    """Start the MLflow UI on the project's runs; Ctrl-C stops it."""
    from tuner_app.tracking import store
    from tuner_app.tracking import ui as mlflow_ui

    command = mlflow_ui.ui_command(tracking_uri, host, port)  # a bad --tracking-uri fails before the banner
    click.echo(f"MLflow UI of {tracking_uri or store.default_tracking_uri()} on http://{host}:{port} "
               "(Ctrl-C stops it)")
    code = mlflow_ui.serve_ui(command)
    if code > 0:
        sys.exit(code)


def main() -> None:
    cli(prog_name="tuner-app")


if __name__ == "__main__":
    main()
