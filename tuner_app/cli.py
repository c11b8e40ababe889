"""The `tuner-app` command line. The only module that imports click.

Heavy modules (TensorFlow, MLflow) are imported inside each command, after the group has
decided how quiet TensorFlow's start-up should be.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
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
    from tuner_app import synth

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
    from tuner_app import corpus

    found = corpus.scan(directory, _class_list(classes), unknown=unknown)
    click.echo(corpus.format_stats(corpus.stats(found), as_json=output_format == "json"))


@data.command("import-fsdd")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
def data_import_fsdd(src: Path, out: Path) -> None:
    """Copy the Free Spoken Digit Dataset at SRC into the Speech Commands layout at OUT."""
    from tuner_app import corpus

    imported = corpus.import_fsdd(src, out)
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
    """Decode a corpus once into the cache every trial reads, and print its counts."""
    cache_dir = cache_dir.expanduser()
    found, decoded = _decoded_corpus(data_dir, cache_dir, _class_list(classes), unknown, strict)
    for split, clips in decoded.items():
        click.echo(f"{split:>10}: {len(clips)} clips decoded, {len(clips.skipped)} skipped")
    click.echo(f"Corpus {found.root} ({len(found.classes)} classes), decoded cache in {cache_dir / 'decoded'}")


def _varying(rows: list[dict]) -> list[str]:
    """Hyperparameter names whose value differs between configurations: the table's columns."""
    names = list(rows[0]["hyperparameters"]) if rows else []
    return [n for n in names if len({repr(r["hyperparameters"][n]) for r in rows}) > 1] or names[:3]


def _echo_dry_run(rows: list[dict]) -> None:
    columns = _varying(rows)
    click.echo("  ".join(f"{name:>14}" for name in columns) + f"  {'params':>12}")
    for row in rows:
        cells = "  ".join(f"{str(row['hyperparameters'][name]):>14}" for name in columns)
        size = f"{row['params']:>12,}" if row["params"] is not None else f"  infeasible: {row['infeasible']}"
        click.echo(f"{cells}  {size}")
    feasible = sum(1 for row in rows if row["params"] is not None)
    click.echo(f"{len(rows)} configurations, {feasible} feasible")


def _echo_trials(rows: list[dict]) -> None:
    columns = _varying(rows)
    click.echo("  ".join(f"{name:>14}" for name in ["trial", "status", *columns, "params", "val_acc", "test_acc"]))
    for row in rows:
        scores = [f"{row[key]:.4f}" if row[key] is not None else "-" for key in ("val_accuracy", "test_accuracy")]
        cells = [row["trial_id"], row["status"], *(row["hyperparameters"].get(n) for n in columns),
                 f"{row['params']:,}" if row["params"] is not None else "-", *scores]
        click.echo("  ".join(f"{str(cell):>14}" for cell in cells))


@cli.command()
@click.option("--space", "space_file", type=click.Path(path_type=Path), default=Path("search_spaces/smoke.yaml"),
              show_default=True, help="Search space YAML.")
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
def search(space_file: Path, data_dir: Path | None, cache_dir: Path, runs_dir: Path, tuner_name: str | None,
           max_params: int | None, fresh: bool, dry_run: bool, trials: int | None, seed: int | None,
           output_format: str) -> None:
    """Search a YAML space; trials are resumed unless --fresh."""
    from tuner_app import hypermodel, spaces

    space = spaces.load(space_file)
    if dry_run:
        rows = hypermodel.dry_run(space, trials=trials, seed=seed or 0)
        return _echo_json(rows) if output_format == "json" else _echo_dry_run(rows)
    # Progress (keras-tuner and Keras print it) goes to stderr, so stdout holds only the result.
    with contextlib.redirect_stdout(sys.stderr):
        rows = _run_search(space, data_dir, cache_dir.expanduser(), runs_dir, tuner_name, max_params, fresh, seed)
    _echo_json(rows) if output_format == "json" else _echo_trials(rows)
    click.echo(f"Trials and their weights: {runs_dir.resolve()}", err=True)


def _decoded_corpus(data_dir: Path | None, cache_dir: Path, classes=None, unknown=False, strict=False):
    """(corpus, decoded splits) of --data, or of the built-in corpus made once into the cache."""
    from tuner_app import corpus, pipeline, synth

    if data_dir is None:
        click.echo(f"No --data: using the built-in synthetic corpus (cached under {cache_dir}).", err=True)
        data_dir = synth.default_corpus(cache_dir)
    found = corpus.scan(data_dir, classes, unknown=unknown)
    return found, pipeline.decode_corpus(found, cache_dir, strict=strict)


def _run_search(space, data_dir, cache_dir, runs_dir, tuner_name, max_params, fresh, seed) -> list[dict]:
    from tuner_app import pipeline, progress, results, search

    found, splits = _decoded_corpus(data_dir, cache_dir)
    noise = pipeline.noise_bank(found.background_noise)
    data = {"path": str(found.root), "fingerprint": found.fingerprint(), "counts": found.counts()}
    with _sigterm_interrupts():
        tuner = search.run_search(space, splits, runs_dir, tuner_name=tuner_name, max_params=max_params,
                                  fresh=fresh, seed=seed, noise=noise, class_names=found.classes, data=data,
                                  observers=[progress.ProgressReporter()])
    return results.summary_rows(tuner)


@contextlib.contextmanager
def _sigterm_interrupts():
    """`kill` ends a search like Ctrl-C does: the running trial is marked KILLED, finished ones stay."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main() -> None:
    cli(prog_name="tuner-app")


if __name__ == "__main__":
    main()
