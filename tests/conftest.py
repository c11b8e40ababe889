import os
import random
import struct
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
SPEECH_COMMANDS = os.path.join(SHARED_DATA, "speech-commands-v0.01-vinsis-sample", "speech_commands_v0.01")
FSDD = os.path.join(SHARED_DATA, "free-spoken-digit-dataset")


@pytest.fixture(autouse=True)
def _tracking_store(tmp_path, monkeypatch):
    """Searches in tests log to a store of their own, never to the project's ./mlruns."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlruns/mlflow.db")


@pytest.fixture(autouse=True)
def _seeded():
    random.seed(0)
    np.random.seed(0)
    if "tensorflow" in sys.modules:
        sys.modules["tensorflow"].random.set_seed(0)


def write_wav(path, samples, rate=16000, bits=16, float_format=False):
    """Write [frames] or [frames, channels] samples in [-1, 1] as WAV with any sample format."""
    samples = np.asarray(samples, np.float64)
    samples = samples[:, None] if samples.ndim == 1 else samples
    channels = samples.shape[1]
    if float_format:
        raw, code = samples.astype("<f4" if bits == 32 else "<f8").tobytes(), 3
    elif bits == 8:
        raw, code = np.round(samples * 127 + 128).astype("u1").tobytes(), 1
    elif bits == 24:
        ints = np.round(samples * (2**23 - 1)).astype("<i4").reshape(-1)
        raw, code = ints.view("u1").reshape(-1, 4)[:, :3].tobytes(), 1
    else:
        dtype = {16: "<i2", 32: "<i4"}[bits]
        raw, code = np.round(samples * (2 ** (bits - 1) - 1)).astype(dtype).tobytes(), 1
    width = bits // 8
    fmt = struct.pack("<HHIIHH", code, channels, rate, rate * channels * width, channels * width, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(raw)) + raw
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def tone(seconds=0.5, rate=16000, freq=440.0, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)
