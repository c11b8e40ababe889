"""Issue 25's goals, measured: the models as deployed, int8 on a small device.

Each reference (DS-CNN-S, BC-ResNet-1, TC-ResNet8) trains on each corpus with its own space's recipe at
--epochs and --patience (as benchmarks/speakers.py trains them), and the main job (default.yaml, its two trials,
as `make demo` trains them); `--searched CORPUS=DIR` adds every trial of a finished search's project folder
(e.g. the kws.yaml search of benchmarks/speakers.py). Each is exported as `tuner-app export --quantize int8`
exports it. Per model, one row:

  float             the SavedModel's accuracy on the check clips (test split, at most 500)
  int8              model_int8.tflite (waveform in, front-end float, network int8) in LiteRT
  int8_features     model_int8_features.tflite (int8 features in, int8 scores out) in LiteRT
  tflm              the same file in TFLite Micro's own interpreter and reference kernels (`tflite-micro`)
  drop_*            float minus each int8 accuracy, in points
  flash_bytes       model_int8_features.tflite's size; tflm_arena_bytes: the arena TFLM allocates it in;
                    ram_plan_bytes: our own estimate of that arena (device/memory_plan.py), the search's ram_bytes
  host_ms           median LiteRT invoke of the features-in model on this machine (one clip, one thread)
  val_int8          the features-in model's accuracy on the whole validation split (LiteRT): what chooses
                    the searched int8 front (on flash_bytes), marked in `front`

Goals: int8 within 1 point of float for every family, in TFLite and TFLite Micro; the searched int8 front
dominates DS-CNN-S int8 in flash, RAM and int8 accuracy at once. For scale, the MLPerf Tiny
reference DS-CNN's int8 model is 53,936 bytes (mlcommons/tiny, keyword_spotting/trained_models).

Usage: .venv/bin/python benchmarks/deploy.py [--corpora a,b] [--epochs N] [--patience N]
                                             [--searched CORPUS=DIR ...] [--workdir D | --resume D] [--quick]
Writes benchmarks/results/deploy{,_quick}.{md,csv}, after each corpus.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import kws_front  # noqa: E402
import off_chance  # noqa: E402
import speakers  # noqa: E402
from tuner_app.device import costs, memory_plan, tflite, trial_int8  # noqa: E402
from tuner_app.search.pareto_geometry import non_dominated  # noqa: E402
from tuner_app.serving import export  # noqa: E402

REFERENCES = speakers.REFERENCES
MAIN_JOB = "main job"  # default.yaml
DROPS = {"int8": "tflite_int8", "int8_features": "tflite_int8_features", "tflm": "tflm_int8_features"}  # points
LATENCY_RUNS = 50


def measured(label: str, corpus: str, trial_dirs, splits, class_names, out: Path) -> list[dict[str, object]]:
    """A row per trial: exported with int8 as `tuner-app export --quantize int8` does, and measured."""
    representative, check = tflite.samples(splits, class_names, class_names)
    rows = []
    for trial_dir in trial_dirs:
        name = f"{label}-{Path(trial_dir).name.removeprefix('trial_')}"
        result = export.export_trial(trial_dir, out / name.replace(" ", "_"), force=True, quantize="int8",
                                     representative=representative, check=check)
        rows.append({**row(name, corpus, result), "val_int8": validation_int8(trial_dir, result, splits)})
    return rows


def completed_dirs(tuner) -> list[str]:
    return [tuner.get_trial_dir(trial.trial_id) for trial in tuner.oracle.trials.values()
            if trial.status == "COMPLETED"]


def validation_int8(trial_dir, result, splits) -> float:
    """The features-in model's accuracy on the validation split, as a search scores its trials in int8."""
    blob = Path(result.tflite["int8_features"]["path"]).read_bytes()
    return round(trial_int8.accuracy(export.load_trial(trial_dir).model, blob, splits["validation"]), 4)


def row(label: str, corpus: str, result) -> dict[str, object]:
    accuracy, features = result.accuracy, result.tflite["int8_features"]
    blob = Path(features["path"]).read_bytes()
    return {"corpus": corpus, "model": label, "params": result.metadata["params"],
            "macs": result.metadata["param_counts"]["macs"], "clips": accuracy["clips"],
            "float": round(accuracy["saved_model"], 4), "int8": round(accuracy["tflite_int8"], 4),
            "int8_features": round(accuracy["tflite_int8_features"], 4),
            "tflm": round(accuracy["tflm_int8_features"], 4),
            **{f"drop_{name}": round(100 * (accuracy["saved_model"] - accuracy[key]), 1)
               for name, key in DROPS.items()},
            "waveform_int8_bytes": result.tflite["int8"]["bytes"], "flash_bytes": features["bytes"],
            "tflm_arena_bytes": features["description"]["tflm_arena_bytes"],
            "ram_plan_bytes": memory_plan.arena_bytes(blob),
            "host_ms": round(costs.host_latency_ms(blob, LATENCY_RUNS), 3)}


def run(corpus: str, args, workdir: Path) -> list[dict[str, object]]:
    splits, class_names, noise = off_chance.load(corpus, workdir / corpus)
    exports, rows = workdir / corpus / "exports", []
    for label, name in REFERENCES.items():
        space = speakers.recipe(kws_front.load(name), args)
        tuner = kws_front.search(label, space, splits, workdir / corpus, class_names, fresh=not args.resume)
        rows += measured(label, corpus, completed_dirs(tuner), splits, class_names, exports)
    main_job = kws_front.load("default")  # as make demo runs it: its own recipe, and the noise bank it has
    tuner = kws_front.search(MAIN_JOB, main_job, splits, workdir / corpus, class_names, noise, fresh=not args.resume)
    rows += measured(MAIN_JOB, corpus, completed_dirs(tuner), splits, class_names, exports)
    if corpus in args.searched:
        project = Path(args.searched[corpus])
        searched = measured("searched", corpus, sorted(map(str, project.glob("trial_*"))), splits, class_names,
                            exports)
        rows += with_front(searched)
    return rows


def with_front(searched: list[dict[str, object]]) -> list[dict[str, object]]:
    """The searched rows, `front` marking those on the int8 front (validation int8 accuracy against flash)."""
    on_front = set(non_dominated([(row["flash_bytes"], row["val_int8"]) for row in searched]))
    return [{**row, "front": index in on_front} for index, row in enumerate(searched)]


def dominance(rows: list[dict[str, object]]) -> list[str]:
    """Per corpus with a searched front: each front member within DS-CNN-S int8's flash and RAM against DS-CNN-S
    int8 on test (LiteRT and TFLM): it dominates when no worse in all four and better in one. Met when one does."""
    lines = []
    for corpus in dict.fromkeys(row["corpus"] for row in rows if row.get("front")):
        reference = next(row for row in rows if row["corpus"] == corpus and row["model"].startswith("DS-CNN-S"))
        fitting = [row for row in rows if row["corpus"] == corpus and row.get("front")
                   and row["flash_bytes"] <= reference["flash_bytes"]
                   and row["tflm_arena_bytes"] <= reference["tflm_arena_bytes"]]
        met = any(common.dominates(row, reference, COMPARED) for row in fitting)
        lines.append(f"- {corpus}: DS-CNN-S int8 {_costs(reference)}; front members within its flash and RAM: "
                     f"{len(fitting)}, {'one dominates: met' if met else 'none dominates: **missed**'}")
        lines += [f"  - {row['model']} {_costs(row)}: "
                  f"{'dominates' if common.dominates(row, reference, COMPARED) else 'does not'}" for row in fitting]
    return lines


COMPARED = (("flash_bytes", -1), ("tflm_arena_bytes", -1), ("int8_features", 1), ("tflm", 1))  # (key, better)


def _costs(row: dict[str, object]) -> str:
    return (f"({row['flash_bytes']:,} B flash, {row['tflm_arena_bytes']:,} B arena, int8 test "
            f"{row['int8_features']} LiteRT / {row['tflm']} TFLM)")


def verdict(rows: list[dict[str, object]], which: str = "model") -> list[str]:
    """Per int8 model, the goal 'within 1 point of float for every model' (a drop is float minus int8, in points:
    negative where int8 scored higher)."""
    lines = []
    for name in DROPS if rows else ():
        worst = max(rows, key=lambda row: row[f"drop_{name}"])
        drop = worst[f"drop_{name}"]
        state = "met" if drop <= 1 else f"**missed by {drop - 1:.1f} points**"
        lines.append(f"- {name} within 1 point of float for every {which}: {state} (largest drop: {worst['model']} "
                     f"on {worst['corpus']}, {drop} points)")
    return lines


def write(rows: list[dict[str, object]], args, seconds: float) -> None:
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    stem = common.RESULTS / f"deploy{'_quick' if args.quick else ''}"
    common.write_csv(rows, stem.with_suffix(".csv"), common.columns(rows))
    text = [f"# Issue 25: the models as deployed (int8){' (quick: no claim)' * args.quick}", "",
            common.provenance("deploy.py", seconds), "",
            f"Each reference trained with its own recipe, at most {args.epochs} epochs, patience {args.patience}; "
            "exported with --quantize int8 (calibration: 100 training clips); accuracy on the check clips. "
            f"host_ms: median of {LATENCY_RUNS} LiteRT invokes of the features-in model, one thread.", "",
            *verdict([row for row in rows if "front" not in row], "reference and main-job model"),
            *verdict([row for row in rows if "front" in row], "searched trial"), "",
            "The searched int8 front against DS-CNN-S int8 (flash, RAM and accuracy at once):",
            *(dominance(rows) or ["- no searched front in this run (--searched)"]), "", common.markdown_table(rows)]
    stem.with_suffix(".md").write_text("\n".join(text) + "\n", encoding="utf-8")
    print("\n".join(text), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", default=",".join(off_chance.CORPORA),
                        help=f"comma-separated, of {', '.join(off_chance.CORPORA)}")
    parser.add_argument("--epochs", type=int, default=30, help="maximum epochs of each reference")
    parser.add_argument("--patience", type=int, default=8, help="early-stopping patience")
    common.add_run_dir_options(parser, "the corpora, trials and exports")
    parser.add_argument("--searched", action="append", default=[], metavar="CORPUS=DIR",
                        help="a finished search's project folder (its trial_* folders) on that corpus")
    parser.add_argument("--quick", action="store_true", help="2 epochs: checks that it runs")
    args = parser.parse_args()
    args.monitor = "val_accuracy"
    args.searched = dict(item.split("=", 1) for item in args.searched)
    if args.quick:
        args.epochs, args.patience = 2, 1
    started, rows = time.perf_counter(), []
    with common.run_dir(args.workdir, "deploy-", resume=args.resume) as workdir:
        for corpus in args.corpora.split(","):  # written after each corpus: a stopped run keeps the finished ones
            rows += run(corpus, args, workdir)
            write(rows, args, time.perf_counter() - started)


if __name__ == "__main__":
    main()
