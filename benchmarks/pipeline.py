"""Pipeline benchmark (issue 15, part 2): does the input pipeline ever make training wait? Per corpus (FSDD
imported in place, and the default synthetic corpus):
1. clips/s through decode, cache and features, cold (a fresh cache folder) and warm, per front-end kind
   (`frontend.features`, the function training uses); 2. the same through a plain numpy STFT;
3. the training consumption rate (clips/s through model.fit from memory, after a warm-up epoch) of the seed's
   2D 3-conv model and of BC-ResNet-1; 4. the pipeline ratio per model: epoch time through `make_dataset`
   (training, cnn2d.yaml's augment block) over epoch time on the same batches in memory (target <= 1.05);
5. pipeline clips/s (no model) per augmentation; `--compare` adds the per-clip map and the tf.where gating
   it replaced.

Usage: python benchmarks/pipeline.py [--quick] [--compare]
Writes benchmarks/results/pipeline.{csv,png,md} (pipeline_quick.* with --quick). --quick: 320 training clips per
corpus (70 s on 2 cores, 2026-11-26; no claim). The full mode (whole corpora, 5 timed epochs per model and dataset) is expected to take
5 min on 2 cores with AVX-512 (measured 2026-11-26; expect up to 4x on AVX2-only CPUs). Run it alone: other processes make timings wrong.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import shlex
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Keras warns at each epoch of a dataset of unknown length (the augmented pipeline's): expected here.
warnings.filterwarnings("ignore", message=".*(ran out of data|shuffle=True).*")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import augment_paths  # noqa: E402
import common  # noqa: E402
from tuner_app.data import cache  # noqa: E402
from tuner_app.features import dataset as dataset_module  # noqa: E402
from tuner_app.features.frontend import KINDS, FrontendConfig, features  # noqa: E402
from tuner_app.model.architecture import build  # noqa: E402
from tuner_app.model.space import configurations, search_space  # noqa: E402

BATCH = 64
QUICK = {"train": 320, "validation": 48, "test": 48}  # clips per split in --quick
FIELDS = ["corpus", "measure", "variant", "clips", "seconds", "clips_per_s", "ratio"]


def row(corpus: str, measure: str, variant: str, clips: int, seconds: float, ratio: float | str = "") -> dict:
    return {"corpus": corpus, "measure": measure, "variant": variant, "clips": clips,
            "seconds": round(seconds, 3), "clips_per_s": round(clips / seconds, 1), "ratio": ratio}


def quick_subset(found, counts: dict[str, int]):
    """The corpus with every k-th clip of each split (so each class keeps its share), `counts` at most."""
    kept = []
    for split, count in counts.items():
        clips = found.split(split)
        kept += clips[:: max(1, len(clips) // count)][:count]
    return dataclasses.replace(found, clips=tuple(kept))


def decode_rows(name: str, found, workdir: Path) -> tuple[list[dict], dict]:
    """Cold: decode every split into a fresh cache folder; warm: the same call once the cache exists."""
    splits, cold = common.timed(lambda: cache.decode_corpus(found, workdir / f"cache-{name}"))
    splits, warm = common.timed(lambda: cache.decode_corpus(found, workdir / f"cache-{name}"))
    return [row(name, "decode+cache", stage, len(found.clips), seconds)
            for stage, seconds in (("cold", cold), ("warm", warm))], splits


def feature_rows(name: str, train, decoded: list[dict]) -> list[dict]:
    """Features of the train split read from the cache in batches of 64, per front-end kind; each kind's
    cold and warm rate through decode, cache and features (seconds per clip of each stage added up)."""
    rows = []
    for kind in KINDS:
        config = FrontendConfig(kind=kind)
        pipeline = dataset_module.make_dataset(train, BATCH).map(
            lambda waves, labels, config=config: (features(waves, config), labels))
        _, seconds = common.timed(lambda pipeline=pipeline: sum(1 for _ in pipeline))  # traced at .map(), untimed
        rows.append(row(name, "features", kind, len(train), seconds))
        rows += [row(name, f"decode+cache+features {stage['variant']}", kind, len(train),
                     stage["seconds"] * len(train) / stage["clips"] + seconds) for stage in decoded]
    return rows


def numpy_stft(waveforms: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """log |rfft| of periodic-Hann-windowed frames, as tf.signal.stft frames them: [clips, frames, bins]."""
    frames = np.lib.stride_tricks.sliding_window_view(waveforms, cfg.frame_length, axis=1)[:, :: cfg.frame_step]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(cfg.frame_length) / cfg.frame_length)).astype(np.float32)
    return np.log(np.abs(np.fft.rfft(frames * window, cfg.fft_length)) + cfg.log_offset)


def numpy_row(name: str, train) -> dict:
    cfg = FrontendConfig(kind="stft")
    first = numpy_stft(train.batch(np.arange(min(BATCH, len(train)))), cfg)
    reference = features(train.batch(np.arange(len(first))), cfg).numpy()[..., 0].transpose(0, 2, 1)
    if np.median(np.abs(first - reference)) > 1e-3:
        raise SystemExit("the numpy STFT does not match the stft front-end: fix numpy_stft first")
    _, seconds = common.timed(lambda: [numpy_stft(train.batch(np.arange(s, min(s + BATCH, len(train)))), cfg)
                                       for s in range(0, len(train), BATCH)])
    return row(name, "features", "numpy stft", len(train), seconds)


def seed_model(n_classes: int):
    """seed_2d.yaml's conv 3 x FC 1 row, batch norm off: the seed's 2D 3-conv model."""
    space = search_space.load(search_space.locate("seed_2d"))
    values = next(values for values in configurations.configurations(space)
                  if values["conv_layers"] == 3 and values["fc_layers"] == 1 and not values["batch_norm"])
    return build.build_model(space, values, n_classes)


def bcresnet_model(n_classes: int):
    space = search_space.load(search_space.locate("bcresnet1"))
    return build.build_model(space, configurations.configurations(space)[0], n_classes)


class EpochSeconds(keras.callbacks.Callback):
    """Each epoch's wall time, from its first batch requested to its last trained (fit's set-up left out)."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)


def in_memory(pipeline: tf.data.Dataset) -> tf.data.Dataset:
    """The pipeline's batches of one epoch, materialised once, served from memory in the same order."""
    batches = list(pipeline.as_numpy_iterator())
    waves, labels = (np.concatenate([batch[part] for batch in batches]) for part in (0, 1))
    return tf.data.Dataset.from_tensor_slices((waves, labels)).batch(BATCH).cache().prefetch(tf.data.AUTOTUNE)


def training_rows(name: str, train, noise: np.ndarray, n_classes: int, epochs: int) -> list[dict]:
    """Per model: clips/s through fit from memory, through the real pipeline, and their epoch-time ratio.
    One warm-up epoch each, then the two alternate, so a load change on the cores hits both alike."""
    rows, augment_config = [], augment_paths.cnn2d_augment()
    for label, make in (("seed 2D 3-conv", seed_model), ("BC-ResNet-1", bcresnet_model)):
        keras.utils.set_random_seed(0)
        model = make(n_classes)
        real = dataset_module.make_dataset(train, BATCH, training=True, augment=augment_config, noise=noise, seed=0)
        timings = {"pipeline": EpochSeconds(), "memory": EpochSeconds()}
        datasets = {"pipeline": real, "memory": in_memory(real)}
        for _ in range(epochs + 1):
            for kind, data in datasets.items():
                model.fit(data, epochs=1, verbose=0, callbacks=[timings[kind]])
        # The fastest epoch is the least disturbed: medians of 3 moved the ratio by 0.15 between quiet runs.
        fastest = {kind: min(timing.seconds[1:]) for kind, timing in timings.items()}
        rows.append(row(name, "fit from memory", label, len(train), fastest["memory"]))
        rows.append(row(name, "fit through the pipeline", label, len(train), fastest["pipeline"],
                        round(fastest["pipeline"] / fastest["memory"], 3)))
    return rows


def measure(name: str, found, noise: np.ndarray, args, workdir: Path) -> list[dict]:
    if args.quick:
        found = quick_subset(found, QUICK)
    decoded, splits = decode_rows(name, found, workdir)
    train = splits["train"]
    rows = decoded + feature_rows(name, train, decoded) + [numpy_row(name, train)]
    rows += [row(name, measure_name, variant, len(train), seconds) for measure_name, variant, seconds
             in augment_paths.timings(train, noise, args.compare, BATCH)]
    return rows + training_rows(name, train, noise, len(found.classes), epochs=5)


def plot(rows: list[dict], path: Path) -> None:
    """Horizontal bars of clips/s (log scale) per measure and variant, one panel per corpus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpora = list(dict.fromkeys(r["corpus"] for r in rows))
    figure, panels = plt.subplots(1, len(corpora), figsize=(8 * len(corpora), 10), squeeze=False)
    for panel, corpus_name in zip(panels[0], corpora):
        mine = [r for r in rows if r["corpus"] == corpus_name]
        panel.barh([f"{r['measure']}: {r['variant']}" for r in mine], [r["clips_per_s"] for r in mine])
        panel.set(xscale="log", xlabel="clips per second (log)", title=corpus_name)
        panel.invert_yaxis()
        panel.tick_params(axis="y", labelsize=7)
        panel.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def summary(rows: list[dict], args, seconds: float) -> str:
    mode = ("QUICK RUN (--quick: 320 training clips of each corpus; shared cores): no claim; the full mode is"
            " expected to take about 5 min" if args.quick else "full run (expected about 5 min on 2 cores with AVX-512)")
    ratios = "; ".join(f"{r['corpus']}, {r['variant']}: {r['ratio']}" for r in rows if r["ratio"] != "")
    return "\n".join([
        "# Pipeline throughput, training consumption and the pipeline ratio", "",
        f"Mode: {mode}. Wall time: {seconds / 60:.1f} min.", f"Machine: {common.machine()}",
        f"Date: {datetime.date.today()}", f"Command: `{shlex.join(['python', *sys.argv])}`",
        f"Versions: {common.versions()}", "",
        common.markdown_table([{key: r[key] for key in FIELDS} for r in rows]), "",
        (f"Pipeline ratio (epoch through make_dataset with cnn2d.yaml's augmentation / epoch from memory; "
         f"target <= 1.05): {ratios}."), "",
        ("Augmentation, pipeline alone, clips/s per batch (the package's) / per clip (before) / tf.where "
         f"(before): {augment_paths.before_after(rows)}."), "",
        NOTES])


NOTES = """`decode+cache`: every split decoded into a fresh cache folder (cold), or the cache found (warm: mapped,
read by the next stage). `features`: `frontend.features` (each kind's default FrontendConfig) on the train split
read from the cache in batches of 64 through `make_dataset`; `decode+cache+features` adds the two stages'
seconds per clip. `numpy stft`: np.fft.rfft of periodic-Hann frames (256/160/512; equal to the stft front-end on
the first batch). `fit from memory`: the model's consumption rate (fastest of 5 epochs after a warm-up epoch, batches
of 64 in memory); `fit through the pipeline`: the same on `make_dataset(training=True)` with cnn2d.yaml's augment
block and the default corpus's background noise (FSDD has none); SpecAugment is the model's own space's in both.
`augmentation`: the pipeline alone on the train split, fastest of 7 epochs; `probabilities p`: noise and lowpass
both at p (0 skips both in Python). `per batch`: the package's, each batch augmented at once, only the chosen
clips through each augmentation; `per clip (before)`: the package's map over single clips until 2026-11-26
(tf.cond gating); `tf.where (before)`: per batch, but every clip through the FFT pair and the noise mix."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="A subset of each corpus (no claim).")
    parser.add_argument("--compare", action="store_true", help="Also time the per-clip and tf.where augmentation it replaced.")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as folder:
        default = common.scan_default_corpus()
        noise = cache.noise_bank(default.background_noise)
        rows = measure("FSDD", common.scan_fsdd(Path(folder)), noise, args, Path(folder))
        rows += measure("default corpus", default, noise, args, Path(folder))
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    stem = common.RESULTS / ("pipeline_quick" if args.quick else "pipeline")  # a quick run never replaces the full one
    common.write_csv(rows, stem.with_suffix(".csv"), FIELDS)
    plot(rows, stem.with_suffix(".png"))
    text = summary(rows, args, time.perf_counter() - started)
    stem.with_suffix(".md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
