"""Latency of an exported model per clip: SavedModel signatures and the .tflite copies, batch 1 and 32.

Usage: python benchmarks/inference_latency.py MODEL_DIR [--repeats 30]
MODEL_DIR is a `tuner-app export` directory (with --tflite / --quantize int8 for the TFLite rows).
Prints a Markdown table; paste it into benchmarks/RESULTS.md with the machine and the date.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
import wave
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tuner_app.serving import inference  # noqa: E402


def median_ms(call, repeats: int) -> float:
    call()  # the first call traces or allocates
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def wav_bytes(clip: np.ndarray, rate: int = 8000) -> bytes:
    """A 16-bit WAV at 8 kHz, so serve_bytes also resamples."""
    samples = np.round(clip[:: 16000 // rate] * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as stream:
        stream.setnchannels(1), stream.setsampwidth(2), stream.setframerate(rate)
        stream.writeframes(samples.tobytes())
    return buffer.getvalue()


def tflite_runner(path: Path, batch: np.ndarray):
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], batch.shape)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]

    def run():
        interpreter.set_tensor(index, batch)
        interpreter.invoke()
    return run


def rows(model_dir: Path, repeats: int):
    loaded = inference.load(model_dir)
    signatures = loaded.saved_model.signatures
    clips = np.random.default_rng(0).uniform(-0.3, 0.3, (32, 16000)).astype(np.float32)
    for batch in (1, 32):
        waveforms = tf.constant(clips[:batch])
        encoded = tf.constant([wav_bytes(clip) for clip in clips[:batch]])
        yield "SavedModel serving_default (waveform)", batch, median_ms(
            lambda: signatures["serving_default"](waveform=waveforms), repeats)
        yield "SavedModel serve_bytes (8 kHz WAV, resampled)", batch, median_ms(
            lambda: signatures["serve_bytes"](audio=encoded), repeats)
        for name in ("model.tflite", "model_int8.tflite"):
            if (model_dir / name).exists():
                yield f"TFLite {name}", batch, median_ms(tflite_runner(model_dir / name, clips[:batch]), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    print("| runtime | batch | ms per batch | ms per clip |")
    print("| --- | ---: | ---: | ---: |")
    for name, batch, ms in rows(args.model_dir, args.repeats):
        print(f"| {name} | {batch} | {ms:.2f} | {ms / batch:.2f} |")


if __name__ == "__main__":
    main()
