"""Augmentations for unheard speakers, one at a time and together: does each help a model generalise to
speakers it never heard in training?

On a corpus whose splits hold different speakers (e.g. FSDD split by speaker:
`tuner-app data import-fsdd ../shared/data/free-spoken-digit-dataset /tmp/fsdd-speakers --split speakers`), one
reference space (default search_spaces/bcresnet1.yaml) trains once per variant, same seed, epochs and patience:

  baseline  the space's own `augment:`
  +speed    speed_min/speed_max 0.9/1.1 (tempo and pitch, through the project's resampler)
  +vtlp     vtlp_alpha 0.1 (the STFT's frequency axis warped per clip, in the model's front-end)
  +mixup    mixup_alpha 0.2
  +cmvn     frontend normalize: coefficient (each frequency row to mean 0, variance 1 over the clip)
  all       every one of them

--throughput instead times each augmentation alone on a batch of 64 of the corpus's training clips (clips/s,
the median of --repeats runs of a traced function; VTLP through the Frontend layer, against it without).

Usage: .venv/bin/python benchmarks/augment_ablation.py CORPUS [--space bcresnet1] [--epochs 30] [--patience 8]
           [--seed 0] [--trials 1] [--subset N] [--variants baseline,+speed,...] [--throughput]
Expected wall time on 2 cores: bcresnet1 on FSDD by speaker (2,000 training clips), at most 30 epochs: about 3
minutes a variant, 20 in all (estimated from BC-ResNet-1's 732 clips/s in benchmarks/RESULTS.md, not yet run);
--subset 64 --epochs 1 --patience 1 checks that it runs (6 minutes, mostly building and tracing; no claim).
--throughput: about 30 s.
Writes benchmarks/results/augment_ablation_<corpus>[_subset].{md,csv} (or augment_throughput_<corpus>.{md,csv})
and prints the table.
"""

from __future__ import annotations

import argparse
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
from tuner_app.constants import CLIP_SAMPLES, SAMPLE_RATE  # noqa: E402
from tuner_app.data import cache, corpus  # noqa: E402
from tuner_app.features.augment_config import AugmentConfig  # noqa: E402
from tuner_app.model.space import search_space  # noqa: E402
from tuner_app.search import run as search_run  # noqa: E402
from tuner_app.search.observers import SearchObserver  # noqa: E402

AUGMENTS = {"+speed": {"speed_min": 0.9, "speed_max": 1.1}, "+vtlp": {"vtlp_alpha": 0.1},
            "+mixup": {"mixup_alpha": 0.2}}
CMVN = "coefficient"
VARIANTS = ("baseline", "+speed", "+vtlp", "+mixup", "+cmvn", "all")
BATCH = 64


class EpochCounter(SearchObserver):
    """How many epochs the search's trials trained (early stopping ends them before --epochs)."""

    def __init__(self):
        self.epochs = 0

    def epoch_end(self, tuner, trial, epoch, logs) -> None:
        self.epochs += 1


def variant_space(space: search_space.SearchSpace, variant: str) -> search_space.SearchSpace:
    """The space with the variant's augment keys over its own, and `normalize: coefficient` for +cmvn."""
    overrides = {key: value for name, keys in AUGMENTS.items() if variant in (name, "all")
                 for key, value in keys.items()}
    space = dataclasses.replace(space, augment=space.augment.overridden(overrides))
    return with_cmvn(space) if variant in ("+cmvn", "all") else space


def with_cmvn(space: search_space.SearchSpace) -> search_space.SearchSpace:
    presets = {name: dataclasses.replace(preset, normalize=CMVN) for name, preset in space.frontends.items()}
    return dataclasses.replace(space, frontend=dataclasses.replace(space.frontend, normalize=CMVN), frontends=presets)


def training_space(space: search_space.SearchSpace, args) -> search_space.SearchSpace:
    """The space with the run's epochs, patience and seed, and at most --trials trials where its tuner counts them."""
    training = {**space.training, "epochs": args.epochs, "patience": args.patience, "seed": args.seed}
    tuner = dict(space.tuner)
    if "max_trials" in search_space.TUNER_OPTIONS[tuner["name"]]:
        tuner["max_trials"] = args.trials
    return dataclasses.replace(space, training=training, tuner=tuner)


def load_corpus(path: Path, workdir: Path, subset: int | None) -> tuple[dict, list[str], object]:
    """(splits decoded to 16 kHz, class names, noise bank); --subset N keeps N clips of each split."""
    found = corpus.scan(path)
    splits = cache.decode_corpus(found, workdir / "cache")
    if subset:
        splits = common.subsample(splits, {name: subset for name in splits})
    return splits, list(found.classes), cache.noise_bank(found.background_noise)


def train_variant(variant: str, space, data: tuple, workdir: Path, seed: int) -> dict[str, object]:
    """One row: the variant's best validation accuracy, its test accuracy, epochs trained and seconds."""
    splits, class_names, noise = data
    counter = EpochCounter()
    started = time.perf_counter()
    tuner = search_run.run_search(variant_space(space, variant), splits, workdir / variant.strip("+"), seed=seed,
                                  noise=noise, class_names=class_names, observers=[counter], fresh=True)
    seconds = time.perf_counter() - started
    best = max(common.completed_trials(tuner), key=lambda trial: trial["val_accuracy"])
    return {"variant": variant, "val_accuracy": round(best["val_accuracy"], 4),
            "test_accuracy": round(best.get("test_accuracy", float("nan")), 4), "epochs": counter.epochs,
            "seconds": round(seconds)}


def run_ablation(args, workdir: Path) -> tuple[list[dict], str]:
    space = training_space(search_space.load(search_space.locate(args.space)), args)
    if "normalize" in space.hyperparameters and set(args.variants) & {"+cmvn", "all"}:
        raise SystemExit(f"{args.space}: normalize is a hyperparameter there; leave +cmvn and all out")
    data = load_corpus(Path(args.corpus), workdir, args.subset)
    rows = [train_variant(variant, space, data, workdir, args.seed) for variant in args.variants]
    return rows, what_trained(args, data[0])


def what_trained(args, splits: dict) -> str:
    counts = ", ".join(f"{name} {len(clips)}" for name, clips in splits.items())
    return (f"{args.space}, at most {args.epochs} epochs, patience {args.patience}, seed {args.seed}, up to "
            f"{args.trials} trial(s) a variant (accuracy at the kept weights: early stopping on val_loss); clips: "
            f"{counts}; the variants' keys: {AUGMENTS}, +cmvn: frontend normalize {CMVN}")


def throughput_cases(space: search_space.SearchSpace) -> dict[str, dict]:
    """Each augmentation alone, as augment keys (VTLP runs in the model, the others in the batch map)."""
    return {"time shift 100 ms": {"time_shift_ms": 100.0}, "noise p=1": {"noise_probability": 1.0},
            "lowpass p=1": {"lowpass_probability": 1.0}, "speed 0.85-1.15": {"speed_min": 0.85, "speed_max": 1.15},
            "speed 0.9-1.1": {"speed_min": 0.9, "speed_max": 1.1}, "mixup 0.2": {"mixup_alpha": 0.2},
            f"vtlp 0.1 ({space.frontend.kind} front-end)": {"vtlp_alpha": 0.1}}


def throughput(name: str, function, batch, repeats: int) -> dict[str, object]:
    """Clips/s (wall clock) and CPU ms per clip (all threads: what it takes from training), medians of `repeats`."""
    function(*batch)  # traced once, not timed
    walls, cpus = [], []
    for _ in range(repeats):
        cpu_started = time.process_time()
        walls.append(common.timed(lambda: function(*batch))[1])
        cpus.append(time.process_time() - cpu_started)
    clips = len(batch[0])
    return {"augmentation": name, "clips_per_s": round(clips / statistics.median(walls)),
            "cpu_ms_per_clip": round(1000 * statistics.median(cpus) / clips, 3)}


def timed_function(space, keys: dict, noise, n_classes: int):
    """A traced function of (waveforms, labels) applying the augmentation `keys` select, alone."""
    import tensorflow as tf

    from tuner_app.features.augment import _augment_batch
    from tuner_app.features.layers import Frontend

    cfg = AugmentConfig(**keys)
    if cfg.vtlp_alpha > 0:
        frontend = Frontend(space.frontend, cfg.vtlp_alpha)
        return tf.function(lambda waveforms, labels: frontend(waveforms, training=True))
    return tf.function(_augment_batch(cfg, noise, n_classes))


def run_throughput(args, workdir: Path) -> tuple[list[dict], str]:
    import tensorflow as tf

    from tuner_app.features.layers import Frontend

    space = search_space.load(search_space.locate(args.space))
    splits, class_names, noise = load_corpus(Path(args.corpus), workdir, None)
    noise_source = "the corpus's background noise"
    if len(noise) < CLIP_SAMPLES:  # a corpus without background noise (FSDD): a minute of white noise instead
        noise, noise_source = _white_noise(60 * SAMPLE_RATE), "a minute of white noise (the corpus has none)"
    train = splits["train"]
    first = list(range(BATCH))
    batch = (tf.constant(train.batch(first)), tf.constant(train.labels[first]))  # float32, as training reads it
    plain = Frontend(space.frontend)
    rows = [throughput(f"none: the {space.frontend.kind} front-end alone",
                       tf.function(lambda waveforms, labels: plain(waveforms)), batch, args.repeats)]
    for name, keys in throughput_cases(space).items():
        rows.append(throughput(name, timed_function(space, keys, noise, len(class_names)), batch, args.repeats))
    return rows, (f"each augmentation alone on a batch of {len(batch[0])} training clips of {args.corpus}, medians "
                  f"of {args.repeats} runs; VTLP's row is the {args.space} front-end with its warp, in training; "
                  f"noise from {noise_source}")


def _white_noise(samples: int):
    import numpy as np

    return np.random.default_rng(0).normal(0, 0.1, samples).astype(np.float32)


def write(stem: Path, rows: list[dict], what: str, seconds: float) -> None:
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    common.write_csv(rows, stem.with_suffix(".csv"), list(rows[0]))
    command = " ".join([".venv/bin/python", "benchmarks/augment_ablation.py", *sys.argv[1:]])
    title = "Augmentation throughput" if stem.name.startswith("augment_throughput") else "Augmentation ablation"
    text = [f"# {title}: {stem.name}", "", f"Machine: {common.machine()}. Date: {datetime.date.today()}. "
            f"Command: `{command}` ({seconds / 60:.1f} min in all). Versions: {common.versions()}.", "",
            f"What ran: {what}. Every row: {stem.with_suffix('.csv').name}.", "", common.markdown_table(rows)]
    stem.with_suffix(".md").write_text("\n".join(text) + "\n", encoding="utf-8")
    print(common.markdown_table(rows))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", help="a corpus folder in the Speech Commands layout, speaker-disjoint splits")
    parser.add_argument("--space", default="bcresnet1", help="a space name or YAML path (default bcresnet1)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=1, help="trials a variant, where the space's tuner counts them")
    parser.add_argument("--subset", type=int, help="N clips of each split: checks that it runs")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of " + ", ".join(VARIANTS))
    parser.add_argument("--throughput", action="store_true", help="time each augmentation instead of training")
    parser.add_argument("--repeats", type=int, default=20, help="--throughput: timed runs of each")
    args = parser.parse_args()
    args.variants = args.variants.split(",")
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {unknown}; expected some of {list(VARIANTS)}")
    return args


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="augment-ablation-") as workdir:
        rows, what = (run_throughput if args.throughput else run_ablation)(args, Path(workdir))
    name = Path(args.corpus).resolve().name
    kind = "augment_throughput" if args.throughput else "augment_ablation"
    stem = common.RESULTS / f"{kind}_{name}{'_subset' if args.subset and not args.throughput else ''}"
    write(stem, rows, what, time.perf_counter() - started)


if __name__ == "__main__":
    main()
