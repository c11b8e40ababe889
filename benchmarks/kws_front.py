"""Issue 10's goals, measured: the searched front against hand-made and published models, in one run.

  fsdd     FSDD (10 digits, the dataset's own split): a search of search_spaces/kws.yaml, and DS-CNN-S, TC-ResNet8,
           BC-ResNet-1 and the seed's 2D 3-conv model trained with the same epochs, augmentation and patience.
           Goals: test accuracy >= 0.98 at <= 25K params and >= 0.97 at <= 10K.
  default  the built-in synthetic corpus: the main job before (benchmarks/spaces/main_job_before.yaml, the
           default.yaml of commit a4dc3af) and after (search_spaces/default.yaml), timed in turn; and the seed's 2D
           3-conv model (8.6M params) against the smallest model of the new main job that matches its accuracy.
           Goals: best validation accuracy >= 0.90 in at most a third of the old main job's wall time; a model
           of <= 86K params (1/100) at the seed model's test accuracy.

Usage: .venv/bin/python benchmarks/kws_front.py {fsdd,default} [--trials N] [--epochs N] [--quick]
Expected wall time on 2 cores (AVX-512): fsdd about 55 minutes, default about 5; --quick checks that it runs (fsdd
1.5 min, default 0.5 min; its results are no claim).
Writes benchmarks/results/kws_front_<mode>.{md,csv,png} and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from tuner_app.device.budget import Budget  # noqa: E402
from tuner_app.model.architecture import configured  # noqa: E402
from tuner_app.model.space import search_space  # noqa: E402
from tuner_app.search import run as search_run  # noqa: E402

SPACES = common.ROOT / "search_spaces"
BENCHMARK_SPACES = common.ROOT / "benchmarks" / "spaces"
REFERENCES = {"DS-CNN-S": "dscnn_s", "TC-ResNet8": "tcresnet8", "BC-ResNet-1": "bcresnet1",
              "seed 2D 3-conv": "seed_2d_conv3"}
# The STFT is left out of the FSDD search: a 257x99 input trains at 100-210 clips/s on 2 cores whatever the
# model (benchmarks/RESULTS.md), so one STFT trial costs as much as ten on the compact front-ends; the seed's
# 2D 3-conv model, trained here as a reference, stands for it.
FSDD_FRONTENDS = ["mel40", "mfcc10", "mfcc40"]
FSDD_BUDGET = 60_000  # the goals sit at 10K and 25K params; larger models spend the search's time
GOALS = ((25_000, 0.98), (10_000, 0.97))


def load(name: str) -> search_space.SearchSpace:
    """A space of benchmarks/spaces, else of search_spaces."""
    own = BENCHMARK_SPACES / f"{name}.yaml"
    return search_space.load(own if own.exists() else SPACES / f"{name}.yaml")


def with_training(space, epochs: int, patience: int, augment=None, **tuner):
    return dataclasses.replace(space, training={**space.training, "epochs": epochs, "patience": patience},
                               augment=augment or space.augment, tuner={**space.tuner, **tuner})


def rows_of(label: str, space, tuner, n_classes: int) -> list[dict[str, object]]:
    """One row per completed trial: label, architecture, sizes, accuracies and train seconds."""
    rows = []
    for trial in common.completed_trials(tuner):
        values = {name: value for name, value in trial["values"].items() if name in space.hyperparameters}
        sizes = configured.sizes(space, values, n_classes)
        rows.append({"set": label, "model": describe(space, values), "params": sizes["params_total"],
                     "trainable": sizes["params_trainable"], "macs": sizes["macs"],
                     "val": round(trial["val_accuracy"], 4), "test": round(trial.get("test_accuracy", float("nan")), 4),
                     "seconds": round(trial.get("train_seconds", 0))})
    return rows


def describe(space, values) -> str:
    family = configured.family_of(space, values)
    frontend = values.get("frontend", space.frontend.kind)
    own = [f"{name}={value}" for name, value in values.items()
           if name.startswith(family + "_") or (family == "seed" and name in ("conv_layers", "filters", "fc_layers"))]
    return f"{frontend} {family}({', '.join(own)})"


def train(label: str, space, splits, workdir: Path, class_names, noise=None, max_params=None, seed=0,
          fresh=True) -> tuple:
    started = time.perf_counter()
    tuner = search(label, space, splits, workdir, class_names, noise, max_params, seed, fresh)
    return rows_of(label, space, tuner, len(class_names)), time.perf_counter() - started


def search(label: str, space, splits, workdir: Path, class_names, noise=None, max_params=None, seed=0, fresh=True):
    """The search of `space` in workdir/<label> (fresh, or resumed: its finished trials are kept): its tuner."""
    return search_run.run_search(space, splits, workdir / label.replace(" ", "_"), class_names=class_names,
                                 noise=noise, budget=Budget(max_params), seed=seed, fresh=fresh)


def front(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """The rows no other row beats in both params and validation accuracy (the search selects on validation)."""
    best, kept = -1.0, []
    for row in sorted(rows, key=lambda row: (row["params"], -row["val"])):
        if row["val"] > best:
            kept.append(row)
            best = row["val"]
    return kept


def goal_lines(rows, goals=GOALS) -> list[str]:
    """Per goal, two readings: the smallest searched model within the budget whose validation accuracy reaches
    the target (how the researchers pick: the smallest model that is good enough), and the best on validation
    within the budget; each with its test accuracy. Also the best test accuracy at that size."""
    lines = []
    for budget, target in goals:
        fitting = [row for row in rows if row["params"] <= budget]
        if not fitting:
            lines.append(f"- <= {budget:,} params: no searched model; goal {target} **missed**")
            continue
        good_enough = sorted((row for row in fitting if row["val"] >= target), key=lambda row: row["params"])
        best_val = max(fitting, key=lambda row: (row["val"], -row["params"]))
        for reading, chosen in (("smallest with validation >= the target", good_enough[0] if good_enough else None),
                                ("best on validation", best_val)):
            if chosen is None:
                lines.append(f"- <= {budget:,} params, {reading}: none; goal {target} **missed**")
                continue
            verdict = "met" if chosen["test"] >= target else f"**missed by {target - chosen['test']:.4f}**"
            lines.append(f"- <= {budget:,} params, {reading}: {chosen['model']} ({chosen['params']:,} params, "
                         f"validation {chosen['val']:.4f}) tests at {chosen['test']:.4f}: goal {target} {verdict}")
        lines.append(f"- <= {budget:,} params: the best test accuracy of any searched model is "
                     f"{max(row['test'] for row in fitting):.4f}")
    return lines


def against_references(searched, references) -> list[str]:
    """Per reference model: the smallest searched model that tests at least as well, and the size ratio."""
    lines = []
    for reference in references:
        matching = sorted((row for row in searched if row["test"] >= reference["test"]), key=lambda row: row["params"])
        if not matching:
            lines.append(f"- {reference['set']} ({reference['params']:,} params, test {reference['test']:.4f}): no "
                         "searched model tests as well")
            continue
        best = matching[0]
        lines.append(f"- {reference['set']} ({reference['params']:,} params, test {reference['test']:.4f}): the "
                     f"smallest searched model at least as good is {best['model']}, {best['params']:,} params "
                     f"(test {best['test']:.4f}), {reference['params'] / best['params']:.1f}x smaller")
    return lines


def fsdd_text(rows, timings: list[str]) -> list[str]:
    searched = [row for row in rows if row["set"] == "kws search"]
    references = [row for row in rows if row["set"] != "kws search"]
    return ["## Goals (FSDD test split)", *goal_lines(searched), "", "## Against the references (test accuracy)",
            *against_references(searched, references), "", "## The searched front (on validation)",
            common.markdown_table(front(searched)), "", "## References, same epochs, augmentation and patience",
            common.markdown_table([row for row in rows if row["set"] != "kws search"]), "", "## Time",
            *[f"- {line}" for line in timings]]


def run_fsdd(args, workdir: Path) -> tuple[list, list[str], str]:
    splits, class_names = common.load_fsdd(workdir)
    kws = load("kws")
    hp = dict(kws.hyperparameters)
    hp["frontend"] = {**hp["frontend"], "values": FSDD_FRONTENDS}
    hp["family"] = {**hp["family"], "values": ["dscnn", "bcresnet", "tcresnet"]} if args.quick else hp["family"]
    search_space = with_training(dataclasses.replace(kws, hyperparameters=hp), args.epochs, args.patience,
                                 max_trials=args.trials)
    rows, seconds = train("kws search", search_space, splits, workdir, class_names, max_params=FSDD_BUDGET)
    timings = [f"kws search: {len(rows)} trials in {seconds / 60:.1f} min"]
    for label, name in REFERENCES.items():
        reference = with_training(load(name), args.epochs, args.patience, augment=kws.augment)
        reference_rows, seconds = train(label, reference, splits, workdir, class_names)
        rows += reference_rows
        timings.append(f"{label}: {seconds / 60:.1f} min")
    return rows, fsdd_text(rows, timings), f"{args.trials} trials of kws.yaml (front-ends {', '.join(FSDD_FRONTENDS)}, at most " \
                       f"{FSDD_BUDGET:,} params), at most {args.epochs} epochs, patience {args.patience}"


def run_default(args, workdir: Path) -> tuple[list, list[str], str]:
    splits, class_names, noise = common.load_default_corpus()
    rows, text, walls = [], ["## Main job, before and after (search wall time, same corpus and machine)"], {}
    for label, name in (("main job before", "main_job_before"), ("main job after", "default")):
        space = load(name)
        if args.quick:  # 2 epochs: the main job warms up for 1
            space = with_training(space, 2, 1, max_trials=1)
        job_rows, walls[label] = train(label, space, splits, workdir, class_names, noise=noise)
        rows += job_rows
        best = max(job_rows, key=lambda row: row["val"])
        text.append(f"- {label}: {walls[label]:.0f} s, {len(job_rows)} trials, best validation accuracy "
                    f"{best['val']:.4f} ({best['model']}, {best['params']:,} params)")
    after_best = max(row["val"] for row in rows if row["set"] == "main job after")
    ratio = walls["main job after"] / walls["main job before"]
    text.append(f"- goal: >= 0.90 in <= 1/3 of the time: {after_best:.4f} at {ratio:.2f} of the time: "
                f"{'met' if after_best >= 0.90 and ratio <= 1 / 3 else '**missed**'}")
    seed_space = load("seed_2d_conv3")
    seed_space = with_training(seed_space, 2, 1) if args.quick else seed_space
    seed_rows, seconds = train("seed 2D 3-conv", seed_space, splits, workdir, class_names, noise=noise)
    rows += seed_rows
    target = seed_rows[0]["test"]
    matching = sorted((row for row in rows if row["set"] == "main job after" and row["test"] >= target),
                      key=lambda row: row["params"])
    text += ["", "## 1/100 of the seed's 2D 3-conv model",
             f"- seed 2D 3-conv: {seed_rows[0]['params']:,} params, test accuracy {target:.4f} ({seconds:.0f} s)",
             "- smallest model of the new main job at >= that test accuracy: " + (
                 f"{matching[0]['model']}, {matching[0]['params']:,} params ({matching[0]['test']:.4f}), "
                 f"1/{seed_rows[0]['params'] / matching[0]['params']:.0f} of its size: "
                 f"{'met' if matching[0]['params'] <= 86_000 else '**missed**'}" if matching else "none: **missed**"),
             "", "## Every trained model", common.markdown_table(rows)]
    return rows, text, "the main job before and after, and the seed's 2D 3-conv model, on the default corpus"


def write(mode: str, rows, text, what: str, args, seconds: float) -> None:
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    stem = common.RESULTS / f"kws_front_{mode}{'_quick' if args.quick else ''}"
    with open(stem.with_suffix(".csv"), "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    common.scatter_plot(rows, stem.with_suffix(".png"), f"{mode}: test accuracy against size")
    command = " ".join([".venv/bin/python", "benchmarks/kws_front.py", *sys.argv[1:]])
    header = [f"# Issue 10 goals: {mode}", "", f"Machine: {common.machine()}. Date: {datetime.date.today()}. "
              f"Command: `{command}` ({seconds / 60:.1f} min in all). Versions: {common.versions()}.", "",
              f"What ran: {what}. Params are the walk's, total (trainable and BN statistics); accuracy on the "
              f"kept weights (early stopping on val_loss). Plot: {stem.with_suffix('.png').name}; every row: "
              f"{stem.with_suffix('.csv').name}.", ""]
    stem.with_suffix(".md").write_text("\n".join(header + text) + "\n", encoding="utf-8")
    print("\n".join(text))


def rerender_fsdd(stem: Path) -> None:
    """Rewrite the fsdd summary's tables and goal lines from its CSV with this script's current reading of the
    goals, keeping the run's header and timings (no training)."""
    with open(stem.with_suffix(".csv"), encoding="utf-8") as stream:
        rows = [{**row, **{key: int(row[key]) for key in ("params", "trainable", "macs", "seconds")},
                 "val": float(row["val"]), "test": float(row["test"])} for row in csv.DictReader(stream)]
    old = stem.with_suffix(".md").read_text(encoding="utf-8").splitlines()
    header = old[: old.index("## Goals (FSDD test split)")]
    timings = [line[2:] for line in old[old.index("## Time") + 1:] if line.startswith("- ")]
    note = [f"Tables and goals rendered from {stem.with_suffix('.csv').name} by `benchmarks/kws_front.py fsdd "
            f"--rerender` on {datetime.date.today()}, after the run.", ""]
    text = fsdd_text(rows, timings)
    stem.with_suffix(".md").write_text("\n".join(header + note + text) + "\n", encoding="utf-8")
    print("\n".join(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["fsdd", "default"])
    parser.add_argument("--trials", type=int, default=24, help="fsdd: trials of the kws search")
    parser.add_argument("--epochs", type=int, default=30, help="fsdd: maximum epochs of every model")
    parser.add_argument("--patience", type=int, default=8, help="fsdd: early-stopping patience")
    parser.add_argument("--quick", action="store_true", help="2 trials of 3 epochs: checks that it runs")
    parser.add_argument("--rerender", action="store_true",
                        help="fsdd: rewrite the summary from the committed CSV, training nothing")
    args = parser.parse_args()
    if args.rerender:
        rerender_fsdd(common.RESULTS / "kws_front_fsdd")
        return
    if args.quick:
        args.trials, args.epochs, args.patience = 2, 3, 1  # kws.yaml warms up for 2 epochs
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kws-front-") as workdir:
        rows, text, what = (run_fsdd if args.mode == "fsdd" else run_default)(args, Path(workdir))
    write(args.mode, rows, text, what, args, time.perf_counter() - started)


if __name__ == "__main__":
    main()
