"""Data at the seed's size: decode time, cache size, peak RSS of `data prepare` and of a one-epoch search,
and the epoch time of one small model, per corpus; extrapolated linearly to Speech Commands v2.

Usage: python benchmarks/data_scale.py [--data DIR ...] [--code DIR] [--label NAME] [--out NAME]
(without --data it only rewrites the .md from the .csv)

Each step runs as its own `python -m tuner_app.cli` process (peak RSS from os.wait4 of that process), on a
fresh cache under --workdir. `--code DIR` puts DIR first on PYTHONPATH (a copy of an older tuner_app) for a
before/after comparison. Writes benchmarks/results/<out>.{md,csv}; rows already there under other labels
or corpora are kept, so runs of the old and the new code end up in one table.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, machine, markdown_table, versions

SPEECH_COMMANDS_V2_CLIPS = 105_829
# One small model (smoke's 2-conv CNN on an STFT), one trial of one epoch: the cost is the data's, not the search's.
SPACE = """model: cnn2d
frontend: {kind: stft, frame_length: 256, frame_step: 160, fft_length: 512}
augment: {}
hyperparameters:
  conv_layers: {type: fixed, value: 2}
  fc_layers: {type: fixed, value: 0}
  batch_norm: {type: fixed, value: false}
  filters: {type: fixed, value: 4}
  filter_growth: {type: fixed, value: 2}
  kernel_size: {type: fixed, value: 5}
  pool_size: {type: fixed, value: 2}
  head: {type: fixed, value: gap}
  fc_units_1: {type: fixed, value: 8}
  dropout: {type: fixed, value: 0.5}
  learning_rate: {type: fixed, value: 0.001}
tuner: {name: random, max_trials: 1}
training: {epochs: 1, batch_size: 64, patience: 1, seed: 0}
objective: {name: val_accuracy, direction: max}
"""
NOTES = """Each step is its own process on a fresh cache. prepare_s and prepare_peak_rss_mb: `tuner-app data prepare`
(decoding included); cache_mb: the decoded cache on disk; search_s and search_peak_rss_mb: a one-trial,
one-epoch `tuner-app search` of a 2-conv CNN (batch 64) on that cache, start-up, scoring and tracking
included; epoch_s: that trial's fit alone. Peak RSS includes Python, TensorFlow and the model (the smallest
corpus's row is about what they need alone). Rows of one label come from one run of one version of the code;
the machine is shared, so seconds are rough. A "(linear)" row extends its label's two largest corpora.
MB are MiB (2^20 bytes)."""
COLUMNS = ("label", "corpus", "clips", "prepare_s", "prepare_peak_rss_mb", "cache_mb", "search_s",
           "epoch_s", "search_peak_rss_mb", "command")
MEASURES = COLUMNS[3:-1]


def run_measured(args: list[str], code: Path | None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, combined output) of one tuner-app command in its own process."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if code:
        env["PYTHONPATH"] = str(code)
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "tuner_app.cli", *args], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"tuner-app {shlex.join(args)} failed:\n{output[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, output  # ru_maxrss is in KiB on Linux


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def epoch_seconds(runs_dir: Path) -> float:
    """The trial's own train_seconds (fit only: no start-up, no scoring)."""
    trial = json.loads(next(runs_dir.rglob("trial.json")).read_text(encoding="utf-8"))
    return float(trial["metrics"]["metrics"]["train_seconds"]["observations"][-1]["value"][0])


def count_clips(corpus: Path) -> int:
    return sum(1 for path in corpus.rglob("*.wav") if "_background_noise_" not in path.parts)


def measure(corpus: Path, workdir: Path, code: Path | None, label: str) -> dict[str, object]:
    cache_dir, runs_dir, space = workdir / "cache", workdir / "runs", workdir / "data_scale.yaml"
    space.write_text(SPACE, encoding="utf-8")
    common = ["--data", str(corpus), "--cache-dir", str(cache_dir)]
    prepare_s, prepare_rss, _ = run_measured(["data", "prepare", *common], code)
    search_s, search_rss, _ = run_measured(
        ["search", "--space", str(space), *common, "--runs-dir", str(runs_dir), "--fresh",
         "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}"], code)
    return {"label": label, "corpus": corpus.name, "clips": count_clips(corpus), "prepare_s": round(prepare_s, 1),
            "prepare_peak_rss_mb": round(prepare_rss), "cache_mb": round(folder_bytes(cache_dir / "decoded") / 2**20),
            "search_s": round(search_s, 1), "epoch_s": round(epoch_seconds(runs_dir), 1),
            "search_peak_rss_mb": round(search_rss)}


def extrapolated(rows: list[dict[str, object]], label: str) -> dict[str, object] | None:
    """The label's two largest corpora, extended linearly to Speech Commands v2 (one row: nothing to fit)."""
    mine = sorted((row for row in rows if row["label"] == label), key=lambda row: int(row["clips"]))[-2:]
    if len(mine) < 2 or int(mine[0]["clips"]) == int(mine[1]["clips"]):
        return None
    small, large = mine
    share = (SPEECH_COMMANDS_V2_CLIPS - int(large["clips"])) / (int(large["clips"]) - int(small["clips"]))
    row = {key: round(float(large[key]) + share * (float(large[key]) - float(small[key])), 1)
           for key in MEASURES}
    return {"label": f"{label} (linear)", "corpus": "Speech Commands v2", "clips": SPEECH_COMMANDS_V2_CLIPS, **row}


def merged_rows(new_rows: list[dict[str, object]], csv_path: Path) -> list[dict[str, object]]:
    kept = []
    if csv_path.exists():
        with open(csv_path, newline="", encoding="utf-8") as handle:
            kept = [row for row in csv.DictReader(handle) if "(linear)" not in row["label"]]
    replaced = {(row["label"], row["corpus"]) for row in new_rows}
    return [row for row in kept if (row["label"], row["corpus"]) not in replaced] + new_rows


def write_results(rows: list[dict[str, object]], out: str) -> str:
    csv_path, md_path = RESULTS / f"{out}.csv", RESULTS / f"{out}.md"
    measured = merged_rows(rows, csv_path)
    labels = dict.fromkeys(row["label"] for row in measured)
    table = measured + [row for label in labels if (row := extrapolated(measured, label))]
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(measured)
    commands = "\n".join(f"- `{command}`" for command in dict.fromkeys(row["command"] for row in measured))
    shown = [{key: value for key, value in row.items() if key != "command"} for row in table]
    text = (f"# Data at scale\n\nMachine: {machine()}\nDate: {datetime.date.today()}\nVersions: {versions()}\n\n"
            f"{markdown_table(shown)}\n\n{NOTES}\n\nCommands:\n{commands}\n")
    md_path.write_text(text, encoding="utf-8")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, nargs="*", default=[], help="Corpus directories, smallest first.")
    parser.add_argument("--code", type=Path, help="A tuner_app copy to measure instead (put first on PYTHONPATH).")
    parser.add_argument("--label", default="current", help="Names this code in the table (e.g. before, after).")
    parser.add_argument("--out", default="data_scale", help="Results file name under benchmarks/results.")
    parser.add_argument("--workdir", type=Path, help="Where caches and runs go (default: a temporary folder).")
    args = parser.parse_args()
    rows = []
    for corpus in args.data:
        workdir = Path(tempfile.mkdtemp(prefix=f"data_scale-{corpus.name}-", dir=args.workdir))
        row = measure(corpus.resolve(), workdir, args.code and args.code.resolve(), args.label)
        rows.append({**row, "command": shlex.join(["python", *sys.argv])})
        print(markdown_table([row]), flush=True)
    print(write_results(rows, args.out))


if __name__ == "__main__":
    main()
