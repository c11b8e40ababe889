"""A resume runs the search its trials belong to (search/fingerprint.py), and one search at a time holds a project
(search/lock.py): everything before the search loop runs here, the loop itself is replaced (no training)."""

import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import one_line_error, smoke_space, tone_splits

from tuner_app.device.budget import Budget
from tuner_app.search import fingerprint, lock, run as search_run, tuners, worker
from tuner_app.search.record import SEARCH_RECORD, read_search_record

PROJECT = "smoke-random"
CORPUS = {"fingerprint": "a" * 64}
# A search of another process holding a project's lock until its stdin closes (or it is killed).
HOLD = ("import sys\nfrom tuner_app.search.lock import project_lock\n"
        "with project_lock(sys.argv[1]):\n    print('held', flush=True)\n    sys.stdin.read()\n")


@pytest.fixture(scope="module")
def splits():
    return tone_splits()


@pytest.fixture
def loops(monkeypatch):
    """The tuners whose search loop ran (it trains nothing here)."""
    ran = []
    monkeypatch.setattr(tuners.TrialMixin, "search", lambda self, *args, **kwargs: ran.append(self))
    return ran


@pytest.fixture
def hold(tmp_path):
    """hold(project) -> a child process holding the project's lock, as a running search does."""
    children = []

    def holding(project: Path) -> subprocess.Popen:
        project.mkdir(parents=True, exist_ok=True)
        child = subprocess.Popen([sys.executable, "-c", HOLD, str(project)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        children.append(child)
        assert child.stdout.readline() == "held\n"
        return child

    yield holding
    for child in children:
        child.communicate()


def _search(splits, runs: Path, space=None, **options):
    options = {"data": CORPUS, **options}
    return search_run.run_search(space or smoke_space(), splits, runs, **options)


def _edited(**hyperparameters):
    space = smoke_space()
    specs = {name: {"type": "fixed", "value": value} for name, value in hyperparameters.items()}
    return dataclasses.replace(space, hyperparameters={**space.hyperparameters, **specs})


def _with(section: str, **values):
    space = smoke_space()
    old = getattr(space, section)
    new = dataclasses.replace(old, **values) if dataclasses.is_dataclass(old) else {**old, **values}
    return dataclasses.replace(space, **{section: new})


def test_a_resume_with_an_edited_space_is_refused_naming_the_key(splits, tmp_path, loops):
    _search(splits, tmp_path)
    record = read_search_record(tmp_path / PROJECT)
    edited = dataclasses.replace(_edited(filters=16), tuner={**smoke_space().tuner, "max_trials": 3})
    one_line_error(lambda: _search(splits, tmp_path, edited), f"{PROJECT}/{SEARCH_RECORD}",
                   "hyperparameters.filters.value: 4 -> 16", "--fresh", "--runs-dir")
    assert len(loops) == 1  # refused before any search loop (so any training) began
    assert read_search_record(tmp_path / PROJECT) == record


# What a resume may change (None) and what it may not (the key the refusal names): run_search's arguments.
CHANGES = {
    "max_trials up": (lambda: {"space": smoke_space(max_trials=3)}, None),
    "max_trials down": (lambda: {"space": smoke_space(max_trials=1)}, None),
    "retries": (lambda: {"space": smoke_space(max_retries_per_trial=2, max_consecutive_failed_trials=5)}, None),
    "--max-params": (lambda: {"budget": Budget(10**6)}, None),
    "--seed": (lambda: {"seed": 1}, "training.seed: 0 -> 1"),
    "training": (lambda: {"space": _with("training", epochs=2)}, "training.epochs: 1 -> 2"),
    "executions": (lambda: {"space": smoke_space(executions_per_trial=2)}, "tuner.executions_per_trial: (none) -> 2"),
    "frontend": (lambda: {"space": _with("frontend", frame_step=128)}, "frontend.frame_step: 160 -> 128"),
    "objective": (lambda: {"space": _with("objective", size="macs")}, "objective.size: params_total -> macs"),
    "vtlp on": (lambda: {"space": _with("augment", vtlp_alpha=0.1)}, "augment.vtlp_alpha: (none) -> 0.1"),
    "chance_epochs": (lambda: {"space": _with("training", chance_epochs=2)}, "training.chance_epochs: 5 -> 2"),
    "monitor": (lambda: {"space": _with("training", monitor="val_accuracy")},
                "training.monitor: (none) -> val_accuracy"),
    "corpus": (lambda: {"data": {"fingerprint": "b" * 64}}, "corpus.fingerprint: aaaaaaaaaaaaaaaaaaaaa... -> bbb"),
    "classes": (lambda: {"class_names": ["yes", "no"]}, "corpus.class_names: [\"class_0\""),
}


@pytest.mark.parametrize("change", CHANGES)
def test_what_a_resume_may_change(splits, tmp_path, loops, change):
    arguments, refused_key = CHANGES[change]
    _search(splits, tmp_path)
    kept = read_search_record(tmp_path / PROJECT)["fingerprint"]
    if refused_key:
        one_line_error(lambda: _search(splits, tmp_path, **arguments()), refused_key, "--fresh")
    else:
        _search(splits, tmp_path, **arguments())
        assert len(loops) == 2
    assert read_search_record(tmp_path / PROJECT)["fingerprint"] == kept


def test_keys_added_later_leave_the_identity_alone_while_off():
    # A search recorded before augment's speed/VTLP/mixup keys and training.chance_epochs existed resumes with them
    # off: its identity had none of them.
    space = _with("training", chance_epochs=0)
    identity = fingerprint.search_identity(space, None, 0, ["a"], {"fingerprint": "f"})
    assert not set(fingerprint.LATER_AUGMENT_KEYS) & set(identity["augment"])
    assert not {"chance_epochs", "monitor"} & set(identity["training"]) and "time_shift_ms" in identity["augment"]


def test_a_refusal_names_three_keys_and_counts_the_rest():
    old = {"a": 1, "b": {"c": 2, "d": 3}, "e": [4], "f": "x"}
    new = {"a": 2, "b": {"c": 3}, "e": [5], "f": "y", "g": 0}
    message = one_line_error(lambda: fingerprint.check_same_search(
        {"fingerprint": fingerprint.digest(old), "identity": old}, new, Path("record.json"), "try again"),
        "record.json: ", "(a: 1 -> 2, b.c: 2 -> 3, b.d: 3 -> (none) and 3 more); try again")
    assert "e: [4]" not in message


def test_a_record_from_before_fingerprints_resumes_with_one_warning(splits, tmp_path, loops, caplog):
    _search(splits, tmp_path)
    path = tmp_path / PROJECT / SEARCH_RECORD
    old = {key: value for key, value in json.loads(path.read_text()).items() if key not in ("fingerprint", "identity")}
    path.write_text(json.dumps(old))
    with caplog.at_level(logging.WARNING):
        _search(splits, tmp_path, _edited(filters=16))
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0] and "fingerprint" in warnings[0], warnings
    assert len(loops) == 2 and "fingerprint" in read_search_record(tmp_path / PROJECT)


def test_a_search_and_a_fresh_one_are_refused_while_another_holds_the_project(splits, tmp_path, loops, hold):
    trial = tmp_path / PROJECT / "trial_0" / "trial.json"
    trial.parent.mkdir(parents=True)
    trial.write_text("{}")
    holder = hold(tmp_path / PROJECT)
    for fresh in (False, True):
        one_line_error(lambda: _search(splits, tmp_path, fresh=fresh), f"{PROJECT}/{lock.LOCK_FILE}",
                       f"pid {holder.pid} on host {socket.gethostname()}", "--runs-dir")
    assert trial.exists() and not loops  # --fresh deleted nothing of the running search, trained nothing


def test_a_worker_joins_the_chiefs_held_project_but_not_with_another_space(splits, tmp_path, loops, hold,
                                                                             monkeypatch):
    _search(splits, tmp_path)  # the chief's record
    hold(tmp_path / PROJECT)  # the chief, running
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker-1")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setattr(worker.WorkerOracle, "get_space", lambda self: None)  # the chief answers at once
    _search(splits, tmp_path)
    one_line_error(lambda: _search(splits, tmp_path, _edited(filters=16)), "hyperparameters.filters.value: 4 -> 16",
                   fingerprint.WORKER_REMEDY)
    assert len(loops) == 2


def test_the_lock_of_a_killed_search_is_taken_over_with_a_warning(splits, tmp_path, loops, hold, caplog):
    holder = hold(tmp_path / PROJECT)
    holder.kill()  # SIGKILL: no clean-up, the file stays behind
    holder.wait()
    assert (tmp_path / PROJECT / lock.LOCK_FILE).exists()
    with caplog.at_level(logging.WARNING):
        _search(splits, tmp_path)
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1 and f"pid {holder.pid} on host {socket.gethostname()}" in warnings[0], warnings
    assert len(loops) == 1 and not (tmp_path / PROJECT / lock.LOCK_FILE).exists()


def _ends(how):
    def search(tuner, *args, **kwargs):
        search.holder = json.loads((Path(tuner.project_dir) / lock.LOCK_FILE).read_text())
        if how == "SIGTERM":
            os.kill(os.getpid(), signal.SIGTERM)
        elif how is not None:
            raise how
    return search


@pytest.mark.parametrize("how", [None, RuntimeError("boom"), KeyboardInterrupt(), "SIGTERM"],
                         ids=["normal", "error", "interrupt", "SIGTERM"])
def test_the_lock_is_held_for_the_search_and_released_however_it_ends(splits, tmp_path, monkeypatch, how, caplog):
    search = _ends(how)
    monkeypatch.setattr(tuners.TrialMixin, "search", search)
    if how is None:
        _search(splits, tmp_path)
    else:
        with pytest.raises(KeyboardInterrupt if how == "SIGTERM" else type(how)):
            _search(splits, tmp_path)
    assert search.holder == {"pid": os.getpid(), "host": socket.gethostname()}
    assert not (tmp_path / PROJECT / lock.LOCK_FILE).exists()
    with caplog.at_level(logging.WARNING), lock.project_lock(tmp_path / PROJECT):
        pass
    assert not caplog.records  # released, not left stale
