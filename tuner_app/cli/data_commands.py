"""`tuner-app data ...`: make, import, inspect and decode corpora."""

from __future__ import annotations

from pathlib import Path

import click

from tuner_app.cli import numbers
from tuner_app.cli.root import DEFAULT_CACHE, comma_list, cli, decoded_corpus

PERCENT = numbers.FiniteFloatRange(0, 100)  # data split's --validation-pct and --testing-pct


@cli.group()
def data() -> None:
    """Make, import and inspect corpora in the Speech Commands layout."""


@data.command("synth")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--per-class", default=200, show_default=True, type=numbers.CLIPS_PER_WORD, help="Clips per word.")
@click.option("--seed", default=0, show_default=True, type=numbers.SEED, help="Same seed, same bytes.")
def data_synth(out: Path, per_class: int, seed: int) -> None:
    """Speak the 16 seed words with espeak-ng into a new Speech Commands corpus OUT."""
    from tuner_app.data import synth

    summary = synth.synthesize(out, per_class=per_class, seed=seed)
    for split, clips in summary.clips.items():
        click.echo(f"{split:<10} {clips:>6} clips  {summary.speakers[split]:>4} speakers")
    click.echo(f"wrote {summary.out} in {summary.seconds:.1f} s")


@data.command("stats")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--classes", multiple=True, help="Comma-separated class folders (default: the 16 seed words).")
@click.option("--unknown", is_flag=True, help="Count other word folders as the _unknown_ class.")
def data_stats(directory: Path, output_format: str, classes: tuple[str, ...], unknown: bool) -> None:
    """Clip counts per class and split, sample rates, durations and unreadable files of DIRECTORY."""
    from tuner_app.data import corpus, stats

    found = corpus.scan(directory, comma_list(classes), unknown=unknown)
    click.echo(stats.format_stats(stats.stats(found), as_json=output_format == "json"))


@data.command("import-fsdd")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--split", "split_rule", type=click.Choice(["takes", "speakers"]), default="takes", show_default=True,
              help="takes: the dataset's own split (every speaker in every split); speakers: validation george, "
                   "test jackson, train the other four.")
def data_import_fsdd(src: Path, out: Path, split_rule: str) -> None:
    """Copy the Free Spoken Digit Dataset at SRC into the Speech Commands layout at OUT."""
    from tuner_app.data import corpus, fsdd

    imported = fsdd.import_fsdd(src, out, split=split_rule)
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
    from tuner_app.data import cache, trainability

    cache_dir = cache_dir.expanduser()
    found, decoded = decoded_corpus(data_dir, cache_dir, comma_list(classes), unknown, strict)
    labels = {split: clips.labels for split, clips in decoded.items()}
    trainability.warn(str(found.root), trainability.problems(trainability.counts_of_labels(found.classes, labels)))
    noise = cache.noise_bank(found.background_noise, strict)
    for split, clips in decoded.items():
        click.echo(f"{split:>10}: {len(clips)} clips decoded, {len(clips.skipped)} skipped")
    click.echo(f"{'noise':>10}: {len(noise) / SAMPLE_RATE:.1f} s from {len(found.background_noise)} file(s)")
    click.echo(f"Corpus {found.root} ({len(found.classes)} classes), decoded cache in {cache_dir / 'decoded'}")



@data.command("split")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--validation-speakers", multiple=True, help="Comma-separated speakers held out for validation.")
@click.option("--test-speakers", multiple=True, help="Comma-separated speakers held out for test.")
@click.option("--validation-pct", type=PERCENT, help="Speakers to validation by the Speech Commands hash.")
@click.option("--testing-pct", type=PERCENT, help="Speakers to test by the Speech Commands hash.")
@click.option("--force", is_flag=True, help="Replace existing validation_list.txt and testing_list.txt.")
def data_split(directory: Path, validation_speakers: tuple[str, ...], test_speakers: tuple[str, ...],
               validation_pct: float | None, testing_pct: float | None, force: bool) -> None:
    """Write a speaker-disjoint validation_list.txt and testing_list.txt for the corpus DIRECTORY."""
    from tuner_app.data import split
    from tuner_app.errors import TunerAppError

    named = comma_list(validation_speakers) or comma_list(test_speakers)
    if bool(named) == (validation_pct is not None or testing_pct is not None):
        raise TunerAppError("data split: give either --validation-speakers/--test-speakers or "
                            "--validation-pct/--testing-pct")
    found = split.load(directory, force)
    if named:
        split_of = split.by_speakers(found, comma_list(validation_speakers) or (), comma_list(test_speakers) or ())
    else:
        split_of = split.by_fraction(found, validation_pct or 0.0, testing_pct or 0.0)
    sizes = split.write_lists(found, split_of)
    click.echo(f"wrote the split lists of {found.root} ({', '.join(f'{k} {v}' for k, v in sizes.items())} clips)")
