"""A search stopped by Ctrl-C (SIGINT), `kill` (SIGTERM) or `kill -9` resumes without retraining finished trials.
One random search takes all three signals in turn (Ctrl-C stops it fresh, each resume is stopped by the next
signal): each stop and resume is checked as a search of its own per signal was, with two processes and
about five trials fewer."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import tone, write_wav

SMOKE = Path(__file__).resolve().parents[1] / "search_spaces" / "smoke.yaml"
HANG = 900  # seconds: every wait is for an event (a file, an exit); this only stops a hung search


def _corpus(root: Path) -> Path:
    for word in ("zero", "one"):
        for index in range(8):
            write_wav(root / word / f"spk{index}_nohash_0.wav", tone(freq=200 + 300 * (word == "one") + 10 * index))
    (root / "validation_list.txt").write_text("zero/spk0_nohash_0.wav\none/spk1_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("zero/spk2_nohash_0.wav\none/spk3_nohash_0.wav\n")
    return root


def _space(path: Path, trials: int) -> Path:
    document = yaml.safe_load(SMOKE.read_text())
    document["tuner"]["max_trials"] = trials
    # 8 configurations (filters 2 or 4), so no oracle runs out of new ones before the last trial.
    document["hyperparameters"]["filters"] = {"type": "choice", "values": [2, 4]}
    # Models of at most 1,128 params on 12 clips: seconds per trial, which is all the signal needs to land.
    document["training"].update(epochs=4, patience=4)
    path.write_text(yaml.safe_dump(document))
    return path


def _completed(runs: Path) -> dict[str, float]:
    """{trial_id: mtime of its kept weights} for every trial keras-tuner recorded as COMPLETED."""
    done = {}
    for trial_file in runs.glob("*/trial_*/trial.json"):
        try:
            trial = json.loads(trial_file.read_text())
        except ValueError:  # being written
            continue
        if trial["status"] == "COMPLETED":
            done[trial["trial_id"]] = (trial_file.parent / "checkpoint.weights.h5").stat().st_mtime
    return done


def _search(tmp_path: Path, tuner: str, trials: int) -> list[str]:
    return [sys.executable, "-m", "tuner_app.cli", "search", "--space", str(_space(tmp_path / "space.yaml", trials)),
            "--data", str(tmp_path / "data"), "--cache-dir", str(tmp_path / "cache"),
            "--runs-dir", str(tmp_path / "runs"), "--format", "json", "--tuner", tuner]


def _wait_for_a_new_trial(process: subprocess.Popen, runs: Path, stderr: Path, old: dict) -> dict[str, float]:
    """Waits for a COMPLETED trial.json beyond the `old` ones, however slow the machine; fails if the search
    exits first."""
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline and process.poll() is None:
        done = _completed(runs)
        if set(done) - set(old):
            return done
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no new trial finished (exit {process.wait()}): {stderr.read_text()[-2000:]}")


def _env() -> dict[str, str]:
    """The test's environment (its own tracking store, set by conftest's _tracking_store), TF quiet."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _interrupt(command: list[str], tmp_path: Path, how: signal.Signals, old: dict) -> dict[str, float]:
    """Runs the search until one more trial finished, sends `how`; the trials COMPLETED once it exited."""
    log = tmp_path / "stderr.txt"
    # Output to files, not pipes: nobody reads a pipe while the search runs, and a full one would block it.
    with log.open("w") as errors, (tmp_path / "stdout.txt").open("w") as out:
        process = subprocess.Popen(command, env=_env(), cwd=tmp_path, text=True, stdout=out, stderr=errors)
    before = _wait_for_a_new_trial(process, tmp_path / "runs", log, old)
    process.send_signal(how)
    process.wait(timeout=HANG)
    stderr = log.read_text()
    if how == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
    else:
        assert process.returncode == 130, stderr[-2000:]
        assert "run the same command again to resume" in stderr
    if old:
        assert f"{len(old)} already done (resuming)" in stderr, stderr[-2000:]
    interrupted = _completed(tmp_path / "runs")
    assert {trial_id: interrupted[trial_id] for trial_id in old} == old  # never retrained
    assert set(before) <= set(interrupted)
    return interrupted


@pytest.mark.parametrize("signals, tuner", [
    pytest.param((signal.SIGINT, signal.SIGTERM, signal.SIGKILL), "random", id="int-term-kill"),
    pytest.param((signal.SIGKILL,), "pareto", id="kill-pareto"),  # its Optuna study is rebuilt from the trials
])
def test_interrupted_search_resumes_without_retraining(tmp_path, signals, tuner, new_store):
    _corpus(tmp_path / "data")
    new_store(tmp_path / "mlruns" / "mlflow.db")  # the searches' store (conftest's _tracking_store), made already
    # Each stop leaves one finished trial more; after the last, the resume retries the stopped trial and
    # proposes at least one new configuration (which must not repeat one proposed before the stops).
    trials = len(signals) + 2
    command = _search(tmp_path, tuner, trials)
    interrupted = {}
    for how in signals:
        interrupted = _interrupt(command, tmp_path, how, interrupted)
    assert 1 <= len(interrupted) < trials, "the search ended before the signal: make the trials longer"

    resumed = subprocess.run(command, env=_env(), cwd=tmp_path, text=True, capture_output=True, timeout=HANG,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{len(interrupted)} already done (resuming)" in resumed.stderr
    rows = json.loads(resumed.stdout)
    assert [row["status"] for row in rows] == ["COMPLETED"] * trials
    after = _completed(tmp_path / "runs")
    assert {trial_id: after[trial_id] for trial_id in interrupted} == interrupted  # never retrained
    proposed = [json.dumps(row["hyperparameters"], sort_keys=True) for row in rows]
    assert len(set(proposed)) == trials  # no configuration proposed twice across the stops
