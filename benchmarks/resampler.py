"""The core-TensorFlow resampler (tuner_app/data/resample.py) against tensorflow-io's, which it replaced.

For each input rate: seconds to bring the clips to 16 kHz (each resampler traced once in a tf.function,
then timed over the same clips), the offset of its output (samples at 16 kHz, the shift that best matches the
ideal 16 kHz signal), and the SNR against that ideal after that shift (a fractional-sample offset
stays in the error). The 8 kHz row is
the real Free Spoken Digit Dataset (its ideal is unknown, so the SNR there is ours against tfio's,
aligned); the other rates are 200 Hz - 4.5 kHz chirps synthesised exactly at each rate.

Usage: python benchmarks/resampler.py [--clips N]
Prints a Markdown table; record it in benchmarks/RESULTS.md with the machine and the date.
"""

from __future__ import annotations

import argparse
import os
import time
import wave
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_io.python.ops import core_ops  # noqa: E402

from tuner_app.data import resample  # noqa: E402

FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "free-spoken-digit-dataset" / "recordings"
RATES = (11025, 22050, 44100, 48000)
MAX_LAG = 200


def ours(mono, rate):
    return resample.to_16k(mono, rate)


def tfio(mono, rate):
    return core_ops.io_audio_resample(mono[:, tf.newaxis], tf.cast(rate, tf.int64), 16000)[:, 0]


RESAMPLERS = {name: tf.function(fn, input_signature=[tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int64)])
              for name, fn in (("core TF (ours)", ours), ("tensorflow-io", tfio))}


def chirp(rate: int, phase: float, seconds: float = 1.0) -> np.ndarray:
    """A 200 Hz -> 4.5 kHz linear chirp: inside every rate's passband (at 11025 Hz flat to 4.8 kHz), and
    never periodic, so the offset that best aligns it is unambiguous."""
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * (200 * t + 2150 * t**2) + phase)).astype(np.float32)


def wav_8k(path: Path) -> np.ndarray:
    """An FSDD file's own 8 kHz 16-bit samples, as float32 (no decoding through either resampler)."""
    with wave.open(str(path), "rb") as handle:
        return np.frombuffer(handle.readframes(handle.getnframes()), "<i2").astype(np.float32) / 32768.0


def timed(fn, clips, rate) -> tuple[list[np.ndarray], float]:
    fn(tf.constant(clips[0]), tf.constant(rate, tf.int64))  # trace outside the timing
    started = time.perf_counter()
    outputs = [fn(tf.constant(clip), tf.constant(rate, tf.int64)).numpy() for clip in clips]
    return outputs, time.perf_counter() - started


def delay_and_snr(got: np.ndarray, ideal: np.ndarray) -> tuple[int, float]:
    """The shift (samples) that best aligns `got` with `ideal`, and the SNR in dB after it."""
    n = min(len(got), len(ideal)) - 2 * MAX_LAG
    errors = {lag: np.mean((got[MAX_LAG + lag:MAX_LAG + lag + n] - ideal[MAX_LAG:MAX_LAG + n]) ** 2)
              for lag in range(-MAX_LAG, MAX_LAG + 1)}
    lag = min(errors, key=errors.get)
    signal = np.mean(ideal[MAX_LAG:MAX_LAG + n] ** 2)
    return lag, float(10 * np.log10(signal / max(errors[lag], 1e-30)))


def rows_for(rate: int, clips: list[np.ndarray], ideals: list[np.ndarray] | None) -> list[str]:
    outputs = {name: timed(fn, clips, rate) for name, fn in RESAMPLERS.items()}
    reference = ideals or outputs["tensorflow-io"][0]
    rows = []
    for name, (resampled, seconds) in outputs.items():
        measured = [delay_and_snr(got, ideal) for got, ideal in zip(resampled, reference)]
        lag = int(np.median([m[0] for m in measured]))
        snr = np.median([m[1] for m in measured])
        against = "ideal" if ideals else "tensorflow-io"
        snr_text = "-" if not ideals and name == "tensorflow-io" else f"{snr:.1f} dB vs {against}"
        rows.append(f"| {rate} | {len(clips)} | {name} | {seconds:.3f} | {len(clips) / seconds:.0f} | {lag} | {snr_text} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=300)
    args = parser.parse_args()
    fsdd_8k = [wav_8k(path) for path in sorted(FSDD.glob("*.wav"))[: args.clips]]
    print(f"cores: {os.cpu_count()}; {len(fsdd_8k)} FSDD clips at 8 kHz, {args.clips} synthetic clips per other rate")
    print("| input rate (Hz) | clips | resampler | seconds | clips/s | offset (16 kHz samples) | SNR, aligned to the nearest sample |")
    print("| ---: | ---: | --- | ---: | ---: | ---: | --- |")
    for row in rows_for(8000, fsdd_8k, None):
        print(row)
    for rate in RATES:
        phases = np.linspace(0, 2 * np.pi, args.clips, endpoint=False)
        clips, ideals = [chirp(rate, phase) for phase in phases], [chirp(16000, phase) for phase in phases]
        for row in rows_for(rate, clips, ideals):
            print(row)


if __name__ == "__main__":
    main()
