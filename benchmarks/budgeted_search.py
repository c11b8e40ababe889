"""Issue 25's budgeted search, run as a user runs it: `tuner-app search --space kws_int8 --max-flash F --max-ram R`
on FSDD split by speaker (kws_int8.yaml: every trial scored in int8, the front int8 validation accuracy against
int8 flash). The budget defaults to DS-CNN-S int8's own flash and TFLite Micro arena, as benchmarks/deploy.py
measured them (results/deploy.csv), a little under; so the search looks for models that fit where DS-CNN-S fits.

Per trained trial, one row (from MLflow): its own trained int8 file's flash and TFLM arena against the budget,
float and int8 accuracies. Goals: no trained trial over budget; on the int8 front (validation), a member that
dominates DS-CNN-S int8 in flash, RAM and int8 test accuracy at once (no worse in all, better in one).

Usage: .venv/bin/python benchmarks/budgeted_search.py [--max-flash KB] [--max-ram KB] [--workdir D | --resume D]
Writes benchmarks/results/budgeted_search.{md,csv}.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import speakers  # noqa: E402
from tuner_app.search.pareto_geometry import non_dominated  # noqa: E402
from tuner_app.tracking import runs  # noqa: E402

KB = 1024
COMPARED = (("flash_bytes", -1), ("ram_bytes", -1), ("test_accuracy_int8", 1))  # (metric, which way is better)


def reference(corpus: str = "fsdd-speakers") -> dict[str, float]:
    """DS-CNN-S int8 as deploy.py measured it on the corpus: flash, TFLM arena, int8 test accuracy (LiteRT)."""
    with open(common.RESULTS / "deploy.csv", newline="", encoding="utf-8") as stream:
        row = next(row for row in csv.DictReader(stream)
                   if row["corpus"] == corpus and row["model"].startswith("DS-CNN-S"))
    return {"flash_bytes": float(row["flash_bytes"]), "ram_bytes": float(row["tflm_arena_bytes"]),
            "test_accuracy_int8": float(row["int8_features"])}


def search(args, workdir: Path) -> str:
    """Run (or resume) the search through the CLI; the tracking URI of its runs."""
    speakers.load_fsdd_by_speaker(workdir)  # imports FSDD split by speaker into workdir/fsdd once
    uri = f"sqlite:///{workdir}/mlruns/mlflow.db"
    command = [sys.executable, "-m", "tuner_app.cli", "search", "--space", "kws_int8", "--data",
               str(workdir / "fsdd"), "--cache-dir", str(workdir / "search-cache"), "--runs-dir",
               str(workdir / "runs"), "--tracking-uri", uri, "--max-flash", str(args.max_flash), "--max-ram",
               str(args.max_ram)]
    subprocess.run(command, check=True)
    return uri


def rows_of(uri: str, budget: dict[str, float]) -> list[dict[str, object]]:
    trials = [row for row in runs.trial_runs(uri, "tuner-app") if row["status"] == "FINISHED"
              and "flash_bytes" in row["metrics"] and "val_accuracy_int8" in row["metrics"]]
    rows = [{"trial": row["trial_id"], **{key: row["hyperparameters"].get(key) for key in ("family", "frontend")},
             "params": int(row["metrics"]["params_total"]), **_metrics(row["metrics"]),
             "within_budget": all(row["metrics"][key] <= limit for key, limit in budget.items())} for row in trials]
    on_front = set(non_dominated([(row["flash_bytes"], row["val_accuracy_int8"]) for row in rows]))
    return [{**row, "front": index in on_front} for index, row in enumerate(rows)]


def _metrics(metrics: dict[str, float]) -> dict[str, object]:
    names = ("best_val_accuracy", "test_accuracy", "val_accuracy_int8", "test_accuracy_int8")
    return {"flash_bytes": int(metrics["flash_bytes"]), "ram_bytes": int(metrics["ram_bytes"]),
            **{name: round(metrics[name], 4) for name in names if name in metrics}}


def verdicts(rows: list[dict[str, object]], budget: dict[str, float], ds_cnn: dict[str, float]) -> list[str]:
    over = [row["trial"] for row in rows if not row["within_budget"]]
    winners = [row for row in rows if row["front"] and common.dominates(row, ds_cnn, COMPARED)]
    return [f"- every trained trial within --max-flash {round(budget['flash_bytes'] / KB, 3):g} KB and --max-ram "
            f"{round(budget['ram_bytes'] / KB, 3):g} KB (its own trained int8 file and TFLM arena): "
            + ("met" if not over else f"**missed**: trials {', '.join(over)}"),
            f"- DS-CNN-S int8: {int(ds_cnn['flash_bytes']):,} B flash, {int(ds_cnn['ram_bytes']):,} B arena, "
            f"int8 test {ds_cnn['test_accuracy_int8']}",
            "- an int8 front member dominates DS-CNN-S int8 in flash, RAM and int8 test accuracy: "
            + (", ".join(f"trial {row['trial']} ({row['flash_bytes']:,} B, {row['ram_bytes']:,} B, "
                         f"{row['test_accuracy_int8']})" for row in winners) + ": met" if winners else "**missed**")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ds_cnn = reference()
    parser.add_argument("--max-flash", type=float, default=round(ds_cnn["flash_bytes"] / KB - 0.05, 1),
                        help="KB (default: DS-CNN-S int8's flash, a little under)")
    parser.add_argument("--max-ram", type=float, default=round(ds_cnn["ram_bytes"] / KB - 0.05, 1),
                        help="KB (default: DS-CNN-S int8's TFLM arena, a little under)")
    common.add_run_dir_options(parser, "the corpus, the trials and the MLflow store")
    args = parser.parse_args()
    started = time.perf_counter()
    budget = {"flash_bytes": int(args.max_flash * KB), "ram_bytes": int(args.max_ram * KB)}
    with common.run_dir(args.workdir, "budgeted-", resume=args.resume) as workdir:
        rows = rows_of(search(args, workdir), budget)
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    common.write_csv(rows, common.RESULTS / "budgeted_search.csv", common.columns(rows))
    text = ["# Issue 25: a budgeted search for the front as deployed", "",
            common.provenance("budgeted_search.py", time.perf_counter() - started), "",
            "FSDD split by speaker; kws_int8.yaml (pareto tuner, int8 validation accuracy against int8 flash); "
            "flash_bytes and ram_bytes are each trained trial's own int8 features-in file and TFLM arena; "
            "accuracies on the whole validation and test splits; front: the int8 front on validation.", "",
            *verdicts(rows, budget, ds_cnn), "", common.markdown_table(rows)]
    (common.RESULTS / "budgeted_search.md").write_text("\n".join(text) + "\n", encoding="utf-8")
    print("\n".join(text), flush=True)


if __name__ == "__main__":
    main()
