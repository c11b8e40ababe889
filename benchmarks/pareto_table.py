"""The tabular benchmark's table (the NAS-Bench method): every configuration of a finite space trained once.

Trains each feasible configuration of benchmarks/spaces/nas_table.yaml on the default corpus with the same short
recipe (grid search; one training each, seed 0) and writes benchmarks/results/pareto_table.csv: the searched
values, sizes, the kept weights' validation and test accuracy, and validation accuracy and loss after every
epoch (so a replayed Hyperband can read a trial trained for fewer epochs). benchmarks/pareto_bench.py replays
the oracles against it.

Usage: .venv/bin/python benchmarks/pareto_table.py [--workdir DIR] [--quick]
Expected wall time on 2 cores (AVX-512): 45 minutes for the 89 feasible configurations (measured 2026-11-26,
partly beside the test suite); an interrupted run resumes from --workdir. --quick trains 3 configurations for 2 epochs (its table is no claim).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from tuner_app.model.architecture import configured  # noqa: E402
from tuner_app.model.space import search_space  # noqa: E402
from tuner_app.search import run as search_run  # noqa: E402
from tuner_app.search.observers import SearchObserver  # noqa: E402

SPACE = common.ROOT / "benchmarks" / "spaces" / "nas_table.yaml"
TABLE = common.RESULTS / "pareto_table.csv"
EPOCH_LOG = "epochs.jsonl"


class EpochLog(SearchObserver):
    """Appends each finished trial's per-epoch validation accuracy and loss to a JSON-lines file, so that an
    interrupted run keeps them."""

    def __init__(self, path: Path):
        self.path, self.epochs = path, {}

    def trial_begin(self, tuner, trial) -> None:
        self.epochs[trial.trial_id] = []

    def epoch_end(self, tuner, trial, epoch, logs) -> None:
        self.epochs[trial.trial_id].append([float(logs["val_accuracy"]), float(logs["val_loss"])])

    def trial_end(self, tuner, trial, outcome) -> None:
        if outcome.status == "COMPLETED":
            with self.path.open("a", encoding="utf-8") as stream:
                stream.write(json.dumps({"trial_id": trial.trial_id, "epochs": self.epochs[trial.trial_id]}) + "\n")


def searched(space, values) -> dict:
    """The values of the space's non-fixed hyperparameters: what tells one configuration from another."""
    return {name: value for name, value in values.items()
            if name in space.hyperparameters and space.hyperparameters[name]["type"] != "fixed"}


def table_rows(space, tuner, epoch_log: Path) -> list[dict]:
    epochs = {}
    for line in epoch_log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        epochs[entry["trial_id"]] = entry["epochs"]
    rows = []
    for trial in common.completed_trials(tuner):
        values = {name: value for name, value in trial["values"].items() if name in space.hyperparameters}
        sizes = configured.sizes(space, values, 16)
        history = epochs.get(trial["trial_id"], [])
        rows.append({"config": json.dumps(searched(space, values), sort_keys=True),
                     "params_total": sizes["params_total"], "macs": sizes["macs"],
                     "model_bytes": int(trial["model_bytes"]), "val_accuracy": round(trial["val_accuracy"], 4),
                     "test_accuracy": round(trial["test_accuracy"], 4), "train_seconds": round(trial["train_seconds"], 1),
                     "epoch_val_accuracy": " ".join(f"{acc:.4f}" for acc, _ in history),
                     "epoch_val_loss": " ".join(f"{loss:.4f}" for _, loss in history)})
    return sorted(rows, key=lambda row: (row["params_total"], row["config"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tuner-app-pareto-table"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    space = search_space.load(SPACE)
    if args.quick:
        space = dataclasses.replace(space, training={**space.training, "epochs": 2},
                                    tuner={**space.tuner, "max_trials": 3})
    splits, class_names, noise = common.load_default_corpus()
    args.workdir.mkdir(parents=True, exist_ok=True)
    epoch_log = args.workdir / EPOCH_LOG
    started = time.perf_counter()
    tuner = search_run.run_search(space, splits, args.workdir, class_names=class_names, noise=noise,
                              observers=[EpochLog(epoch_log)])
    rows = table_rows(space, tuner, epoch_log)
    out = TABLE.with_name("pareto_table_quick.csv") if args.quick else TABLE
    with out.open("w", newline="", encoding="utf-8") as stream:
        stream.write(f"# {common.machine()}; {time.strftime('%Y-%m-%d')}; {common.versions()}; "
                     f"{len(rows)} configurations of {SPACE.relative_to(common.ROOT)}, {space.training['epochs']} "
                     f"epochs each; this run {(time.perf_counter() - started) / 60:.1f} min\n")
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} configurations -> {out}")


if __name__ == "__main__":
    main()
