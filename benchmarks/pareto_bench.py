"""Issue 11's benchmark: does `--tuner pareto` find the front of accuracy against size faster than random search,
Bayesian optimisation and Hyperband, on the same space, corpus and per-trial budget?

  replay  the NAS-Bench method: every configuration of benchmarks/spaces/nas_table.yaml was trained once
          (benchmarks/pareto_table.py wrote benchmarks/results/pareto_table.csv); each oracle, unchanged, proposes
          trials whose scores are read from that table, over 20 seeds, in seconds. Hyperband's shorter trials
          read the validation accuracy of the epoch of least validation loss within their epochs.
  real    one real search per tuner on the same space and corpus, 8 epochs per trial, timed.

Reports the hypervolume (log10 params, validation accuracy; reference point fixed at the space's
objective.hv_reference, 1e8 params and 0) after N trials and the trials needed to reach a share of the whole
table's hypervolume, as mean and spread over seeds; and the same against epochs trained, where Hyperband's
short trials count for what they cost.

Usage: .venv/bin/python benchmarks/pareto_bench.py replay [--seeds 20] [--trials 40] [--quick]
       .venv/bin/python benchmarks/pareto_bench.py real [--trials 15] [--workdir DIR] [--quick]
Expected wall time on 2 cores (AVX-512): replay about 17 minutes (14 of them keras-tuner's Gaussian process
fits for `bayesian`; the others take seconds to two minutes), real about 30; --quick: 3 seeds x 10 trials
(replay, under a minute) or 2 trials per tuner at 2 epochs (real, 1.5 minutes); its results are no claim.
Writes benchmarks/results/pareto_bench_<mode>.{md,csv,png} and prints the table.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import datetime
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import keras_tuner  # noqa: E402
import pareto_table  # noqa: E402
from tuner_app.model.space import search_space  # noqa: E402
from tuner_app.search import oracles, pareto_geometry, run as search_run  # noqa: E402
from tuner_app.search.pareto_oracle import ParetoOracle  # noqa: E402

EPOCHS = 8  # the table's epochs: every trial's budget, Hyperband's max_epochs
SHARES = (0.95, 0.98, 0.99)  # of the whole table's hypervolume: "trials to reach"
CHECKPOINTS = (5, 10, 15, 20, 30, 40)
# (label, oracle class, options): the tuners compared, each as `tuner-app search --tuner NAME` builds it.
ORACLES = (
    ("random", oracles.RandomSearchOracle, {}),
    ("bayesian", oracles.BayesianOptimizationOracle, {"num_initial_points": 8}),  # else 3 per hyperparameter
    ("hyperband", oracles.HyperbandOracle, {"max_epochs": EPOCHS, "factor": 3, "hyperband_iterations": None}),
    ("pareto", ParetoOracle, {"sampler": "tpe"}),
    ("pareto nsga2", ParetoOracle, {"sampler": "nsga2"}),
    ("pareto gap4", ParetoOracle, {"sampler": "tpe", "gap_candidates": 4}),
)
REAL_TUNERS = ("random", "bayesian", "hyperband", "pareto")


@dataclasses.dataclass
class Table:
    """The trained table: searched values (JSON) -> params, validation accuracy and loss per epoch."""

    rows: dict[str, dict]
    header: str

    @classmethod
    def read(cls, path: Path) -> Table:
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = {}
        for row in csv.DictReader(lines[1:]):
            rows[row["config"]] = {"params": int(row["params_total"]),
                                   "accuracy": [float(v) for v in row["epoch_val_accuracy"].split()],
                                   "loss": [float(v) for v in row["epoch_val_loss"].split()]}
        return cls(rows, lines[0].lstrip("# "))

    def score(self, key: str, epochs: int) -> float:
        """Validation accuracy of a trial trained `epochs` epochs: that of its least validation loss so far, as
        the search keeps the weights at minimum validation loss."""
        entry = self.rows[key]
        losses = entry["loss"][:epochs]
        return entry["accuracy"][losses.index(min(losses))]

    def points(self) -> list[tuple[float, float]]:
        return [(entry["params"], self.score(key, EPOCHS)) for key, entry in self.rows.items()]


def replay(space, table: Table, label: str, kind, options: dict, seed: int, trials: int, workdir: Path) -> list:
    """One search of `kind` against the table: per trial (params, validation accuracy, epochs trained)."""
    hp = keras_tuner.HyperParameters()
    search_space.declare(hp, space)
    extra = {} if kind is oracles.HyperbandOracle else {"max_trials": trials}
    oracle = kind(space, None, 16, objective=keras_tuner.Objective("val_accuracy", "max"), hyperparameters=hp,
                  seed=seed, **extra, **options)
    oracle._set_project_dir(str(workdir), f"{label.replace(' ', '_')}_{seed}")
    history = []
    while len(history) < trials:
        trial = oracle.create_trial("tuner0")
        if trial.status != "RUNNING":
            break
        values = trial.hyperparameters.values
        key = json.dumps(pareto_table.searched(space, values), sort_keys=True)
        epochs = values.get("tuner/epochs", EPOCHS)
        accuracy, params = table.score(key, epochs), table.rows[key]["params"]
        oracle.update_trial(trial.trial_id, {"val_accuracy": accuracy, "params_total": params})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        history.append((params, accuracy, epochs - values.get("tuner/initial_epoch", 0)))
    return history


def hypervolumes(history: list, reference) -> list[float]:
    """The hypervolume after each trial."""
    return [pareto_geometry.hypervolume([(p, a) for p, a, _ in history[:n]], reference)
            for n in range(1, len(history) + 1)]


def at(curve: list[float], n: int) -> float:
    """The hypervolume after n trials (a search that stopped earlier keeps its last)."""
    return curve[min(n, len(curve)) - 1]


def trials_to(curve: list[float], target: float) -> int | None:
    return next((n for n, volume in enumerate(curve, 1) if volume >= target - 1e-12), None)


def spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.4f}"


def run_replay(args) -> tuple[list[dict], list[str], dict]:
    space = search_space.load(pareto_table.SPACE)
    table = Table.read(args.table)
    reference = tuple(space.objective["hv_reference"])
    best = pareto_geometry.hypervolume(table.points(), reference)
    curves, epochs_used = {}, {}
    with tempfile.TemporaryDirectory() as workdir:
        for label, kind, options in ORACLES:
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # keras-tuner's oracles print every trial
                runs = [replay(space, table, label, kind, options, seed, args.trials, Path(workdir))
                        for seed in range(args.seeds)]
            curves[label] = [hypervolumes(history, reference) for history in runs]
            epochs_used[label] = [[sum(e for _, _, e in history[:n]) for n in range(1, len(history) + 1)]
                                  for history in runs]
            print(f"{label}: {args.seeds} seeds in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    rows = [summary_row(label, curves[label], epochs_used[label], best, args.trials) for label, _, _ in ORACLES]
    text = replay_text(rows, curves, best, table, args)
    return rows, text, {"curves": curves, "epochs": epochs_used, "best": best}


def summary_row(label: str, curves: list, epochs: list, best: float, trials: int) -> dict:
    row = {"tuner": label}
    for n in (n for n in CHECKPOINTS if n <= trials):
        row[f"HV@{n}"] = spread([at(curve, n) for curve in curves])
    for share in SHARES:
        reached = [n for n in (trials_to(curve, share * best) for curve in curves) if n is not None]
        deviation = statistics.stdev(reached) if len(reached) > 1 else 0.0
        row[f"trials to {share:.0%}"] = (f"{statistics.mean(reached):.1f} ± {deviation:.1f} "
                                         f"({len(reached)}/{len(curves)})" if reached else f"never (0/{len(curves)})")
    row["epochs for N trials"] = f"{statistics.mean(e[-1] for e in epochs):.0f}"
    return row


# (challenger, baseline): the comparisons the note must state, and whether the gap preference earns its keep.
COMPARISONS = (("pareto", "random"), ("pareto", "bayesian"), ("pareto", "hyperband"), ("pareto nsga2", "random"),
               ("pareto gap4", "pareto"))


def comparison_rows(curves: dict, best: float, trials: int) -> list[dict]:
    """Per comparison and checkpoint: the difference of mean hypervolumes, how often a seed of the challenger
    beats one of the baseline, and a one-sided Mann-Whitney U test."""
    from scipy.stats import mannwhitneyu

    rows = []
    for challenger, baseline in COMPARISONS:
        for n in (n for n in (10, 20, 40) if n <= trials):
            ours, theirs = [at(c, n) for c in curves[challenger]], [at(c, n) for c in curves[baseline]]
            gain = statistics.mean(ours) - statistics.mean(theirs)
            wins = sum((o > t) + 0.5 * (o == t) for o in ours for t in theirs) / (len(ours) * len(theirs))
            rows.append({"challenger": challenger, "baseline": baseline, "trials": n, "HV gain": f"{gain:+.4f}",
                         "share of the baseline's shortfall closed": f"{gain / (best - statistics.mean(theirs)):.0%}",
                         "P(challenger seed > baseline seed)": f"{wins:.2f}",
                         "Mann-Whitney p (one-sided)": f"{mannwhitneyu(ours, theirs, alternative='greater').pvalue:.2g}"})
    return rows


def replay_text(rows, curves, best, table, args) -> list[str]:
    return [f"The table: {table.header}. Its whole front's hypervolume (every configuration trained): "
            f"{best:.4f}.", "", common.markdown_table(rows), "",
            f"HV@N: hypervolume after N trials, mean ± standard deviation over {args.seeds} seeds. Trials to X%: "
            "trials until the hypervolume reaches X% of the whole table's, mean ± standard deviation over the "
            "seeds that reached it within the trials (how many reached it). Epochs: what the N trials trained "
            "(Hyperband's short and continued trials cost less).", "", "## Comparisons", "",
            common.markdown_table(comparison_rows(curves, best, args.trials)), "",
            "HV gain: challenger's mean minus baseline's; the shortfall is the baseline's distance from the whole "
            "table's hypervolume."]


def run_real(args) -> tuple[list[dict], list[str], dict]:
    """One search per tuner, trained for real on the default corpus: its hypervolume after each trial, against
    what the replay predicts for the same tuner (benchmarks/results/pareto_bench_replay.csv). The searches
    live in --workdir, so an interrupted run resumes (a finished search is read back, not retrained)."""
    space = search_space.load(pareto_table.SPACE)
    epochs = 2 if args.quick else EPOCHS
    space = dataclasses.replace(space, training={**space.training, "epochs": epochs, "patience": epochs})
    reference = tuple(space.objective["hv_reference"])
    splits, class_names, noise = common.load_default_corpus()
    rows, curves, epochs_used, predicted = [], {}, {}, _replayed()
    for name in REAL_TUNERS:
        options = {"max_epochs": epochs, "factor": 3, "hyperband_iterations": 1} if name == "hyperband" \
            else {"max_trials": args.trials}
        tuned = dataclasses.replace(space, tuner={"name": name, **options})
        tuner = search_run.run_search(tuned, splits, args.workdir, tuner_name=name, class_names=class_names,
                                  noise=noise)
        history, fit_seconds = _history(tuner, epochs)
        curves[name] = [hypervolumes(history, reference)]
        epochs_used[name] = [[sum(e for _, _, e in history[:n]) for n in range(1, len(history) + 1)]]
        n = min(args.trials, len(history))
        rows.append({"tuner": name, "trials": len(history), "fit minutes": round(fit_seconds / 60, 1),
                     "epochs trained": epochs_used[name][0][-1], "N": n, "HV@N": round(at(curves[name][0], n), 4),
                     "replay's HV@N": predicted.get(name, {}).get(f"HV@{n}", "-"),
                     "HV at the end": round(curves[name][0][-1], 4),
                     "front size": len(pareto_geometry.front_points([(p, a) for p, a, _ in history]))})
    text = [f"One search per tuner on {pareto_table.SPACE.relative_to(common.ROOT)}, the default corpus, {epochs} "
            f"epochs per trial (Hyperband: 1 iteration, max_epochs {epochs}, factor 3: 10 trials), seed 0; "
            f"hypervolume (log10 params, validation accuracy) against {reference}.", "",
            common.markdown_table(rows), "",
            "N: trials compared, the fewer of --trials and the search's own; replay's HV@N: the tabular replay's "
            "mean ± sd over its seeds for the same tuner and N (its checkpoints only; else -). Fit minutes: the "
            "trials' training time, summed."]
    best = max(curve[-1] for runs in curves.values() for curve in runs)
    return rows, text, {"curves": curves, "epochs": epochs_used, "best": best}


def _history(tuner, epochs: int) -> tuple[list, float]:
    """Per completed trial, in trial order, (params, validation accuracy, epochs trained); and their fit seconds."""
    history, seconds = [], 0.0
    for trial in sorted(tuner.oracle.trials.values(), key=lambda trial: int(trial.trial_id)):
        if trial.status != "COMPLETED":
            continue
        values = trial.hyperparameters.values
        trained = values.get("tuner/epochs", epochs) - values.get("tuner/initial_epoch", 0)
        history.append((trial.metrics.get_last_value("params_total"), trial.metrics.get_last_value("val_accuracy"),
                        trained))
        seconds += trial.metrics.get_last_value("train_seconds")
    return history, seconds


def _replayed() -> dict[str, dict]:
    path = common.RESULTS / "pareto_bench_replay.csv"
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as stream:
        return {row["tuner"]: row for row in csv.DictReader(stream)}


def plot(data: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (by_trial, by_epoch) = plt.subplots(1, 2, figsize=(12, 5))
    for label, curves in data["curves"].items():
        length = max(len(curve) for curve in curves)
        mean = [statistics.mean(at(curve, n) for curve in curves) for n in range(1, length + 1)]
        deviation = [statistics.pstdev(at(curve, n) for curve in curves) for n in range(1, length + 1)]
        trials = range(1, length + 1)
        by_trial.plot(trials, mean, label=label)
        by_trial.fill_between(trials, [m - d for m, d in zip(mean, deviation)],
                              [m + d for m, d in zip(mean, deviation)], alpha=0.12)
        epochs = [statistics.mean(e[min(n, len(e)) - 1] for e in data["epochs"][label]) for n in trials]
        by_epoch.plot(epochs, mean, label=label)
    for axes, xlabel in ((by_trial, "trials"), (by_epoch, "epochs trained (mean over seeds)")):
        axes.axhline(data["best"], color="black", linestyle=":", label="every configuration")
        axes.set(xlabel=xlabel, ylabel="hypervolume (log10 params, val accuracy)")
        axes.grid(alpha=0.3)
    by_trial.legend(fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def write(mode: str, rows, text, args, seconds: float, data: dict | None) -> None:
    stem = common.RESULTS / f"pareto_bench_{mode}{'_quick' if args.quick else ''}"
    with open(stem.with_suffix(".csv"), "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if data:
        plot(data, stem.with_suffix(".png"), f"{mode}: hypervolume as the search goes (mean, ±1 sd band)")
    command = " ".join([".venv/bin/python", "benchmarks/pareto_bench.py", *sys.argv[1:]])
    header = [f"# Issue 11: the front, found faster? ({mode})", "",
              f"Machine: {common.machine()}. Date: {datetime.date.today()}. Command: `{command}` "
              f"({seconds / 60:.1f} min). Versions: {common.versions()}, optuna {optuna_version()}.", ""]
    stem.with_suffix(".md").write_text("\n".join(header + text) + "\n", encoding="utf-8")
    print("\n".join(text))


def optuna_version() -> str:
    from importlib import metadata

    return metadata.version("optuna")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["replay", "real"])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--trials", type=int)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--table", type=Path, default=pareto_table.TABLE, help="replay: the table to read")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tuner-app-pareto-real"),
                        help="real: where the searches live (a rerun resumes them)")
    args = parser.parse_args()
    if args.quick:
        args.seeds = min(args.seeds, 3)
    started = time.perf_counter()
    if args.mode == "replay":
        args.trials = args.trials or (10 if args.quick else 40)
        rows, text, data = run_replay(args)
    else:
        args.trials = args.trials or (2 if args.quick else 15)
        rows, text, data = run_real(args)
    write(args.mode, rows, text, args, time.perf_counter() - started, data)


if __name__ == "__main__":
    main()
