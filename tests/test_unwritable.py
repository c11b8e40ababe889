"""Folders the system will not let tuner-app write in (a read-only share, another user's folder): every command
that writes says so on one line naming the path and the option to change, exits 2 and leaves nothing behind;
a search stops before it trains anything.

The refusals are the kernel's own (EACCES): the folder is mode 555, and a test run as root (CI) also drops
CAP_DAC_OVERRIDE, root's right to write anywhere, from its thread for the test's duration."""

import contextlib
import ctypes
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import (SMOKE_SPACE, cli_error_line, one_line_error, smoke_space, tone, tone_splits, two_word_corpus,
                      write_wav)

from tuner_app.analysis import pareto_report
from tuner_app.cli import cli
from tuner_app.search import observers, run as search_run
from tuner_app.serving import inference

_CAP_DAC_OVERRIDE = 1
_CAPABILITY_VERSION_3 = 0x20080522


class _CapabilityHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapabilitySet(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


@contextlib.contextmanager
def _obeying_file_modes():
    """Root's thread without CAP_DAC_OVERRIDE in its effective set (it stays permitted, and comes back after)."""
    libc = ctypes.CDLL(None, use_errno=True)
    header, sets = _CapabilityHeader(_CAPABILITY_VERSION_3, 0), (_CapabilitySet * 2)()
    if libc.capget(ctypes.byref(header), sets) != 0:
        pytest.skip(f"capget: {os.strerror(ctypes.get_errno())}")
    saved = sets[0].effective
    sets[0].effective &= ~(1 << _CAP_DAC_OVERRIDE)
    if libc.capset(ctypes.byref(header), sets) != 0:
        pytest.skip(f"capset: {os.strerror(ctypes.get_errno())}")
    try:
        yield
    finally:
        sets[0].effective = saved
        libc.capset(ctypes.byref(header), sets)


@pytest.fixture
def file_modes_obeyed():
    """For the test's duration, a folder of mode 555 refuses this thread's writes, as it would any user's."""
    with _obeying_file_modes() if os.geteuid() == 0 else contextlib.nullcontext():
        yield


@pytest.fixture
def unwritable(tmp_path, file_modes_obeyed) -> Path:
    """An empty folder this test cannot write in."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    with contextlib.suppress(PermissionError):
        (folder / "probe").touch()
        pytest.skip("this system lets the test write in a mode-555 folder")
    yield folder
    folder.chmod(0o755)


def _refused(unwritable: Path, args: list[str], culprit: Path, option: str) -> None:
    result = CliRunner().invoke(cli, args)
    line = cli_error_line(result)
    assert line.startswith(f"Error: cannot write {culprit}: Permission denied; make it writable or choose "
                           f"another {option}"), line
    assert list(unwritable.iterdir()) == []  # no partial file or folder left behind


def _fsdd_recordings(folder: Path) -> Path:
    for digit in range(2):
        for take in range(2):
            write_wav(folder / "recordings" / f"{digit}_jackson_{take}.wav", tone(rate=8000, freq=300 + 200 * digit))
    return folder


@pytest.mark.parametrize("command", ["synth", "import-fsdd", "prepare"])
def test_a_data_command_refused_its_folder_names_it(command, unwritable, tmp_path):
    target = unwritable / command
    args = {"synth": ["data", "synth", str(target), "--per-class", "1"],
            "import-fsdd": ["data", "import-fsdd", str(_fsdd_recordings(tmp_path / "fsdd")), str(target)],
            "prepare": ["data", "prepare", "--data", str(two_word_corpus(tmp_path / "data")), "--cache-dir",
                        str(target)]}[command]
    culprit = target / "decoded" if command == "prepare" else target
    option = "--cache-dir" if command == "prepare" else "OUT"
    result = CliRunner().invoke(cli, args)
    line = cli_error_line(result)
    assert line.startswith(f"Error: cannot write {culprit}") and f"make it writable or choose another {option}" in line
    assert list(unwritable.iterdir()) == []  # no partial corpus or cache left behind


def test_a_search_refused_its_runs_dir_stops_before_training(unwritable, tmp_path, monkeypatch, new_store):
    monkeypatch.chdir(tmp_path)
    new_store(tmp_path / "mlruns" / "mlflow.db")  # the default store (conftest's _tracking_store), made already
    args = ["search", "--space", SMOKE_SPACE, "--data", str(two_word_corpus(tmp_path / "data")), "--cache-dir",
            str(tmp_path / "cache"), "--runs-dir", str(unwritable / "runs")]
    _refused(unwritable, args, unwritable / "runs" / "smoke-random", "--runs-dir")
    assert list((tmp_path / "cache").rglob("*.npy"))  # the decoded corpus, made before, is kept


@pytest.mark.parametrize("command", ["export", "visualize", "activations", "server"])
def test_an_output_refused_names_it_and_its_option(command, unwritable, tmp_path, tiny_trial_dir):
    target = unwritable / command
    clip = write_wav(tmp_path / "stimuli" / "clip.wav", tone(seconds=1.0))
    args = {"export": ["export", "--trial-dir", str(tiny_trial_dir), "--out", str(target)],
            "visualize": ["visualize", str(tiny_trial_dir), "--input", str(clip), "--out", str(target)],
            "activations": ["activations", str(tiny_trial_dir), "--stimuli", str(clip.parent), "--out",
                            str(target.with_suffix(".npz"))],
            "server": ["server", "--backend-store-uri", f"sqlite:///{target}/mlflow.db", "--port", "9"]}[command]
    culprit = target.with_suffix(".npz") if command == "activations" else target
    _refused(unwritable, args, culprit, "--backend-store-uri" if command == "server" else "--out")


def test_a_pareto_analysis_or_confusion_matrix_refused_writes_nothing(unwritable):
    row = {"run_id": "a", "trial_id": "0", "status": "FINISHED", "outcome": "COMPLETED", "trial_dir": "/t/0",
           "model": "cnn2d", "hyperparameters": {"conv_layers": 1},
           "metrics": {"params_total": 100.0, "best_val_accuracy": 0.5, "test_accuracy": 0.5}}
    one_line_error(lambda: pareto_report.analyse([row], unwritable), f"cannot write {unwritable}", "another --out")
    evaluation = inference.Evaluation("data", "test", ["a", "b"], np.eye(2, dtype=int), {}, [])
    one_line_error(lambda: inference.write_confusion_png(evaluation, unwritable / "confusion.png"),
                   f"cannot write {unwritable / 'confusion.png'}: Permission denied", "another --out")
    assert list(unwritable.iterdir()) == []


class _ProjectTurnsReadOnly(observers.SearchObserver):
    """From the second trial on, the search's project folder refuses writes (a share remounted read-only)."""

    def __init__(self):
        self.begun = 0

    def trial_begin(self, tuner, trial) -> None:
        self.begun += 1
        if self.begun == 2:
            Path(tuner.project_dir).chmod(0o555)


def test_a_runs_dir_that_turns_read_only_mid_search_stops_it_and_a_rerun_resumes(file_modes_obeyed, tmp_path):
    space, splits = smoke_space(max_trials=2), tone_splits()
    turns = _ProjectTurnsReadOnly()
    message = one_line_error(lambda: search_run.run_search(space, splits, tmp_path / "runs", observers=[turns]),
                             "cannot write", "Permission denied", "--runs-dir", "finished trials are kept")
    project = tmp_path / "runs" / "smoke-random"
    assert turns.begun == 2 and str(project) in message, message
    kept = (project / "trial_0" / "checkpoint.weights.h5").stat().st_mtime_ns
    project.chmod(0o755)
    resumed = search_run.run_search(space, splits, tmp_path / "runs")
    assert [trial.status for trial in resumed.oracle.trials.values()] == ["COMPLETED", "COMPLETED"]
    assert (project / "trial_0" / "checkpoint.weights.h5").stat().st_mtime_ns == kept  # not retrained
