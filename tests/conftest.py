import dataclasses
import os
import random
import shutil
import struct
import sys
from pathlib import Path

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


N_CLASSES = 16
SMOKE_SPACE = os.path.join(os.path.dirname(__file__), "..", "search_spaces", "smoke.yaml")


def tone_clips(seed: int, per_class: int = 1):
    """One quiet tone per class (frequency = class) plus noise: learnable, and no audio files needed."""
    from tuner_app.data.cache import DecodedClips

    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(N_CLASSES), per_class).astype(np.int64)
    t = np.arange(16000) / 16000
    tones = 0.3 * np.sin(2 * np.pi * (200 + 150 * labels[:, None]) * t)
    waveforms = (tones + 0.05 * rng.standard_normal(tones.shape)).astype(np.float32)
    return DecodedClips(waveforms, labels, tuple(f"clip{i}.wav" for i in range(len(labels))))


def tone_splits():
    """train (2 per class), validation and test (1 per class) tone clips."""
    return {"train": tone_clips(1, 2), "validation": tone_clips(2), "test": tone_clips(3)}


def smoke_space(**tuner):
    """search_spaces/smoke.yaml with tuner options replaced."""
    from tuner_app.model import spaces

    space = spaces.load(SMOKE_SPACE)
    return dataclasses.replace(space, tuner={**space.tuner, **tuner})


def _fixed(value):
    return {"type": "fixed", "value": value}


def train_tiny_trial(directory: Path) -> Path:
    """One trial of a one-conv flatten CNN (98,424 params) trained 5 epochs on the tone clips; its directory."""
    from tuner_app.data.corpus import SEED_WORDS
    from tuner_app.model import spaces
    from tuner_app.search import tuners

    space = spaces.load(SMOKE_SPACE)
    space = dataclasses.replace(
        space, tuner={**space.tuner, "max_trials": 1}, training={**space.training, "epochs": 5, "patience": 5},
        hyperparameters={**space.hyperparameters, "conv_layers": _fixed(1), "fc_layers": _fixed(0),
                         "head": _fixed("flatten"), "pool_size": _fixed(4), "learning_rate": _fixed(0.003)})
    tuner = tuners.run_search(space, tone_splits(), directory, verbose=0, class_names=list(SEED_WORDS))
    trial = next(t for t in tuner.oracle.trials.values() if t.status == "COMPLETED")
    return Path(tuner.get_trial_dir(trial.trial_id))


@pytest.fixture(scope="session")
def tiny_trial_dir(tmp_path_factory) -> Path:
    """The tiny trial, trained once per test run for every test that exports or serves a model.
    Shared: tests read it and never write into it (copy_trial gives one to change)."""
    return train_tiny_trial(tmp_path_factory.mktemp("tiny_trial"))


def copy_trial(trial_dir: Path, destination: Path) -> Path:
    """A private copy of a trial with its project (the search record beside it), for a test that changes it."""
    project = shutil.copytree(trial_dir.parent, destination / trial_dir.parent.name)
    return Path(project) / trial_dir.name
