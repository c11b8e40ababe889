"""How well a model trained only on the built-in (espeak) corpus recognises real speech.

Synthesizes the built-in corpus with the current recipe (or takes --corpus, e.g. one an older SYNTH_VERSION
wrote), trains one fixed model with a fixed recipe on it (the main job's TC-ResNet8, width 1.0, 40 log-mel, its
augmentation and schedule: search_spaces/default.yaml with the width fixed), exports it as `tuner-app export`
does and scores the export as `tuner-app evaluate` does on the 160 clips of the 16 target words in the Speech
Commands v0.01 sample (../shared/data; every clip, its train, validation and test lists summed).

Usage: .venv/bin/python benchmarks/builtin_transfer.py [--label L] [--per-class N] [--epochs N] [--seed S]
           [--corpus DIR] [--recipe FIELD=VALUE,...] [--augment KEY=N,...] [--frontend KEY=V,...] [--workers N]
  --recipe  synthesize with these fields of synth.Recipe changed (an ablation): on/off for a stage, LOW:HIGH for
            a range, e.g. --recipe reverb=off,colouring=off or --recipe snr_db=20:50
Expected wall time on 2 cores shared with other jobs (AVX2): 1.5-4 minutes at --per-class 100 --epochs 12, about
3 minutes at --per-class 200 (synthesis about 50 s of it).
Writes benchmarks/results/builtin_transfer.{md,csv}: one row per --label (a rerun replaces its row), and prints it.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from tuner_app.data import cache, corpus, synth  # noqa: E402
from tuner_app.model.space import search_space  # noqa: E402
from tuner_app.search import run as search_run  # noqa: E402
from tuner_app.serving import export, inference  # noqa: E402

REAL = common.ROOT.parent / "shared" / "data" / "speech-commands-v0.01-vinsis-sample" / "speech_commands_v0.01"
STEM = common.RESULTS / "builtin_transfer"
SPLITS = ("train", "validation", "test")
FIELDS = ["label", "corpus", "per_class", "seed", "epochs", "synth_s", "train_s", "synthetic_val", "real_acc",
          "real_train", "real_validation", "real_test", "real_clips", "date", "command"]


def fixed_space(epochs: int, augment: str = "", frontend: str = "") -> search_space.SearchSpace:
    """The main job's space with one width: a single model, trained `epochs` epochs; `augment` and `frontend`
    (KEY=VALUE,...) change those keys of its `augment:` and `frontend:`."""
    space = search_space.load(common.ROOT / "search_spaces" / "default.yaml")
    hyperparameters = {**space.hyperparameters, "tcresnet_width": {"type": "fixed", "value": 1.0}}
    return dataclasses.replace(space, hyperparameters=hyperparameters, training={**space.training, "epochs": epochs},
                               augment=dataclasses.replace(space.augment, **_changes(augment, float)),
                               frontend=dataclasses.replace(space.frontend, **_changes(frontend, str)))


def _changes(text: str, kind) -> dict[str, object]:
    return {name: kind(value) for name, value in (change.split("=", 1) for change in text.split(",") if change)}


def synthesized(args, workdir: Path) -> tuple[Path, float, str]:
    """(corpus directory, synthesis seconds, its description): --corpus as given, else synthesized now."""
    if args.corpus:
        return Path(args.corpus), float("nan"), f"given {Path(args.corpus).name}"
    changes = dict(change.split("=", 1) for change in args.recipe.split(",") if change)
    recipe = dataclasses.replace(synth.Recipe(), **{name: recipe_value(value) for name, value in changes.items()})
    out = workdir / "corpus"
    summary = synth.synthesize(out, per_class=args.per_class, seed=args.seed, workers=args.workers, recipe=recipe)
    return out, summary.seconds, f"v{synth.SYNTH_VERSION} {args.recipe}".strip()


def recipe_value(text: str) -> bool | tuple[float, float]:
    """`on`/`off` -> a stage's switch; `LOW:HIGH` -> a range."""
    if text in ("on", "off"):
        return text == "on"
    low, high = text.split(":")
    return float(low), float(high)


def train(corpus_dir: Path, epochs: int, workdir: Path, augment: str = "", frontend: str = "") -> tuple[Path, float, float]:
    """(the trained trial's directory, its validation accuracy on the synthetic corpus, train seconds)."""
    found = corpus.scan(corpus_dir)
    splits = cache.decode_corpus(found, workdir / "cache")
    noise = cache.noise_bank(found.background_noise)
    started = time.perf_counter()
    tuner = search_run.run_search(fixed_space(epochs, augment, frontend), splits, workdir / "runs", class_names=list(found.classes),
                                  noise=noise, fresh=True)
    trial = tuner.oracle.get_best_trials(1)[0]
    seconds = time.perf_counter() - started
    return Path(tuner.project_dir) / f"trial_{trial.trial_id}", trial.metrics.get_last_value("val_accuracy"), seconds


def real_accuracy(trial_dir: Path, workdir: Path) -> dict[str, float | int]:
    """Accuracy of the exported trial on every real clip, and on each of the sample's list splits."""
    export.export_trial(trial_dir, workdir / "export")
    loaded = inference.load(workdir / "export")
    scores = {split: inference.evaluate(loaded, REAL, split) for split in SPLITS}
    right = sum(int(score.confusion.trace()) for score in scores.values())
    clips = sum(score.clips for score in scores.values())
    return {"real_acc": round(right / clips, 4), "real_clips": clips,
            **{f"real_{split}": round(score.accuracy or 0.0, 4) for split, score in scores.items()}}


def measure(args) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="builtin-transfer-") as name:
        workdir = Path(name)
        corpus_dir, synth_seconds, described = synthesized(args, workdir)
        trial_dir, val, train_seconds = train(corpus_dir, args.epochs, workdir, args.augment, args.frontend)
        scores = real_accuracy(trial_dir, workdir)
    command = shlex.join([".venv/bin/python", "benchmarks/builtin_transfer.py", *sys.argv[1:]])
    return {"label": args.label, "corpus": described, "per_class": args.per_class, "seed": args.seed,
            "epochs": args.epochs, "synth_s": round(synth_seconds, 1), "train_s": round(train_seconds, 1),
            "synthetic_val": round(val, 4), **scores, "date": str(datetime.date.today()), "command": f"`{command}`"}


def read_rows() -> list[dict[str, str]]:
    if not STEM.with_suffix(".csv").exists():
        return []
    with open(STEM.with_suffix(".csv"), encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def write(row: dict[str, object]) -> list[dict[str, object]]:
    """Replace this label's row (or add it), then rewrite the CSV and the summary."""
    rows = [old for old in read_rows() if old["label"] != row["label"]] + [row]
    write_rows(rows)
    return rows


def write_rows(rows: list[dict[str, object]]) -> None:
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    common.write_csv(rows, STEM.with_suffix(".csv"), FIELDS)
    header = ["# The built-in corpus as a stand-in for real speech", "",
              f"Machine: {common.machine()}. Versions: {common.versions()}. Each row's date and command are its own, and "
              "so is its recipe: the code of its day (`draft` rows: an earlier v2, as their label says).",
              "", "What ran: the corpus synthesized (synth_s seconds, `corpus` names its recipe), TC-ResNet8 width 1.0 "
              "on 40 log-mel (search_spaces/default.yaml's recipe and augmentation) trained on it (train_s), exported, "
              f"and scored on the {rows[-1]['real_clips']} clips of the 16 words in the Speech Commands v0.01 sample "
              "(real_acc; real_<split>: the sample's own list splits). synthetic_val: accuracy on the synthetic "
              "validation speakers.", ""]
    STEM.with_suffix(".md").write_text("\n".join(header + [common.markdown_table(rows)]) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="current recipe", help="the row's name; a rerun replaces its row")
    parser.add_argument("--per-class", type=int, default=100, help="clips per word of the synthesized corpus")
    parser.add_argument("--epochs", type=int, default=12, help="training epochs (the main job's 12)")
    parser.add_argument("--seed", type=int, default=0, help="synthesis seed")
    parser.add_argument("--workers", type=int, default=2, help="synthesis processes")
    parser.add_argument("--corpus", help="train on this corpus instead of synthesizing one")
    parser.add_argument("--augment", default="", help="training augmentation changes: KEY=NUMBER,... e.g. vtlp_alpha=0.1")
    parser.add_argument("--frontend", default="", help="front-end changes: KEY=VALUE,... e.g. normalize=coefficient")
    parser.add_argument("--recipe", default="", help="comma-separated synth.Recipe changes: FIELD=on|off|LOW:HIGH")
    args = parser.parse_args()
    rows = write(measure(args))
    print(common.markdown_table([{key: row[key] for key in FIELDS[:-2]} for row in rows]))


if __name__ == "__main__":
    main()
