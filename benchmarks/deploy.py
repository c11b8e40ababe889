"""Issue 25's goals, measured: the models as deployed, int8 on a small device.

Each reference (DS-CNN-S, BC-ResNet-1, TC-ResNet8) trains on each corpus with its own space's recipe at
--epochs and --patience (as benchmarks/speakers.py trains them), then is exported as `tuner-app export
--quantize int8` exports it. Per model, one row:

  float             the SavedModel's accuracy on the check clips (test split, at most 500)
  int8              model_int8.tflite (waveform in, front-end float, network int8) in LiteRT
  int8_features     model_int8_features.tflite (int8 features in, int8 scores out) in LiteRT
  tflm              the same file in TFLite Micro's own interpreter and reference kernels (`tflite-micro`)
  drop_*            float minus each int8 accuracy, in points
  flash_bytes       model_int8_features.tflite's size; tflm_arena_bytes: the arena TFLM allocates it in
  host_ms           median LiteRT invoke of the features-in model on this machine (one clip, one thread)

Goals: int8 within 1 point of float for every family, in TFLite and TFLite Micro. For scale, the MLPerf Tiny
reference DS-CNN's int8 model is 53,936 bytes (mlcommons/tiny, keyword_spotting/trained_models).

Usage: .venv/bin/python benchmarks/deploy.py [--corpora a,b] [--epochs N] [--patience N]
                                             [--workdir D | --resume D] [--quick]
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
from tuner_app.device import costs, tflite  # noqa: E402
from tuner_app.serving import export  # noqa: E402

REFERENCES = speakers.REFERENCES
DROPS = {"int8": "tflite_int8", "int8_features": "tflite_int8_features", "tflm": "tflm_int8_features"}  # points
LATENCY_RUNS = 50


def measured(label: str, corpus: str, tuner, splits, class_names, out: Path) -> list[dict[str, object]]:
    representative, check = tflite.samples(splits, class_names, class_names)
    rows = []
    for trial in tuner.oracle.trials.values():
        if trial.status != "COMPLETED":
            continue
        result = export.export_trial(tuner.get_trial_dir(trial.trial_id), out / f"{label}-{trial.trial_id}",
                                     force=True, quantize="int8", representative=representative, check=check)
        rows.append(row(label, corpus, result))
    return rows


def row(label: str, corpus: str, result) -> dict[str, object]:
    accuracy, features = result.accuracy, result.tflite["int8_features"]
    blob = Path(features["path"]).read_bytes()
    return {"corpus": corpus, "model": label, "params": result.metadata["params"],
            "macs": result.metadata["param_counts"]["macs"], "clips": accuracy["clips"],
            "float": round(accuracy["saved_model"], 4), "int8": round(accuracy["tflite_int8"], 4),
            "int8_features": round(accuracy["tflite_int8_features"], 4),
            "tflm": round(accuracy["tflm_int8_features"], 4),
            **{f"drop_{name}": round(100 * (accuracy["saved_model"] - accuracy[key]), 1) for name, key in DROPS.items()},
            "waveform_int8_bytes": result.tflite["int8"]["bytes"], "flash_bytes": features["bytes"],
            "tflm_arena_bytes": features["description"]["tflm_arena_bytes"],
            "host_ms": round(costs.host_latency_ms(blob, LATENCY_RUNS), 3)}


def run(corpus: str, args, workdir: Path) -> list[dict[str, object]]:
    splits, class_names, _ = off_chance.load(corpus, workdir / corpus)
    rows = []
    for label, name in REFERENCES.items():
        space = speakers.recipe(kws_front.load(name), args)
        tuner = kws_front.search(label, space, splits, workdir / corpus, class_names, fresh=not args.resume)
        rows += measured(label, corpus, tuner, splits, class_names, workdir / corpus / "exports")
    return rows


def verdict(rows: list[dict[str, object]]) -> list[str]:
    """Per int8 model, the goal 'within 1 point of float for every model' (a drop is float minus int8, in points:
    negative where int8 scored higher)."""
    lines = []
    for name in DROPS:
        worst = max(rows, key=lambda row: row[f"drop_{name}"])
        drop = worst[f"drop_{name}"]
        state = "met" if drop <= 1 else f"**missed by {drop - 1:.1f} points**"
        lines.append(f"- {name} within 1 point of float for every model: {state} (largest drop: {worst['model']} "
                     f"on {worst['corpus']}, {drop} points)")
    return lines


def write(rows: list[dict[str, object]], args, seconds: float) -> None:
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    stem = common.RESULTS / f"deploy{'_quick' if args.quick else ''}"
    common.write_csv(rows, stem.with_suffix(".csv"), list(rows[0]))
    text = [f"# Issue 25: the models as deployed (int8){' (quick: no claim)' * args.quick}", "",
            common.provenance("deploy.py", seconds), "",
            f"Each reference trained with its own recipe, at most {args.epochs} epochs, patience {args.patience}; "
            "exported with --quantize int8 (calibration: 100 training clips); accuracy on the check clips. "
            f"host_ms: median of {LATENCY_RUNS} LiteRT invokes of the features-in model, one thread.", "",
            *verdict(rows), "", common.markdown_table(rows)]
    stem.with_suffix(".md").write_text("\n".join(text) + "\n", encoding="utf-8")
    print("\n".join(text), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", default=",".join(off_chance.CORPORA),
                        help=f"comma-separated, of {', '.join(off_chance.CORPORA)}")
    parser.add_argument("--epochs", type=int, default=30, help="maximum epochs of each reference")
    parser.add_argument("--patience", type=int, default=8, help="early-stopping patience")
    common.add_run_dir_options(parser, "the corpora, trials and exports")
    parser.add_argument("--quick", action="store_true", help="2 epochs: checks that it runs")
    args = parser.parse_args()
    args.monitor = "val_accuracy"
    if args.quick:
        args.epochs, args.patience = 2, 1
    started, rows = time.perf_counter(), []
    with common.run_dir(args.workdir, "deploy-", resume=args.resume) as workdir:
        for corpus in args.corpora.split(","):  # written after each corpus: a stopped run keeps the finished ones
            rows += run(corpus, args, workdir)
            write(rows, args, time.perf_counter() - started)


if __name__ == "__main__":
    main()
