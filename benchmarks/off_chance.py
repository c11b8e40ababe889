"""Issue 24's goal "every family off chance within 10 epochs on all three corpora", measured.

Each family of search_spaces/kws.yaml, at the configuration the search tries first (DS-CNN-S, BC-ResNet-1 and
TC-ResNet8, kws.yaml's initial configurations, with their recipes) and one of the seed's plain stacks, is trained
for --epochs epochs with kws.yaml's augmentation and no chance stop, on three corpora:

  builtin        the main job's built-in synthetic corpus (16 words)
  fsdd           FSDD, the dataset's own split (its 6 speakers in every split)
  fsdd-speakers  FSDD split by speaker (validation george, test jackson, never heard in training)

Per model and corpus: the first epoch that left chance as search/chance.py defines it (training or validation
accuracy at or above chance_threshold), the accuracies there and at the end, and the test accuracy of the kept
weights (best validation accuracy).

Usage: .venv/bin/python benchmarks/off_chance.py [--epochs N] [--corpora a,b] [--quick]
Expected wall time on 2 cores (AMD EPYC, AVX2): about 25 minutes; --quick checks that it runs (its results are no
claim). Writes benchmarks/results/off_chance{,_quick}.{md,csv}.
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
import speakers  # noqa: E402
from tuner_app.model.architecture import configured  # noqa: E402
from tuner_app.model.space import initial_configurations  # noqa: E402
from tuner_app.search import chance  # noqa: E402
from tuner_app.search import run as search_run  # noqa: E402
from tuner_app.search.observers import SearchObserver  # noqa: E402

# One of the seed's plain 2D stacks in kws.yaml's terms (the seed family has no published recipe: kws.yaml's floor).
SEED_STACK = {"name": "seed stack", "values": {
    "family": "seed", "frontend": "mfcc40", "normalize": "coefficient", "conv_layers": 3, "filters": 16,
    "filter_growth": 2, "fc_layers": 0, "learning_rate": 0.001, "lr_schedule": "constant", "warmup_epochs": 0,
    "weight_decay": 0.0, "label_smoothing": 0.0}}
CORPORA = ("fsdd-speakers", "fsdd", "builtin")


class EpochLog(SearchObserver):
    """Every epoch's logs of every trial, by trial id."""

    def __init__(self):
        self.epochs: dict[str, list[dict[str, float]]] = {}

    def epoch_end(self, tuner, trial, epoch, logs) -> None:
        self.epochs.setdefault(trial.trial_id, []).append(dict(logs))


def space_of(epochs: int):
    """kws.yaml trying its references and a seed stack, at `epochs` epochs, with no chance stop or early stop."""
    kws = kws_front.load("kws")
    listed = [*initial_configurations.resolved(kws.initial_configurations), SEED_STACK]
    checked = initial_configurations.checked_configurations(listed, kws.hyperparameters, "off_chance")
    training = {**kws.training, "epochs": epochs, "patience": epochs, "chance_epochs": 0}
    return dataclasses.replace(kws, initial_configurations=checked, training=training,
                               tuner={"name": "random", "max_trials": len(checked)})


def load(corpus: str, workdir: Path) -> tuple[dict, list[str], object]:
    if corpus == "builtin":
        return common.load_default_corpus()
    if corpus == "fsdd":
        return (*common.load_fsdd(workdir), None)
    splits, class_names, _ = speakers.load_fsdd_by_speaker(workdir)
    return splits, class_names, None


def left_chance(epochs: list[dict[str, float]], threshold: float) -> int | None:
    """The first (1-based) epoch with training or validation accuracy at or above the threshold, else None."""
    return next((index + 1 for index, logs in enumerate(epochs)
                 if max(logs.get("accuracy", 0.0), logs.get("val_accuracy", 0.0)) >= threshold), None)


def rows_of(corpus: str, space, tuner, log: EpochLog, n_classes: int) -> list[dict[str, object]]:
    names = {configuration.name: configuration.values for configuration in space.initial_configurations}
    threshold, rows = chance.chance_threshold(n_classes), []
    for trial in common.completed_trials(tuner):
        model = next(name for name, values in names.items() if values == {
            key: value for key, value in trial["values"].items() if key in values})
        epochs = log.epochs[trial["trial_id"]]
        off = left_chance(epochs, threshold)
        rows.append({"corpus": corpus, "model": model, "lr": trial["values"]["learning_rate"],
                     "params": configured.sizes(space, names[model], n_classes)["params_total"],
                     "chance": round(threshold, 3), "off_chance_epoch": off or f">{len(epochs)}",
                     "train_acc_then": round(epochs[(off or len(epochs)) - 1]["accuracy"], 3),
                     "val_acc_then": round(epochs[(off or len(epochs)) - 1]["val_accuracy"], 3),
                     "train_acc_last": round(epochs[-1]["accuracy"], 3), "val_best": round(trial["val_accuracy"], 3),
                     "test": round(trial.get("test_accuracy", float("nan")), 3),
                     "seconds": round(trial.get("train_seconds", 0))})
    return rows


def run(corpus: str, args, workdir: Path) -> list[dict[str, object]]:
    splits, class_names, noise = load(corpus, workdir / corpus)  # each corpus its own folder: both FSDDs import
    space, log = space_of(args.epochs), EpochLog()
    tuner = search_run.run_search(space, splits, workdir / corpus / "trials", class_names=class_names, noise=noise,
                                  observers=[log], fresh=True)
    return rows_of(corpus, space, tuner, log, len(class_names))


def verdict(rows: list[dict[str, object]], epochs: int) -> list[str]:
    late = [row for row in rows if not isinstance(row["off_chance_epoch"], int)]
    lines = [f"- goal: every family off chance within {epochs} epochs on every corpus: "
             + ("met" if not late else f"**missed** by {len(late)} of {len(rows)} runs")]
    return lines + [f"  - {row['model']} on {row['corpus']}: still at chance after {epochs} epochs" for row in late]


def write(rows: list[dict[str, object]], args, seconds: float) -> None:
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    stem = common.RESULTS / f"off_chance{'_quick' if args.quick else ''}"
    common.write_csv(rows, stem.with_suffix(".csv"), list(rows[0]))
    text = [f"# Issue 24: every family off chance{' (quick: no claim)' * args.quick}", "",
            common.provenance("off_chance.py", seconds), "",
            f"Each model trained {args.epochs} epochs with kws.yaml's augmentation, no chance stop and no early "
            "stop; off_chance_epoch is the first epoch whose training or validation accuracy reached chance "
            "(search/chance.py's threshold); test: the weights of the best validation accuracy.", "",
            *verdict(rows, args.epochs), "", common.markdown_table(rows)]
    stem.with_suffix(".md").write_text("\n".join(text) + "\n", encoding="utf-8")
    print("\n".join(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10, help="epochs each model trains")
    parser.add_argument("--corpora", default=",".join(CORPORA), help=f"comma-separated, of {', '.join(CORPORA)}")
    parser.add_argument("--workdir",
                        help="where the corpora and trials go (a new folder in it, kept; default: temporary)")
    parser.add_argument("--quick", action="store_true", help="2 epochs: checks that it runs")
    args = parser.parse_args()
    args.epochs = 2 if args.quick else args.epochs
    started, rows = time.perf_counter(), []
    with common.run_dir(args.workdir, "off-chance-") as workdir:
        for corpus in args.corpora.split(","):  # written after each corpus: a stopped run keeps the finished ones
            rows += run(corpus, args, workdir)
            write(rows, args, time.perf_counter() - started)


if __name__ == "__main__":
    main()
