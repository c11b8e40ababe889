"""Issue 15 part 1: the seed's study re-run here, and the search against it, on one dataset in one run.

Datasets: `default`, the built-in synthetic corpus (16 words x 200 clips, seed 0: 2,560 train / 320 / 320 clips);
`fsdd`, the Free Spoken Digit Dataset imported in place (10 digits, its own split: 2,400 / 300 / 300).
Every model trains on the same splits for at most 8 epochs, patience 3: the seed's grids (seed_2d.yaml: 16
feasible models, seed_1d.yaml: 20), the searches kws.yaml, cnn2d.yaml, cnn1d.yaml and `--tuner pareto` on
kws.yaml (6 trials each, at most 500,000 params; kws.yaml without its STFT front-end, as in kws_front.py: a 257x99
input trains at 100-210 clips/s on 2 cores), and DS-CNN-S, TC-ResNet8, BC-ResNet-1 (kws.yaml's augmentation, as
kws_front.py trains them). Up to 3 models of the searched front (on validation) are retrained with seeds 0-2.
Reports the seed-style table, one Pareto plot of every set, per seed row the smallest searched model at least
as accurate on test and the size ratio, each set's hypervolume against (1e8 params, accuracy 0), the front's
test accuracy over 3 seeds, and the seed's four claims checked on the seed's numbers and on ours.

Usage: .venv/bin/python benchmarks/seed_study.py {default,fsdd} [--quick] [--epochs N] [--patience N]
Wall time of the full mode, per dataset, on 2 cores with AVX-512 (2026-11-26): 55.4 minutes on the default
corpus (the seed grids 35 of them, the searches 16), 54.0 on FSDD. AVX2-only machines are about 4x slower:
give them fewer --epochs to stay within 90 minutes. --quick
(192/64/64 clips, 3 epochs, the first 3 models of each grid, 2 trials per search, one front model) checks
that it runs in under 5 minutes; its numbers are no claim.
Writes benchmarks/results/seed_study_<dataset>[_quick].{md,csv,png}.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import kws_front  # noqa: E402
from tuner_app.device.budget import Budget  # noqa: E402
from tuner_app.model.architecture import configured  # noqa: E402
from tuner_app.model.space import search_space  # noqa: E402
from tuner_app.search import pareto_geometry  # noqa: E402
from tuner_app.search import run as search_run  # noqa: E402

# (label, space, tuner): the seed's grids, then the searches
SETS = (("seed 2D grid", "seed_2d", None), ("seed 1D grid", "seed_1d", None), ("kws search", "kws", None),
        ("cnn2d search", "cnn2d", None), ("cnn1d search", "cnn1d", None), ("pareto search", "kws", "pareto"))
REFERENCES = {"DS-CNN-S": "dscnn_s", "TC-ResNet8": "tcresnet8", "BC-ResNet-1": "bcresnet1"}
SEARCH_BUDGET = 500_000  # ~1/3 of the seed's smallest model (1.3M); the goals are 1/10 and 1/100 of its rows
HV_REFERENCE = search_space.HV_REFERENCES["params_total"]
FULL = {"epochs": 8, "patience": 3, "trials": 6, "front": 3, "grid": None, "clips": None}
QUICK = {"epochs": 3, "patience": 1, "trials": 2, "front": 1, "grid": 3,
         "clips": {"train": 192, "validation": 64, "test": 64}}
SEEDS = (0, 1, 2)


@dataclasses.dataclass
class Study:
    """What every training of one run shares."""

    splits: dict
    class_names: list[str]
    noise: object
    workdir: Path
    plan: dict


def load_dataset(name: str, workdir: Path, plan: dict) -> Study:
    if name == "fsdd":
        (splits, class_names), noise = common.load_fsdd(workdir), None
    else:
        splits, class_names, noise = common.load_default_corpus()
    if plan["clips"]:
        splits = common.subsample(splits, plan["clips"])
    return Study(splits, class_names, noise, workdir, plan)


def train(study: Study, label: str, space, tuner_name=None, max_params=None, seed=0) -> list[dict]:
    """Run one search (or grid, or single model); one row per completed trial, with its values kept."""
    space = kws_front.with_training(space, study.plan["epochs"], study.plan["patience"])
    started = time.perf_counter()
    tuner = search_run.run_search(space, study.splits, study.workdir / f"{label.replace(' ', '_')}_s{seed}",
                                  class_names=study.class_names, noise=study.noise, budget=Budget(max_params),
                                  seed=seed, fresh=True, tuner_name=tuner_name)
    rows = [row_of(label, space, trial, len(study.class_names)) for trial in common.completed_trials(tuner)]
    print(f"{label}: {len(rows)} models in {time.perf_counter() - started:.0f} s", flush=True)
    return rows


def row_of(label: str, space, trial: dict, n_classes: int) -> dict:
    values = {name: value for name, value in trial["values"].items() if name in space.hyperparameters}
    batch_norm = " + BN" if values.get("batch_norm") is True else ""
    return {"set": label, "model": kws_front.describe(space, values) + batch_norm,
            "params": configured.sizes(space, values, n_classes)["params_total"],
            "val": round(trial["val_accuracy"], 4), "test": round(trial.get("test_accuracy", float("nan")), 4),
            "seconds": round(trial.get("train_seconds", 0)), "_space": space, "_values": values}


def searches(study: Study) -> list[dict]:
    """The seed's grids (each whole but in --quick), then each search within the plan's trials and budget."""
    rows = []
    for label, name, tuner_name in SETS:
        space, grid = kws_front.load(name), "grid" in label
        if name == "kws":  # without the STFT front-end, as kws_front.py: one STFT trial costs ten compact ones
            frontend = {**space.hyperparameters["frontend"], "values": kws_front.FSDD_FRONTENDS}
            space = dataclasses.replace(space, hyperparameters={**space.hyperparameters, "frontend": frontend})
        trials = study.plan["grid"] if grid else study.plan["trials"]
        space = dataclasses.replace(space, tuner={**space.tuner, "max_trials": trials}) if trials else space
        rows += train(study, label, space, tuner_name=tuner_name, max_params=None if grid else SEARCH_BUDGET)
    return rows


def references(study: Study) -> list[dict]:
    augment = kws_front.load("kws").augment
    return [row for label, name in REFERENCES.items()
            for row in train(study, label, dataclasses.replace(kws_front.load(name), augment=augment))]


def fixed(space, values: dict):
    """The space with every hyperparameter fixed at `values`: one model, trained again with another seed."""
    hp = {name: {"type": "fixed", "value": value} for name, value in values.items()}
    return dataclasses.replace(space, hyperparameters=hp, tuner={"name": "grid", "max_trials": 1})


def spread(study: Study, searched: list[dict]) -> list[dict]:
    """Retrain up to plan['front'] models of the searched front (on validation) with each seed."""
    front = kws_front.front(searched)
    count = min(study.plan["front"], len(front))
    chosen = [front[round(i * (len(front) - 1) / max(count - 1, 1))] for i in range(count)]
    rows = []
    for index, row in enumerate(chosen):
        tests = [train(study, f"front{index}", fixed(row["_space"], row["_values"]), seed=seed)[0]["test"]
                 for seed in SEEDS]
        rows.append({"model": row["model"], "set": row["set"], "params": row["params"],
                     "test per seed": " / ".join(f"{test:.4f}" for test in tests),
                     "mean": round(statistics.mean(tests), 4), "std": round(statistics.stdev(tests), 4)})
    return rows


def seed_style(grid_rows: list[dict]) -> list[dict]:
    """The grid rows keyed (model, convs, FCs, BN), beside the seed's published row for the same model."""
    published = {(row["model"], int(row["conv_layers"]), int(row["fc_layers"]), row["batch_norm"] == "true"): row
                 for row in common.seed_reference()}
    rows = []
    for row in grid_rows:
        values = row["_values"]
        key = ("cnn2d" if "2D" in row["set"] else "cnn1d", values["conv_layers"], values["fc_layers"],
               bool(values["batch_norm"]))
        seed = published.get(key, {"label": row["model"], "params": "-", "accuracy": "nan"})
        rows.append({"key": key, "label": seed["label"], "params": row["params"], "test": row["test"],
                     "val": row["val"], "seed's params": seed["params"], "seed's test": float(seed["accuracy"])})
    return sorted(rows, key=lambda row: (row["key"][0] != "cnn2d", row["key"][3], row["key"][1], row["key"][2]))


def depth_pairs(keys):
    def deepest(m, f, b):
        return max(c for (m2, c, f2, b2) in keys if (m2, f2, b2) == (m, f, b))

    return [((m, deepest(m, f, b), f, b), (m, c, f, b)) for (m, c, f, b) in keys if c == 1 and deepest(m, f, b) > 1]


def fc_pairs(keys):
    return [((m, c, 2, b), (m, c, f, b)) for (m, c, f, b) in keys if f == 1 and (m, c, 2, b) in keys]


def bn_pairs(keys):
    return [((m, c, f, True), (m, c, f, b)) for (m, c, f, b) in keys if not b and c >= 3 and (m, c, f, True) in keys]


def dim_pairs(keys):
    return [(("cnn2d", c, f, b), (m, c, f, b)) for (m, c, f, b) in keys if m == "cnn1d" and ("cnn2d", c, f, b) in keys]


# (claim, how it is measured, its pairs (the side it favours, the other), rule): "helps" is confirmed if the mean is
# above 0 and at least 3/4 of the pairs gain; "little" when the mean gain is at most one point (0.01).
CLAIMS = (("depth helps", "test accuracy of the deepest feasible stack minus the 1-conv one, per model x FC x BN",
           depth_pairs, "helps"),
          ("FC parameters add little accuracy", "2 FC minus 1 FC (+0.5M params), per model x depth x BN", fc_pairs,
           "little"),
          ("BN helps deeper nets", "BN on minus off, at 3 or more convs, per model x depth x FC", bn_pairs, "helps"),
          ("2D beats 1D at equal depth", "2D minus 1D, per depth (1-4) x FC x BN", dim_pairs, "helps"))


def verdict(accuracy: dict, pairs, rule: str) -> str:
    deltas = [accuracy[better] - accuracy[base] for better, base in pairs(set(accuracy))]
    if not deltas:
        return "no pair measured"
    mean, gains = statistics.mean(deltas), sum(delta > 0 for delta in deltas)
    confirmed = mean <= 0.01 if rule == "little" else mean > 0 and gains >= 0.75 * len(deltas)
    return f"mean {mean:+.4f}, {gains}/{len(deltas)} pairs gain: {'confirmed' if confirmed else '**not confirmed**'}"


def claim_lines(seed_rows: list[dict]) -> list[str]:
    ours = {row["key"]: row["test"] for row in seed_rows}
    published = {(m, int(c), int(f), b == "true"): float(a) for m, c, f, b, a in (
        (row["model"], row["conv_layers"], row["fc_layers"], row["batch_norm"], row["accuracy"])
        for row in common.seed_reference())}
    return [f"- {name} ({how}): the seed's table {verdict(published, pairs, rule)}; here {verdict(ours, pairs, rule)}"
            for name, how, pairs, rule in CLAIMS]


def ratio_lines(seed_rows: list[dict], searched: list[dict]) -> list[str]:
    """Per seed row: the smallest searched model testing at least as well, and its share of the size."""
    lines = []
    for row in seed_rows:
        matching = sorted((other for other in searched if other["test"] >= row["test"]), key=lambda o: o["params"])
        head = f"- {row['label']} ({row['params']:,} params, test {row['test']:.4f}): "
        if not matching:
            lines.append(head + "no searched model tests as well")
            continue
        best, ratio = matching[0], matching[0]["params"] / row["params"]
        verdict = "<= 1/100" if ratio <= 0.01 else "<= 1/10" if ratio <= 0.1 else "**> 1/10: goal missed**"
        lines.append(head + f"{best['model']} ({best['set']}), {best['params']:,} params, test {best['test']:.4f}: "
                     f"1/{1 / ratio:.0f} of its size ({verdict})")
    return lines


def hypervolume_rows(rows: list[dict]) -> list[dict]:
    table = []
    for label in dict.fromkeys(row["set"] for row in rows):
        points = [(row["params"], row["test"]) for row in rows if row["set"] == label]
        table.append({"set": label, "models": len(points),
                      "hypervolume": round(pareto_geometry.hypervolume(points, HV_REFERENCE), 4)})
    searched = [(row["params"], row["test"]) for row in rows if "search" in row["set"]]
    table.append({"set": "all searches together", "models": len(searched),
                  "hypervolume": round(pareto_geometry.hypervolume(searched, HV_REFERENCE), 4)})
    return table


def report(rows: list[dict], spread_rows: list[dict], timings: list[str]) -> list[str]:
    seed_rows = seed_style([row for row in rows if "grid" in row["set"]])
    searched = [row for row in rows if "search" in row["set"]]
    return ["## The seed's table, re-measured (the seed's BN rows' params are derived, not published)",
            common.markdown_table([{name: value for name, value in row.items() if name != "key"}
                                   for row in seed_rows]), "",
            "## The seed's claims (helps: mean gain > 0, and >= 3/4 of the pairs gain; adds little: mean <= 0.01)",
            *claim_lines(seed_rows), "", "## Per seed row: the smallest searched model at least as accurate on test",
            *ratio_lines(seed_rows, searched), "",
            f"## Hypervolume of each set in (log10 params, test accuracy), against ({HV_REFERENCE[0]:,.0f} params, "
            f"accuracy {HV_REFERENCE[1]:g})",
            common.markdown_table(hypervolume_rows(rows)), "",
            f"## The searched front (on validation), retrained with seeds {', '.join(map(str, SEEDS))}",
            common.markdown_table(spread_rows) if spread_rows else "- no front model", "",
            "## Every trained model", common.markdown_table(public(rows)), "", "## Time", *timings]


def public(rows: list[dict]) -> list[dict]:  # without what only the run needs: each trial's space and values
    return [{key: value for key, value in row.items() if not key.startswith("_")} for row in rows]


def write(dataset: str, rows: list[dict], text: list[str], args, plan: dict, seconds: float) -> None:
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    stem = common.RESULTS / f"seed_study_{dataset}{'_quick' if args.quick else ''}"
    with open(stem.with_suffix(".csv"), "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(public(rows)[0]))
        writer.writeheader()
        writer.writerows(public(rows))
    common.scatter_plot(rows, stem.with_suffix(".png"), f"{dataset}: test accuracy against size, every set")
    command = " ".join([".venv/bin/python", "benchmarks/seed_study.py", *sys.argv[1:]])
    kind = ("a QUICK run (192/64/64 clips, a few models): it checks that the script runs; its numbers are no claim"
            if args.quick else "the full run (its wall time above; ~4x more on AVX2-only machines)")
    header = [f"# The seed's study re-run, against the search: {dataset}", "",
              (f"Machine: {common.machine()}. Date: {datetime.date.today()}. Command: `{command}` "
               f"({seconds / 60:.1f} min in all). Versions: {common.versions()}."), "",
              (f"This is {kind}. Every model: at most {plan['epochs']} epochs, patience {plan['patience']}, the "
               f"same splits; searches of {plan['trials']} trials, at most {SEARCH_BUDGET:,} params. Params are "
               f"total (with BN statistics) for {args.classes} classes. Plot: {stem.with_suffix('.png').name}; "
               f"every row: {stem.with_suffix('.csv').name}."), ""]
    stem.with_suffix(".md").write_text("\n".join(header + text) + "\n", encoding="utf-8")
    print("\n".join(text))


def run_all(study: Study) -> tuple[list[dict], list[dict], list[str]]:
    rows, timings = [], []
    for name, stage in (("seed grids and searches", searches), ("references", references)):
        started = time.perf_counter()
        rows += stage(study)
        timings.append(f"- {name}: {(time.perf_counter() - started) / 60:.1f} min")
    started = time.perf_counter()
    spread_rows = spread(study, [row for row in rows if "search" in row["set"]])
    timings.append(f"- the front over {len(SEEDS)} seeds: {(time.perf_counter() - started) / 60:.1f} min")
    return rows, spread_rows, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=["default", "fsdd"])
    parser.add_argument("--quick", action="store_true", help="a few tiny trainings: checks that it runs")
    parser.add_argument("--epochs", type=int, help=f"every model's maximum epochs (full: {FULL['epochs']})")
    parser.add_argument("--patience", type=int, help=f"early-stopping patience (full: {FULL['patience']})")
    args = parser.parse_args()
    plan = {**(QUICK if args.quick else FULL),
            **{key: value for key, value in (("epochs", args.epochs), ("patience", args.patience)) if value}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seed-study-") as workdir:
        study = load_dataset(args.dataset, Path(workdir), plan)
        args.classes = len(study.class_names)
        rows, spread_rows, timings = run_all(study)
    write(args.dataset, rows, report(rows, spread_rows, timings), args, plan, time.perf_counter() - started)


if __name__ == "__main__":
    main()
