import dataclasses
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from shared_artifacts import _empty_store, new_store, tiny_export  # noqa: F401 -- fixtures for every module

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
    from tuner_app.model.space import search_space

    space = search_space.load(SMOKE_SPACE)
    return dataclasses.replace(space, tuner={**space.tuner, **tuner})


def _fixed(value):
    return {"type": "fixed", "value": value}


def train_tiny_trial(directory: Path) -> Path:
    """One trial of a one-conv flatten CNN (98,424 params) trained 5 epochs on the tone clips; its directory."""
    from tuner_app.data.corpus import SEED_WORDS
    from tuner_app.model.space import search_space
    from tuner_app.search import run as search_run

    space = search_space.load(SMOKE_SPACE)
    space = dataclasses.replace(
        space, tuner={**space.tuner, "max_trials": 1}, training={**space.training, "epochs": 5, "patience": 5},
        hyperparameters={**space.hyperparameters, "conv_layers": _fixed(1), "fc_layers": _fixed(0),
                         "head": _fixed("flatten"), "pool_size": _fixed(4), "learning_rate": _fixed(0.003)})
    tuner = search_run.run_search(space, tone_splits(), directory, verbose=0, class_names=list(SEED_WORDS))
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


def weight_count(weights) -> int:
    return sum(int(np.prod(weight.shape)) for weight in weights)


def layer_macs(layer) -> int:
    """One MAC per kernel weight per output position, from the built layer alone: a Conv's (1D, 2D, depthwise)
    kernel holds every weight one output position uses, a Dense's every weight but its bias."""
    if not hasattr(layer, "kernel"):
        return 0
    return output_positions(layer) * int(np.prod(layer.kernel.shape))


def output_positions(layer) -> int:
    """The output positions a conv computes for the architecture: a stride model/architecture/depthwise.py takes as a
    stride-1 conv and a subsampling `<name>_stride` pool counts as the strided conv it stands for."""
    after = [node.operation for node in layer._outbound_nodes if node.operation.name == f"{layer.name}_stride"]
    return int(np.prod((after[0] if after else layer).output.shape[1:-1]))


def block_layers(model, row):
    """The Keras layers a walk row's block built: named as the row, or starting with its name and `_`."""
    return [layer for layer in model.layers if layer.name == row.name or layer.name.startswith(row.name + "_")]


def assert_build_matches_walk(blocks, shape, n_classes) -> set[str]:
    """spec.build's model equals spec.walk block by block (trainable and non-trainable params, output shape,
    MACs counted over the built layers) and in total; every layer belongs to one block. The rows' kinds."""
    from tuner_app.model.architecture import spec

    walk, model = spec.walk(blocks, shape, n_classes), spec.build(blocks, shape, n_classes)
    claimed, context = [], (blocks, shape)
    for row in walk.rows:
        layers = block_layers(model, row)
        assert layers, f"no Keras layer for {row.name}"
        assert weight_count(w for layer in layers for w in layer.trainable_weights) == row.trainable, (row, context)
        assert weight_count(w for layer in layers for w in layer.non_trainable_weights) == row.non_trainable, (
            row, context)
        assert tuple(layers[-1].output.shape[1:]) == row.output_shape, (row, context)
        assert sum(layer_macs(layer) for layer in layers) == row.macs, (row, context)
        claimed += [layer.name for layer in layers]
    assert sorted(claimed) == sorted(layer.name for layer in model.layers[1:]), "every layer has one block"
    assert weight_count(model.trainable_weights) == walk.params_trainable
    assert weight_count(model.non_trainable_weights) == walk.params_non_trainable
    assert model.count_params() == walk.params_total
    assert sum(layer_macs(layer) for layer in model.layers) == walk.macs
    assert tuple(model.output.shape[1:]) == walk.output_shape == (n_classes,)
    return {row.kind for row in walk.rows}


def make_oracle(kind, space, max_params, **options):
    """An oracle of tuner-app's `kind` over `space`, its hyperparameters declared, objective val_accuracy."""
    import keras_tuner

    from tuner_app.device.budget import Budget
    from tuner_app.model.architecture import configured
    from tuner_app.model.space import search_space

    hp = keras_tuner.HyperParameters()
    search_space.declare(hp, space)
    return kind(space, Budget(max_params), configured.N_CLASSES,
                objective=keras_tuner.Objective("val_accuracy", "max"),
                hyperparameters=hp, **options)


def run_fake_trials(oracle, directory, count, score=lambda values, index: 0.5):
    """The oracle's own loop without training: create and end up to `count` trials, each reporting
    val_accuracy = score(values, index) and its walk's params_total. Returns the trials, stopping early
    when the oracle does."""
    from tuner_app.model.architecture import configured

    oracle._set_project_dir(str(directory), "fake")
    trials = []
    for index in range(count):
        trial = oracle.create_trial("tuner0")
        if trial.status != "RUNNING":
            break
        values = trial.hyperparameters.values
        params = configured.sizes(oracle.space, values)["params_total"]
        oracle.update_trial(trial.trial_id, {"val_accuracy": score(values, index), "params_total": params})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        trials.append(trial)
    return trials


# One small configuration of every family the search produces, for the inspection tests (untrained weights):
# the seed stacks in 1D (waveform) and 2D (STFT), DS-CNN (2D, MFCC), TC-ResNet (1D over time, MFCC) and
# BC-ResNet (2D, log-mel). The seed's FC layers shrink to 8 units so the models build in a second.
FAMILY_SPACES = {
    "seed_1d": {"conv_layers": 2, "fc_layers": 1, "batch_norm": True, "fc_units_1": 8},
    "seed_2d": {"conv_layers": 2, "fc_layers": 1, "batch_norm": False, "fc_units_1": 8},
    "dscnn_s": {},
    "tcresnet8": {},
    "bcresnet1": {},
}


def inspected_model(space_name: str, n_classes: int = 4, seed: int = 0):
    """tuner_app.inspection.source.Inspected of FAMILY_SPACES[space_name], built with seeded random weights."""
    import keras

    from tuner_app.inspection.source import Inspected
    from tuner_app.model.architecture import build, configured
    from tuner_app.model.space import configurations, search_space

    keras.utils.set_random_seed(seed)
    space = search_space.load(search_space.locate(space_name))
    values = {**configurations.configurations(space, 1)[0], **FAMILY_SPACES[space_name]}
    model = build.build_model(space, values, n_classes)
    class_names = tuple(f"class{index}" for index in range(n_classes))
    return Inspected(configured.model_name(space, values), space, values, class_names, model, space_name)


def one_line_error(call, *fragments) -> str:
    """The message of the TunerAppError `call()` raises: one line, containing every fragment (a file, a key)."""
    from tuner_app.errors import TunerAppError

    with pytest.raises(TunerAppError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert str(fragment) in message, message
    return message


def cli_error_line(result, exit_code: int = 2, alone: bool = False) -> str:
    """The `Error: ...` line a CliRunner command ended with, through its own error handling: `exit_code`, no
    escaped exception (CliRunner keeps one, and its traceback, in result.exception) and no traceback printed.
    With `alone`, that line is all of stderr."""
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines and (len(lines) == 1 or not alone) and lines[-1].startswith("Error: "), result.stderr
    return lines[-1]


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1 (for a server a test starts)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def two_word_corpus(data: Path) -> Path:
    """A corpus in the Speech Commands layout: zero and one, 6 tone clips each, 1 validation and 1 test
    clip per word in the split lists."""
    for word in ("zero", "one"):
        for i in range(6):
            write_wav(data / word / f"spk{i}_nohash_0.wav", tone(freq=200 + 40 * i + 300 * (word == "one")))
    (data / "validation_list.txt").write_text("zero/spk2_nohash_0.wav\none/spk3_nohash_0.wav\n")
    (data / "testing_list.txt").write_text("zero/spk4_nohash_0.wav\none/spk5_nohash_0.wav\n")
    return data


SERVER_START_S = 90


@pytest.fixture
def tracking_server(tmp_path):
    """(its URL, its store) for a `tuner-app server` on a free loopback port, stopped after the test."""
    yield from serve_tracking(tmp_path)


def serve_tracking(tmp_path: Path):
    """Start `tuner-app server` over a SQLite store in tmp_path; yield (its URL, its store); stop it."""
    port, store = free_port(), f"sqlite:///{tmp_path / 'served' / 'mlflow.db'}"
    log = tmp_path / "server.log"
    with open(log, "w") as output:
        server = subprocess.Popen([sys.executable, "-m", "tuner_app.cli", "server", "--port", str(port),
                                   "--backend-store-uri", store], stdout=output, stderr=subprocess.STDOUT,
                                  start_new_session=True, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_line(log, f"ready: {url}", server)
        yield url, store
    finally:
        _stop_group(server)


def _stop_group(process: subprocess.Popen, grace_s: float = 20) -> None:
    """Interrupt a process group, and kill it if it has not ended after grace_s: on a loaded machine a server
    can take longer to stop, and how it stops is not what the tests that use it check."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for_line(log: Path, line: str, server: subprocess.Popen) -> None:
    """Wait (up to SERVER_START_S) until `line` is in the log of `server`, a process that must stay up."""
    deadline = time.monotonic() + SERVER_START_S
    while line not in log.read_text():
        assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.3)


def serving_module(model):
    """`model` as a tf.Module whose `serve` takes a batch of 16 kHz clips in inference mode: what a SavedModel
    export serves."""
    import tensorflow as tf

    class Serving(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, 16000], tf.float32)])
        def serve(self, waveform):
            return self.model(waveform, training=False)

    return Serving(model)
