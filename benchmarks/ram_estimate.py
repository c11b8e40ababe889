"""Our own RAM estimate of an int8 features-in model (tuner_app/device/memory_plan.py, from the .tflite alone)
against the arena TensorFlow Lite Micro itself allocates it in (device/micro.py, its recording allocator).

Models: the three references (dscnn_s, bcresnet1, tcresnet8 spaces) and --configs configurations sampled from
search_spaces/kws.yaml (seeded; infeasible ones skipped), all with untrained, seeded weights (the arena does not
depend on weight values), each converted as the search measures a configuration before it trains
(device/costs.py untrained_blob: batch norms set to the noise's statistics, calibrated on 8 clips of random noise,
amplitude 0.1). micro.arena_bytes prepares each model in a child process (TFLM's host build aborts a process on
some models); a model it refuses is skipped, counted.

Per model: params, flash bytes (the .tflite's size), the estimate and its parts (activations: the planned
head; persistent: the tail), TFLM's arena, error in % of TFLM's, and the estimate's time.

Goal: within 5% of TFLM's arena for every model.

Usage: .venv/bin/python benchmarks/ram_estimate.py [--configs N] [--seed S]
Writes benchmarks/results/ram_estimate.{md,csv}.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from importlib import metadata
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from tuner_app.device import costs, memory_plan, micro  # noqa: E402
from tuner_app.errors import InfeasibleConfig, TunerAppError  # noqa: E402
from tuner_app.model.architecture.build import build_model  # noqa: E402
from tuner_app.model.architecture.configured import N_CLASSES  # noqa: E402
from tuner_app.model.space import configurations, search_space  # noqa: E402

REFERENCES = {"DS-CNN-S": "dscnn_s", "BC-ResNet-1": "bcresnet1", "TC-ResNet8": "tcresnet8"}
GOAL_PERCENT = 5.0
SAMPLED = 80  # kws.yaml configurations drawn; the first --configs that build, convert and run in TFLM are kept
# What a family's size depends on, for the config column.
SIZE_KEYS = {"dscnn": ("dscnn_filters", "dscnn_blocks"), "bcresnet": ("bcresnet_width",),
             "tcresnet": ("tcresnet_width", "tcresnet_depth"),
             "seed": ("conv_layers", "filters", "filter_growth", "fc_layers", "fc_units_1")}


def converted(space, values: dict, seed: int) -> tuple[bytes, int]:
    """(the features-in int8 .tflite, params) of one configuration, weights seeded."""
    import keras

    keras.utils.set_random_seed(seed)
    model = build_model(space, values, N_CLASSES)
    return costs.untrained_blob(model), model.count_params()


def tflm_arena(blob: bytes) -> int | None:
    """micro.arena_bytes: None where TFLM refuses (or aborts on) the model."""
    try:
        return micro.arena_bytes(blob)
    except TunerAppError:
        return None


def row(label: str, config: str, blob: bytes, params: int, measured: int) -> dict[str, object]:
    parts, seconds = common.timed(lambda: memory_plan.breakdown(blob))
    estimate = parts["activations"] + parts["persistent"]
    return {"model": label, "config": config, "params": params, "flash_bytes": len(blob),
            "estimate_bytes": estimate, "activations": parts["activations"], "persistent": parts["persistent"],
            "tflm_arena_bytes": measured, "error_pct": round(100 * (estimate - measured) / measured, 2),
            "estimate_ms": round(1000 * seconds, 1)}


def config_of(values: dict) -> str:
    family = values.get("family", "")
    sizes = " ".join(f"{key.removeprefix(family + '_')}={values[key]}" for key in SIZE_KEYS.get(family, ())
                     if key in values)
    return f"{family} on {values.get('frontend', '')}: {sizes}".strip()


def measure(label: str, config: str, space, values: dict, seed: int, skipped: list) -> dict | None:
    try:
        blob, params = converted(space, values, seed)
    except (InfeasibleConfig, TunerAppError) as err:
        skipped.append(f"{label} ({config}): {str(err).splitlines()[0]}")
        return None
    measured = tflm_arena(blob)
    if measured is None:
        skipped.append(f"{label} ({config}): TFLite Micro aborted allocating it")
        return None
    result = row(label, config, blob, params, measured)
    print(" | ".join(str(value) for value in result.values()), flush=True)
    return result


def references(seed: int, skipped: list) -> list[dict]:
    rows = []
    for label, name in REFERENCES.items():
        space = search_space.load(search_space.locate(name))
        values = configurations.configurations(space, 1, seed)[0]
        rows.append(measure(label, name, space, values, seed, skipped))
    return [found for found in rows if found]


def sampled(count: int, seed: int, skipped: list) -> list[dict]:
    space, rows = search_space.load(search_space.locate("kws")), []
    for index, values in enumerate(configurations.configurations(space, SAMPLED, seed)):
        if len(rows) == count:
            break
        found = measure(f"kws #{index}", config_of(values), space, values, seed + index, skipped)
        rows += [found] if found else []
    return rows


def verdict(rows: list[dict]) -> str:
    worst = max(rows, key=lambda found: abs(found["error_pct"]))
    error = abs(worst["error_pct"])
    state = "met" if error <= GOAL_PERCENT else f"**missed by {error - GOAL_PERCENT:.2f} points**"
    return (f"- Estimate within {GOAL_PERCENT:g}% of TFLM's arena for every model: {state} (largest error: "
            f"{worst['model']}, {worst['error_pct']:+.2f}%; {sum(found['error_pct'] == 0 for found in rows)} of "
            f"{len(rows)} exact to the byte)")


def write(rows: list[dict], skipped: list[str], args, seconds: float) -> None:
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    stem = common.RESULTS / "ram_estimate"
    common.write_csv(rows, stem.with_suffix(".csv"), list(rows[0]))
    text = ["# RAM: our estimate of the TFLite Micro arena against TFLM's own", "",
            common.provenance("ram_estimate.py", seconds), "",
            f"The three references and {args.configs} configurations sampled from kws.yaml (seed {args.seed}), "
            f"untrained seeded weights, converted as the search measures a configuration before training (device/"
            f"costs.py untrained_blob: batch norms set to the noise's statistics; calibration: {costs.NOISE_CLIPS} "
            f"noise clips, amplitude {costs.NOISE_LEVEL}). estimate = activations (the planned head) + persistent (the "
            "tail); tflm_arena_bytes: device/micro.py's arena_bytes; estimate_ms: memory_plan.breakdown's time "
            f"on this machine (no interpreter). tflite-micro {metadata.version('tflite-micro')}.", "",
            verdict(rows), "", common.markdown_table(rows), "",
            f"Skipped ({len(skipped)}):" + (" none." if not skipped else ""), *(f"- {why}" for why in skipped)]
    stem.with_suffix(".md").write_text("\n".join(text) + "\n", encoding="utf-8")
    print("\n".join(text), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=20, help="kws.yaml configurations to measure")
    parser.add_argument("--seed", type=int, default=0, help="sampling, weights and calibration seed")
    args = parser.parse_args()
    started, skipped = time.perf_counter(), []
    rows = references(args.seed, skipped) + sampled(args.configs, args.seed, skipped)
    write(rows, skipped, args, time.perf_counter() - started)


if __name__ == "__main__":
    main()
