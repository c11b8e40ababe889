"""Pipeline throughput on real recordings: clips per second for decode (+resample) and features.

Usage: python benchmarks/pipeline_throughput.py [--data DIR ...] [--eager-sample N]
Prints a Markdown table; paste it into benchmarks/RESULTS.md with the machine and the date.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tuner_app.data import audio, cache  # noqa: E402
from tuner_app.features.dataset import make_dataset  # noqa: E402
from tuner_app.features.frontend import FrontendConfig, features  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_DIRS = [
    SHARED / "free-spoken-digit-dataset" / "recordings",
    SHARED / "speech-commands-v0.01-vinsis-sample" / "speech_commands_v0.01",
]


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def measure(directory: Path, eager_sample: int) -> list[tuple[str, int, float]]:
    paths = sorted(str(p) for p in directory.rglob("*.wav") if "_background_noise_" not in p.parts)
    decoded, seconds = timed(lambda: cache.decode_clips(paths, [0] * len(paths)))
    rows = [("decode+resample, tf.data parallel", len(decoded), seconds)]
    for kind in ("stft", "mel", "mfcc", "waveform"):
        config = FrontendConfig(kind=kind)
        # The models compute their features in their first layer (features.layers.Frontend): the same call.
        dataset = make_dataset(decoded, batch_size=64).map(lambda waveforms, labels: (features(waveforms, config), labels))
        _, seconds = timed(lambda: sum(1 for _ in dataset))
        rows.append((f"features ({kind}) from the decoded cache", len(decoded), seconds))
    sample = paths[:eager_sample]
    _, seconds = timed(lambda: [audio.read(p) for p in sample])
    rows.append(("decode+resample, eager clip by clip", len(sample), seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, nargs="*", default=DEFAULT_DIRS)
    parser.add_argument("--eager-sample", type=int, default=200)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}")
    print("| data | stage | clips | seconds | clips/s |")
    print("| --- | --- | ---: | ---: | ---: |")
    for directory in args.data:
        for stage, clips, seconds in measure(directory, args.eager_sample):
            print(f"| {directory.name} | {stage} | {clips} | {seconds:.2f} | {clips / seconds:.0f} |")


if __name__ == "__main__":
    main()
