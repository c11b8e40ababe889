"""Search efficiency (issue 15, part 3): where a search's wall time goes besides `fit`, trials per hour for
each tuner, and the main job's time to its first result.

  tuners    random, bayesian, hyperband, grid and pareto, each a search of the same trial count on a generated
            tone corpus (16 classes, one tone each plus noise), in this process, with the real MLflow tracker
            (a temporary SQLite store) and the progress display. The space is search_spaces/smoke.yaml with
            learning_rate a choice of 6 (24 configurations; --max-params 1100 turns away the 6 largest) and
            2 epochs, patience 1; Hyperband runs max_epochs 2, factor 2 (5 trials an iteration, so the trial
            count is a multiple of 5). Wrappers that this script installs for the search only time each part
            (fit, build, clear_session, gc.collect, scoring, checkpoints, each MLflow hook, ...: COLUMNS).
  main job  `tuner-app search` with no arguments (search_spaces/default.yaml, the built-in corpus), a child
            process in an empty folder with its own ./mlruns: seconds from start to the first "done in" line
            on stderr (first trial finished) and to exit. --quick runs a copy of default.yaml cut to 2 epochs
            instead. Says whether the corpus cache ($TUNER_APP_CACHE, else ~/.cache/tuner-app) was warm.

Usage: .venv/bin/python benchmarks/search_efficiency.py [--quick] [--trials N] [--train-per-class N]
Expected wall time on 2 cores (AVX-512): about 3 minutes (measured 2026-11-26: tuners 2, the main job 1; up to 4x on
AVX2-only CPUs); --quick 3-4 minutes (5 trials a tuner, 4 training clips a class, the cut main job: no claim).
Writes benchmarks/results/search_efficiency.{csv,png,md} (a --quick run's summary says that it is one).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import gc
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

SPACE_FILE = "smoke_bench.yaml"
TUNERS = ("random", "bayesian", "hyperband", "grid", "pareto")
EPOCHS = 2
HYPERBAND_TRIALS = 5  # max_epochs 2, factor 2: trials of one Hyperband iteration (keras-tuner's brackets)
LEARNING_RATES = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.01]
MAX_PARAMS = 1100  # smoke's 2-conv, 1-FC configurations (1,128 params) are turned away untrained
CATEGORIES = ("fit", "build", "clear session", "gc", "evaluate", "latency", "checkpoint", "mlflow", "progress",
              "oracle", "state files", "tuner hooks")
TUNER_HOOKS = ("on_search_begin", "on_trial_begin", "run_trial", "_execute", "on_trial_end", "on_search_end")
COLUMNS = (
    "fit_s: inside keras.Model.fit, less the observer calls made from its epoch callback; outside_fit: wall_s less "
    "fit_s. build: CnnHyperModel.build (with Hyperband's weight loading); clear session: keras.backend."
    "clear_session, less the gc.collect it runs; gc: gc.collect (clear_session's and keras-tuner's _try_build's, "
    "before each build); evaluate: the val and test scores; latency: the single-clip latency; checkpoint: the "
    "trial's weights; mlflow: the tracker's hooks; oracle: trial creation (with rejected configurations) and "
    "updates; state files: the oracle's and tuner's JSON; tuner hooks: the rest of the tuner's trial hooks and "
    "run_trial; other: what is left (keras-tuner's search loop, the datasets, the search record). Each category "
    "counts a call's own time, less the timed calls inside it. epochs: epochs trained in all; gc_calls: "
    "gc.collect's calls.")
TRACKER_HOOKS = ("search_begin", "trial_begin", "epoch_end", "trial_end", "configuration_rejected", "search_end")


@contextlib.contextmanager
def instrumented(ledger: common.Ledger):
    """Time the search's parts for the block (this process only; the package is left as it is)."""
    import keras

    from tuner_app.model.architecture.build import CnnHyperModel
    from tuner_app.search import checkpoints, progress, run, scoring
    from tuner_app.tracking.tracker import MLflowTracker

    targets = [(keras.Model, "fit", "fit"), (CnnHyperModel, "build", "build"), (gc, "collect", "gc"),
               (keras.backend, "clear_session", "clear session"), (scoring, "scores", "evaluate"),
               (scoring, "latency_ms", "latency"), (checkpoints, "write_checkpoint", "checkpoint")]
    targets += [(MLflowTracker, hook, f"mlflow {hook}") for hook in TRACKER_HOOKS]
    targets += [(progress.ProgressReporter, hook, "progress") for hook in TRACKER_HOOKS]
    make_tuner = run.make_tuner
    with contextlib.ExitStack() as stack:
        for owner, name, category in targets:
            stack.enter_context(mock.patch.object(owner, name, ledger.wrap(category, getattr(owner, name))))
        stack.enter_context(mock.patch.object(run, "make_tuner", lambda *args, **kwargs: instrument_tuner(
            make_tuner(*args, **kwargs), ledger)))
        yield


def instrument_tuner(tuner, ledger: common.Ledger):
    """Time the oracle's work, the state files and the tuner's own hooks on this tuner's own objects."""
    for name in ("create_trial", "update_trial", "end_trial"):
        setattr(tuner.oracle, name, ledger.wrap("oracle", getattr(tuner.oracle, name)))
    tuner.oracle.save = ledger.wrap("state files", tuner.oracle.save)
    tuner.save = ledger.wrap("state files", tuner.save)
    for name in TUNER_HOOKS:
        setattr(tuner, name, ledger.wrap("tuner hooks", getattr(tuner, name)))
    tuner._try_build = ledger.wrap("tuner hooks", tuner._try_build)  # its clear_session and gc.collect: their own
    tuner._build_hypermodel = ledger.wrap("build", tuner._build_hypermodel)  # Hyperband's loads weights too
    return tuner


def bench_space(workdir: Path, trials: int):
    """smoke.yaml with learning_rate a choice, 2 epochs, and every tuner's options, written and loaded."""
    import yaml

    from tuner_app.model.space import search_space

    data = yaml.safe_load((common.ROOT / "search_spaces" / "smoke.yaml").read_text(encoding="utf-8"))
    data["hyperparameters"]["learning_rate"] = {"type": "choice", "values": LEARNING_RATES}
    data["training"].update(epochs=EPOCHS, patience=1)
    data["tuner"] = {"name": "random", "max_trials": trials}
    path = workdir / SPACE_FILE
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    space = search_space.load(str(path))
    hyperband = {"max_epochs": EPOCHS, "factor": 2, "hyperband_iterations": trials // HYPERBAND_TRIALS}
    return dataclasses.replace(space, tuner={**space.tuner, **hyperband})


def time_tuner(name: str, space, splits, classes, workdir: Path, uri: str) -> dict[str, object]:
    """One timed search with the real tracker and progress display: its row of seconds per category."""
    from tuner_app.device.budget import Budget
    from tuner_app.search import progress, run
    from tuner_app.tracking.tracker import MLflowTracker

    tracker = MLflowTracker(uri, "search-efficiency", workdir / SPACE_FILE, {"tuner": name})
    observers = [progress.ProgressReporter(stream=io.StringIO()), tracker]  # formatted, not shown
    ledger = common.Ledger()
    with instrumented(ledger):
        started = time.perf_counter()
        tuner = run.run_search(space, splits, workdir / "runs", tuner_name=name, budget=Budget(MAX_PARAMS),
                               fresh=True, class_names=classes, observers=observers)
        wall = time.perf_counter() - started
    trials = sum(1 for trial in tuner.oracle.trials.values() if trial.status == "COMPLETED")
    return tuner_row(name, wall, trials, len(tuner.rejected), ledger)


def tuner_row(name: str, wall: float, trials: int, rejected: int, ledger: common.Ledger) -> dict[str, object]:
    mlflow = {hook: ledger.seconds[f"mlflow {hook}"] for hook in TRACKER_HOOKS}
    spent = {**{category: ledger.seconds[category] for category in CATEGORIES}, "mlflow": sum(mlflow.values())}
    outside = wall - spent["fit"]
    return {"tuner": name, "trials": trials, "epochs": ledger.calls["mlflow epoch_end"], "rejected": rejected,
            "wall_s": round(wall, 2), "fit_s": round(spent["fit"], 2), "outside_fit_s": round(outside, 2),
            "outside_fit_share": round(outside / wall, 3), "trials_per_hour": round(3600 * trials / wall),
            "gc_calls": ledger.calls["gc"],
            **{f"{category.replace(' ', '_')}_s": round(spent[category], 2) for category in CATEGORIES[1:]},
            "other_s": round(wall - sum(spent.values()), 2),
            **{f"mlflow_{hook}_s": round(seconds, 2) for hook, seconds in mlflow.items()}}


def warm_up(space, splits, classes, workdir: Path, uri: str) -> float:
    """Untimed: a one-trial search (TensorFlow's first traces) and the store's schema, which no tuner should pay."""
    from tuner_app.search import run
    from tuner_app.tracking.store import client_for

    started = time.perf_counter()
    client_for(uri).search_experiments()
    one = dataclasses.replace(space, tuner={**space.tuner, "max_trials": 1})
    run.run_search(one, splits, workdir / "warm-up", fresh=True, class_names=classes)
    return time.perf_counter() - started


def time_tuners(args, workdir: Path) -> list[dict[str, object]]:
    splits, classes = common.tone_splits(args.train_per_class)
    space = bench_space(workdir, args.trials)
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    print(f"warm-up (untimed): {warm_up(space, splits, classes, workdir, uri):.1f} s", flush=True)
    rows = []
    for name in TUNERS:
        rows.append(time_tuner(name, space, splits, classes, workdir, uri))
        print(f"{name}: {rows[-1]['trials']} trials in {rows[-1]['wall_s']} s, {rows[-1]['fit_s']} s in fit",
              flush=True)
    print(common.markdown_table([{key: row[key] for key in list(row)[:9]} for row in rows]), flush=True)
    return rows


def cache_state(before: tuple[bool, set[str]]) -> str:
    """Cold or warm, from what the run added to the cache."""
    had_corpus, decoded = before
    added = common.default_cache_files()[1] - decoded
    if not had_corpus:
        return "cold (corpus synthesized and decoded in this run)"
    return "cold (corpus decoded in this run)" if added else "warm (corpus and decoded cache reused)"


def main_job_command(quick: bool, workdir: Path) -> list[str]:
    """`tuner-app search`, with --quick a copy of default.yaml cut to 2 epochs."""
    import yaml

    script = Path(sys.executable).with_name("tuner-app")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tuner_app.cli"]
    if not quick:
        return command + ["search"]
    data = yaml.safe_load((common.ROOT / "search_spaces" / "default.yaml").read_text(encoding="utf-8"))
    data["training"]["epochs"] = EPOCHS
    path = workdir / "default_quick.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return command + ["search", "--space", str(path)]


def time_main_job(quick: bool, workdir: Path) -> dict[str, object]:
    """Seconds from process start to the search's header, its first finished trial, and exit."""
    (folder := workdir / "main-job").mkdir()
    command, before = main_job_command(quick, workdir), common.default_cache_files()
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    marks: dict[str, float] = {}
    started = time.perf_counter()
    with open(folder / "stdout.txt", "w", encoding="utf-8") as stdout:
        child = subprocess.Popen(command, cwd=folder, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
        lines = []
        for line in child.stderr:
            lines.append(line)
            mark = "search_start_s" if line.startswith("Search ") else "first_result_s" if "done in" in line else ""
            if mark:
                marks.setdefault(mark, round(time.perf_counter() - started, 1))
        if child.wait() != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{''.join(lines[-30:])}")
    trials = sum("done in" in line for line in lines)
    return {"tuner": "main job" + (" (2 epochs)" if quick else ""), "trials": trials, "cache": cache_state(before),
            "wall_s": round(time.perf_counter() - started, 1), **marks,
            "command": " ".join(["tuner-app", *command[command.index("search"):]])}


def write(rows, job, args, seconds: float) -> None:
    stem = common.RESULTS / "search_efficiency"  # a quick run's too: its summary says it is one
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    common.write_csv(rows + ([job] if job else []), stem.with_suffix(".csv"),
                     list(rows[0]) + ["cache", "search_start_s", "first_result_s", "command"])
    parts = [category.replace(" ", "_") for category in CATEGORIES if category != "progress"] + ["other"]
    per_trial = {row["tuner"]: {part.replace("_", " "): float(row[f"{part}_s"]) / max(int(row["trials"]), 1)
                                for part in parts} for row in rows}
    common.stacked_bars(per_trial, stem.with_suffix(".png"), "seconds per completed trial",
                        f"Seconds per trial: fit and the rest ({rows[0]['trials']} trials each)")
    stem.with_suffix(".md").write_text(summary(rows, job, args, seconds, stem), encoding="utf-8")


def summary(rows, job, args, seconds: float, stem: Path) -> str:
    command = " ".join([".venv/bin/python", "benchmarks/search_efficiency.py", *sys.argv[1:]])
    quick = "**A quick run (`--quick`): it checks that the script runs; its numbers are no claim.** "
    header = (f"{quick if args.quick else ''}Machine: {common.machine()}. Date: {datetime.date.today()}. "
              f"Command: `{command}` ({seconds / 60:.1f} min in all). Versions: {common.versions()}. Expected "
              "wall time of the full mode on 2 cores: about 3 minutes (AVX-512; up to 4x on AVX2-only CPUs).")
    files = f"Plot: {stem.with_suffix('.png').name}; rows: {stem.with_suffix('.csv').name}."
    return "\n".join(["# Search efficiency", "", header, "", *tuners_section(rows, args),
                      *(main_job_section(job, args.quick) if job else []), "## Columns", "", COLUMNS, files, ""])


def tuners_section(rows, args) -> list[str]:
    corpus = (f"Corpus: generated tones, 16 classes, {args.train_per_class} training clips a class, 2 a class for "
              f"validation and test. Space: search_spaces/smoke.yaml, learning_rate a choice of "
              f"{len(LEARNING_RATES)}, {EPOCHS} epochs, patience 1, --max-params {MAX_PARAMS}. Real MLflow tracker "
              "on a SQLite store, progress display on. An untimed one-trial search ran first.")
    shown = [{key: row[key] for key in list(row)[:-len(TRACKER_HOOKS)]} for row in rows]
    mlflow = [{"tuner": row["tuner"], **{key: row[key] for key in list(row)[-len(TRACKER_HOOKS):]}} for row in rows]
    return [f"## Where a search's time goes, per tuner ({args.trials} trials each)", "", corpus, "",
            common.markdown_table(shown), "", reading(rows), "", "Seconds in each MLflow tracker hook:", "",
            common.markdown_table(mlflow), ""]


def main_job_section(job: dict[str, object], quick: bool) -> list[str]:
    cut = f" Quick mode ran a copy of default.yaml cut to {EPOCHS} epochs, not the main job." if quick else ""
    note = (f"Corpus cache: {job['cache']}. search_start_s: the search's header line (Python, TensorFlow, the "
            "corpus and its decoded cache are ready); first_result_s: the first \"done in\" line; wall_s: exit, "
            f"the Pareto analysis included.{cut}")
    return ["## Time to first result: the main job", "", common.markdown_table([job]), "", note, ""]


def reading(rows: list[dict[str, object]]) -> str:
    """The outside-fit share's range, and the largest part of it summed over the tuners."""
    shares = [float(row["outside_fit_share"]) for row in rows]
    parts = [category.replace(" ", "_") for category in CATEGORIES[1:]] + ["other"]
    totals = {part: sum(float(row[f"{part}_s"]) for row in rows) for part in parts}
    largest = max(totals, key=totals.get)
    trials, wall = sum(int(row["trials"]) for row in rows), sum(float(row["wall_s"]) for row in rows)
    return (f"Reading: {min(shares):.0%} to {max(shares):.0%} of the wall time is spent outside fit. Its largest "
            f"part over all tuners is {largest.replace('_', ' ')}: {totals[largest] / trials:.2f} s a trial, "
            f"{totals[largest] / wall:.0%} of the wall time.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 trials per tuner, 4 training clips a class, "
                        "the main job cut to 2 epochs: checks that it runs")
    parser.add_argument("--trials", type=int, default=15, help="trials per tuner (a multiple of 5)")
    parser.add_argument("--train-per-class", type=int, default=16, help="training tone clips per class")
    parser.add_argument("--no-main-job", action="store_true", help="skip the main job's time to first result")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.train_per_class = HYPERBAND_TRIALS, 4
    if args.trials % HYPERBAND_TRIALS or args.trials < HYPERBAND_TRIALS:
        parser.error(f"--trials: expected a positive multiple of {HYPERBAND_TRIALS} (Hyperband's iteration)")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="search-efficiency-") as workdir:
        rows = time_tuners(args, Path(workdir))
        job = None if args.no_main_job else time_main_job(args.quick, Path(workdir))
    if job:
        print(common.markdown_table([job]))
    write(rows, job, args, time.perf_counter() - started)


if __name__ == "__main__":
    main()
