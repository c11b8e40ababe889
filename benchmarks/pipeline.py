"""Pipeline benchmark (issue 15, part 2): does the input pipeline ever make training wait? Per corpus (FSDD
imported in place, and the default synthetic corpus):
1. clips/s through decode, cache and features, cold (a fresh cache folder) and warm, per front-end kind
   (`frontend.features`, the function training uses); 2. the same through a plain numpy STFT;
3. the training consumption rate (clips/s through model.fit from memory, after a warm-up epoch) of the seed's
   2D 3-conv model and of BC-ResNet-1; 4. the pipeline ratio per model: epoch time through `make_dataset`
   (training, cnn2d.yaml's augment block) over epoch time on the same batches in memory (target <= 1.05);
5. pipeline clips/s (no model) per augmentation; `--compare` adds the tf.where gating from before the fix.

Usage: python benchmarks/pipeline.py [--quick] [--compare]
Writes benchmarks/results/pipeline.{csv,png,md}. --quick: 320 training clips per corpus (about 3 min on 2
cores; no claim). The full mode (whole corpora, 3 timed epochs per model and dataset) is expected to take
4 min on 2 cores with AVX-512 (measured 2026-11-26; expect up to 4x on AVX2-only CPUs). Run it alone: other processes make timings wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import shlex
import sys
import tempfile
import time
import warnings
from pathlib import Path
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Keras warns at each epoch of a dataset of unknown length (the augmented pipeline's): expected here.
warnings.filterwarnings("ignore", message=".*(ran out of data|shuffle=True).*")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import common  # noqa: E402
from tuner_app.constants import CLIP_SAMPLES, SAMPLE_RATE  # noqa: E402
from tuner_app.data import cache  # noqa: E402
from tuner_app.features import augment, dataset as dataset_module  # noqa: E402
from tuner_app.features.augment_config import AugmentConfig  # noqa: E402
from tuner_app.features.frontend import KINDS, FrontendConfig, features  # noqa: E402
from tuner_app.model import build, configurations, spaces  # noqa: E402

BATCH = 64
QUICK = {"train": 320, "validation": 48, "test": 48}  # clips per split in --quick
FIELDS = ["corpus", "measure", "variant", "clips", "seconds", "clips_per_s", "ratio"]


def cnn2d_augment() -> AugmentConfig:
    return spaces.load(spaces.locate("cnn2d")).augment


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
    space = spaces.load(spaces.locate("seed_2d"))
    values = next(values for values in configurations.configurations(space)
                  if values["conv_layers"] == 3 and values["fc_layers"] == 1 and not values["batch_norm"])
    return build.build_model(space, values, n_classes)


def bcresnet_model(n_classes: int):
    space = spaces.load(spaces.locate("bcresnet1"))
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
    rows, augment_config = [], cnn2d_augment()
    for label, make in (("seed 2D 3-conv", seed_model), ("BC-ResNet-1", bcresnet_model)):
        keras.utils.set_random_seed(0)
        model = make(n_classes)
        real = dataset_module.make_dataset(train, BATCH, training=True, augment=augment_config, noise=noise, seed=0)
        timings = {"pipeline": EpochSeconds(), "memory": EpochSeconds()}
        datasets = {"pipeline": real, "memory": in_memory(real)}
        for _ in range(epochs + 1):
            for kind, data in datasets.items():
                model.fit(data, epochs=1, verbose=0, callbacks=[timings[kind]])
        median = {kind: float(np.median(timing.seconds[1:])) for kind, timing in timings.items()}
        rows.append(row(name, "fit from memory", label, len(train), median["memory"]))
        rows.append(row(name, "fit through the pipeline", label, len(train), median["pipeline"],
                        round(median["pipeline"] / median["memory"], 3)))
    return rows


def _where_augment(cfg: AugmentConfig, noise: np.ndarray):
    """The augmentation before the fix, kept for --compare: each gated augmentation computed for every clip,
    tf.where then picks it or the clip (the package's own ops, so only the gating differs)."""
    max_shift = int(cfg.time_shift_ms * SAMPLE_RATE / 1000)
    noise_tensor = tf.constant(noise, tf.float32) if len(noise) >= CLIP_SAMPLES else None

    def gated(probability, augmented, waveform):
        return tf.where(tf.random.uniform([]) < probability, augmented, waveform)

    def augment_clip(waveform, label):
        if max_shift > 0:
            waveform = augment._time_shift(waveform, max_shift)
        if cfg.lowpass_probability > 0:
            waveform = gated(cfg.lowpass_probability, augment._lowpassed(waveform, cfg), waveform)
        if noise_tensor is not None and cfg.noise_probability > 0:
            waveform = gated(cfg.noise_probability, augment._noisy(waveform, noise_tensor, cfg), waveform)
        return waveform, label

    return augment_clip


def augment_variants() -> dict[str, AugmentConfig | None]:
    """No augmentation; cnn2d's with its noise and lowpass probabilities both set to p; cnn2d's own."""
    own = cnn2d_augment()
    variants = {f"probabilities {p}": dataclasses.replace(own, noise_probability=p, lowpass_probability=p)
                for p in (0, 0.001, 1)}
    return {"none": None, **variants,
            f"cnn2d's (noise {own.noise_probability}, lowpass {own.lowpass_probability})": own}


def augment_rows(name: str, train, noise: np.ndarray, compare: bool) -> list[dict]:
    """Pipeline clips/s alone (no model), the fastest of 7 epochs (the least disturbed by other processes), per
    augmentation; with `compare`, the gated ones also through tf.where."""
    rows = []
    for variant, config in augment_variants().items():
        paths = {"tf.cond": contextlib.nullcontext()}
        if compare and config is not None and config.noise_probability > 0:
            # make_dataset looks `_augment_waveform` up in its module at each call: patched, the old gating.
            paths["tf.where (before)"] = mock.patch.object(dataset_module, "_augment_waveform", _where_augment)
        for path, context in paths.items():
            with context:
                pipeline = dataset_module.make_dataset(train, BATCH, training=True, augment=config, noise=noise, seed=0)
            sum(1 for _ in pipeline.take(1))  # start-up (threads, the noise constant) left out
            seconds = min(common.timed(lambda pipeline=pipeline: sum(1 for _ in pipeline))[1] for _ in range(7))
            rows.append(row(name, f"augmentation, {path}", variant, len(train), seconds))
    return rows


def measure(name: str, found, noise: np.ndarray, args, workdir: Path) -> list[dict]:
    if args.quick:
        found = quick_subset(found, QUICK)
    decoded, splits = decode_rows(name, found, workdir)
    train = splits["train"]
    rows = decoded + feature_rows(name, train, decoded) + [numpy_row(name, train)]
    rows += augment_rows(name, train, noise, args.compare)
    return rows + training_rows(name, train, noise, len(found.classes), epochs=3)


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
            " expected to take about 4 min" if args.quick else "full run (expected about 4 min on 2 cores with AVX-512)")
    ratios = "; ".join(f"{r['corpus']}, {r['variant']}: {r['ratio']}" for r in rows if r["ratio"] != "")
    return "\n".join([
        "# Pipeline throughput, training consumption and the pipeline ratio", "",
        f"Mode: {mode}. Wall time: {seconds / 60:.1f} min.", f"Machine: {common.machine()}",
        f"Date: {datetime.date.today()}", f"Command: `{shlex.join(['python', *sys.argv])}`",
        f"Versions: {common.versions()}", "",
        common.markdown_table([{key: r[key] for key in FIELDS} for r in rows]), "",
        (f"Pipeline ratio (epoch through make_dataset with cnn2d.yaml's augmentation / epoch from memory; "
         f"target <= 1.05): {ratios}."), "",
        f"Augmentation gating, tf.where (before) -> tf.cond (after), pipeline alone: {before_after(rows)}.", "",
        NOTES])


def before_after(rows: list[dict]) -> str:
    old = {(r["corpus"], r["variant"]): r["clips_per_s"] for r in rows if r["measure"].endswith("(before)")}
    new = {(r["corpus"], r["variant"]): r["clips_per_s"] for r in rows if r["measure"] == "augmentation, tf.cond"}
    return "; ".join(f"{c}, {v}: {old[c, v]:.0f} -> {new[c, v]:.0f} clips/s" for c, v in old) or "not run (--compare)"


NOTES = """`decode+cache`: every split decoded into a fresh cache folder (cold), or the cache found (warm: mapped,
read by the next stage). `features`: `frontend.features` (each kind's default FrontendConfig) on the train split
read from the cache in batches of 64 through `make_dataset`; `decode+cache+features` adds the two stages'
seconds per clip. `numpy stft`: np.fft.rfft of periodic-Hann frames (256/160/512; equal to the stft front-end on
the first batch). `fit from memory`: the model's consumption rate (median epoch after a warm-up epoch, batches
of 64 in memory); `fit through the pipeline`: the same on `make_dataset(training=True)` with cnn2d.yaml's augment
block and the default corpus's background noise (FSDD has none); SpecAugment is the model's own space's in both.
`augmentation`: the pipeline alone on the train split, fastest of 7 epochs; `probabilities p`: noise and lowpass
both at p (0 skips both in Python); `tf.where (before)`: the pre-fix gating (FFT pair, noise mix every clip)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="A subset of each corpus (no claim).")
    parser.add_argument("--compare", action="store_true", help="Also time the tf.where augmentation path.")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pipeline-bench-") as folder:
        default = common.scan_default_corpus()
        noise = cache.noise_bank(default.background_noise)
        rows = measure("FSDD", common.scan_fsdd(Path(folder)), noise, args, Path(folder))
        rows += measure("default corpus", default, noise, args, Path(folder))
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    common.write_csv(rows, common.RESULTS / "pipeline.csv", FIELDS)
    plot(rows, common.RESULTS / "pipeline.png")
    text = summary(rows, args, time.perf_counter() - started)
    (common.RESULTS / "pipeline.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
