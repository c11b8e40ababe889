"""Issue 24's goals, measured: accuracy on voices the models never heard, FSDD split by speaker.

The corpus is FSDD imported with `--split speakers` (validation george, test jackson, training the other four),
so every validation and test clip is a voice no model trained on. In one run:

  search      search_spaces/kws.yaml (its own initial configurations first: DS-CNN-S, BC-ResNet-1, TC-ResNet8),
              --trials trials, at most --epochs epochs, patience --patience, the space's own augmentation.
  references  DS-CNN-S, BC-ResNet-1 and TC-ResNet8 trained alone with the same epochs, patience and augmentation,
              and the old 2D STFT main job (benchmarks/spaces/main_job_before.yaml, its own recipe).

Goals: test accuracy >= 0.90 at <= 25K params and >= 0.85 at <= 10K; each reference beaten at its own size or
smaller; the search at least as good, at each reference's size, as the reference alone.

Usage: .venv/bin/python benchmarks/speakers.py [--trials N] [--epochs N] [--patience N] [--frontends a,b]
                                               [--old-trials N] [--workdir D | --resume D] [--quick]
Expected wall time on 2 cores (AVX-512): about 90 minutes with the defaults; --quick checks that it runs (about
3 minutes; its results are no claim). Writes benchmarks/results/speakers_fsdd{,_quick}.{md,csv,png}.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import kws_front  # noqa: E402
from tuner_app.data import cache  # noqa: E402
from tuner_app.data import corpus  # noqa: E402
from tuner_app.data.fsdd import import_fsdd  # noqa: E402

REFERENCES = {"DS-CNN-S": "dscnn_s", "BC-ResNet-1": "bcresnet1", "TC-ResNet8": "tcresnet8"}
OLD_MAIN_JOB = "main_job_before"
GOALS = ((25_000, 0.90), (10_000, 0.85))
SEARCH = "kws search"


def load_fsdd_by_speaker(workdir: Path) -> tuple[dict, list[str], dict]:
    """FSDD split by speaker, decoded to 16 kHz: (splits, class names, speakers per split); a resumed run
    reads the corpus it imported."""
    imported = workdir / "fsdd"
    if imported.is_dir():
        found = corpus.scan(imported, classes=[word for word in corpus.DIGIT_WORDS if (imported / word).is_dir()])
    else:
        found = import_fsdd(common.FSDD, imported, split="speakers")
    if found.speaker_overlap():
        raise SystemExit(f"the split shares speakers {found.speaker_overlap()}: not the benchmark's corpus")
    return cache.decode_corpus(found, workdir / "cache"), list(found.classes), found.speakers()


def recipe(space, args):
    """The space at the run's epochs, patience and early-stopping monitor (every model alike)."""
    space = kws_front.with_training(space, args.epochs, args.patience)
    return dataclasses.replace(space, training={**space.training, "monitor": args.monitor})


def search_space(args):
    kws = kws_front.load("kws")
    hyperparameters = dict(kws.hyperparameters)
    if args.frontends:
        hyperparameters["frontend"] = {**hyperparameters["frontend"], "values": args.frontends.split(",")}
    space = dataclasses.replace(kws, hyperparameters=hyperparameters)
    return recipe(dataclasses.replace(space, tuner={**space.tuner, "max_trials": args.trials}), args)


def run(args, workdir: Path) -> tuple[list[dict], list[str]]:
    splits, class_names, speakers = load_fsdd_by_speaker(workdir)
    rows, timings = [], [f"speakers: {', '.join(f'{split} {names}' for split, names in speakers.items())}"]
    for label, name in REFERENCES.items():
        space = recipe(kws_front.load(name), args)
        timings.append(_trained(rows, label, space, splits, workdir, class_names, not args.resume))
    old = kws_front.load(OLD_MAIN_JOB)
    old = dataclasses.replace(old, tuner={**old.tuner, "max_trials": args.old_trials},
                              training={**old.training, "monitor": args.monitor})
    timings.append(_trained(rows, "old main job (2D STFT)", old, splits, workdir, class_names, not args.resume))
    timings.append(_trained(rows, SEARCH, search_space(args), splits, workdir, class_names, not args.resume))
    return rows, timings


def _trained(rows: list, label: str, space, splits, workdir: Path, class_names, fresh: bool) -> str:
    # A resumed run (--resume) keeps every finished trial and trains only what is left.
    trained, seconds = kws_front.train(label, space, splits, workdir, class_names, fresh=fresh)
    rows += trained
    return f"{label}: {len(trained)} trial(s) in {seconds / 60:.1f} min"


def search_against_references(searched: list[dict], references: list[dict]) -> list[str]:
    """Per reference: the search's best model (on validation) at the reference's size or smaller, against it."""
    lines = []
    for reference in references:
        fitting = [row for row in searched if row["params"] <= reference["params"]]
        if not fitting:
            lines.append(f"- {reference['set']} ({reference['params']:,} params): no searched model that small")
            continue
        chosen = max(fitting, key=lambda row: (row["val"], -row["params"]))
        verdict = "at least as good" if chosen["test"] >= reference["test"] else "**worse**"
        lines.append(f"- {reference['set']} ({reference['params']:,} params, validation {reference['val']:.4f}, "
                     f"test {reference['test']:.4f}): the search's best on validation at that size is "
                     f"{chosen['model']}, {chosen['params']:,} params, validation {chosen['val']:.4f}, test "
                     f"{chosen['test']:.4f}: {verdict}")
    return lines


def summary(rows: list[dict], timings: list[str]) -> list[str]:
    searched = [row for row in rows if row["set"] == SEARCH]
    references = [row for row in rows if row["set"] in REFERENCES]
    others = [row for row in rows if row["set"] != SEARCH]
    return ["## Goals (FSDD split by speaker: test accuracy on jackson, never heard)",
            *kws_front.goal_lines(searched, GOALS), "",
            "## The search against the references alone (at each reference's size or smaller)",
            *search_against_references(searched, references), "",
            "## References and the old main job, same corpus (test accuracy)",
            *kws_front.against_references(searched, others), "",
            "## The searched front (on validation)", common.markdown_table(kws_front.front(searched)), "",
            "## Every trained model", common.markdown_table(rows), "", "## Time", *[f"- {line}" for line in timings]]


def write(rows: list[dict], text: list[str], args, seconds: float) -> None:
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    stem = common.RESULTS / f"speakers_fsdd{'_quick' if args.quick else ''}"
    common.write_csv(rows, stem.with_suffix(".csv"), list(rows[0]))
    common.scatter_plot(rows, stem.with_suffix(".png"), "FSDD by speaker: test accuracy on an unheard voice")
    header = [f"# Issue 24: accuracy on unheard voices (FSDD split by speaker){' (quick: no claim)' * args.quick}",
              "", common.provenance("speakers.py", seconds), "",
              f"What ran: the references, the old main job and {args.trials} trials of kws.yaml "
              f"(front-ends: {args.frontends or 'all of its own'}), at most {args.epochs} epochs, patience "
              f"{args.patience}, early stopping on {args.monitor} for every model. Params are the walk's, total; "
              f"accuracy on the kept weights (best {args.monitor}). Plot: {stem.with_suffix('.png').name}; every row: "
              f"{stem.with_suffix('.csv').name}.", ""]
    stem.with_suffix(".md").write_text("\n".join(header + text) + "\n", encoding="utf-8")
    print("\n".join(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=16, help="trials of the kws.yaml search")
    parser.add_argument("--epochs", type=int, default=30, help="maximum epochs of the search and the references")
    parser.add_argument("--patience", type=int, default=6, help="early-stopping patience")
    parser.add_argument("--monitor", default="val_accuracy", choices=["val_accuracy", "val_loss"],
                        help="early stopping's monitor for every model (the old main job keeps its own epochs)")
    parser.add_argument("--frontends", help="comma-separated presets of kws.yaml the search may pick (default all)")
    parser.add_argument("--old-trials", type=int, default=5, help="trials of the old main job (its own is 5)")
    common.add_run_dir_options(parser, "the run's corpus and trials")
    parser.add_argument("--quick", action="store_true", help="tiny run: checks that it runs")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs, args.patience, args.old_trials = 4, 3, 1, 1
    started = time.perf_counter()
    with common.run_dir(args.workdir, "speakers-", resume=args.resume) as workdir:
        rows, timings = run(args, workdir)
    common.write_csv(rows, common.RESULTS / f"speakers_fsdd{'_quick' if args.quick else ''}.csv", list(rows[0]))
    write(rows, summary(rows, timings), args, time.perf_counter() - started)


if __name__ == "__main__":
    main()
