"""A search spread over processes: `tuner-app search --chief` and `--worker ID` (keras-tuner's distributed mode)
logging to `tuner-app server`; a worker killed mid-trial; the refusals that keep processes off one SQLite file."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from click.testing import CliRunner
from conftest import SMOKE_SPACE, cli_error_line, free_port, serve_tracking, two_word_corpus, wait_for_line

from tuner_app.cli import cli

FINISH_S = 240  # generous: three TensorFlow processes start on 2 cores


def _space(tmp_path: Path, tuner: str, trials: int, epochs: int) -> Path:
    text = Path(SMOKE_SPACE).read_text().replace("tuner: {name: random, max_trials: 2}",
                                                 f"tuner: {{name: {tuner}, max_trials: {trials}}}")
    path = tmp_path / f"{tuner}.yaml"
    path.write_text(text.replace("epochs: 1,", f"epochs: {epochs},").replace("patience: 1", f"patience: {epochs}"))
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One tracking server for the module's searches (each logs to an experiment of its own)."""
    yield from serve_tracking(tmp_path_factory.mktemp("server"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    """(--data, --cache-dir) for the module's searches: the two-word corpus, decoded once into the cache here, so
    that its processes read it rather than each decode it (three at once, on 2 cores); they never change either."""
    from tuner_app.data import cache, corpus as corpora

    root = tmp_path_factory.mktemp("corpus")
    data = two_word_corpus(root / "data")
    cache.decode_corpus(corpora.scan(data), root / "cache")
    return data, root / "cache"


class Search:
    """The chief and workers of one distributed search, as separate `tuner-app search` processes."""

    def __init__(self, corpus: tuple[Path, Path], tmp_path: Path, url: str, space: Path, *extra: str):
        self.experiment = tmp_path.name
        self.tmp_path, self.oracle = tmp_path, f"127.0.0.1:{free_port()}"
        data, cache = corpus
        self.args = ["--space", str(space), "--data", str(data), "--cache-dir", str(cache), "--runs-dir",
                     str(tmp_path / "runs"), "--tracking-uri", url, "--experiment", self.experiment, "--oracle",
                     self.oracle, *extra]
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *role: str) -> subprocess.Popen:
        with open(self.log(name), "w") as output:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "tuner_app.cli", "search", *self.args, *role], stdout=output,
                stderr=subprocess.STDOUT, cwd=self.tmp_path, start_new_session=True)
        return self.processes[name]

    def log(self, name: str) -> Path:
        return self.tmp_path / f"{name}.log"

    def wait(self, name: str) -> int:
        try:
            return self.processes[name].wait(timeout=FINISH_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{name} did not finish:\n" + "\n".join(
                f"== {other}\n{self.log(other).read_text()[-2000:]}" for other in self.processes))

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def search_processes(corpus):
    started = []
    yield lambda *args: started.append(Search(corpus, *args)) or started[-1]
    for search in started:
        search.stop_all()


def _trial_statuses(tmp_path: Path) -> dict[str, str]:
    files = (tmp_path / "runs").glob("*/trial_*/trial.json")
    return {state["trial_id"]: state["status"] for state in (json.loads(path.read_text()) for path in files)}


def _runs(store: str, experiment: str) -> tuple[list, list]:
    client = mlflow.MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    children = [run for run in runs if "mlflow.parentRunId" in run.data.tags]
    return [run for run in runs if run not in children], children


def test_a_chief_and_two_workers_run_one_search_logged_once(server, tmp_path, search_processes):
    url, store = server
    search = search_processes(tmp_path, url, _space(tmp_path, "random", trials=4, epochs=1))
    search.start("chief", "--chief")
    for worker in ("w1", "w2"):
        search.start(worker, "--worker", worker)
    assert [search.wait(name) for name in ("w1", "w2", "chief")] == [0, 0, 0], search.log("chief").read_text()
    assert _trial_statuses(tmp_path) == {str(index): "COMPLETED" for index in range(4)}
    (parent,), children = _runs(store, search.experiment)
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_completed"] == 4
    assert sorted(run.data.tags["trial_id"] for run in children) == ["0", "1", "2", "3"]  # each logged once
    assert {run.info.status for run in children} == {"FINISHED"}
    assert {run.data.tags["mlflow.parentRunId"] for run in children} == {parent.info.run_id}
    trained = [line for name in ("w1", "w2") for line in search.log(name).read_text().splitlines()
               if line.startswith("[") and "] trial " in line]
    assert len(trained) == 4  # the workers trained them; the chief trained none
    assert "] trial " in search.log("chief").read_text() and "epoch" not in search.log("chief").read_text()
    assert "Pareto front:" in search.log("chief").read_text()


def test_a_worker_killed_mid_trial_has_its_trial_retried_and_the_pareto_search_finishes(
        server, tmp_path, search_processes):
    url, store = server
    search = search_processes(tmp_path, url, _space(tmp_path, "pareto", trials=3, epochs=10), "--worker-timeout", "4")
    chief = search.start("chief", "--chief")
    doomed = search.start("w1", "--worker", "w1")
    wait_for_line(search.log("w1"), "    epoch 1/10", doomed)  # training trial 0, its MLflow run open
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.wait()
    search.start("w2", "--worker", "w2")
    assert search.wait("chief") == 0 and search.wait("w2") == 0, search.log("chief").read_text()
    assert "trial 0 lost: worker w1 stopped answering" in search.log("chief").read_text()
    assert _trial_statuses(tmp_path) == {"0": "COMPLETED", "1": "COMPLETED", "2": "COMPLETED"}
    (parent,), children = _runs(store, search.experiment)
    assert parent.info.status == "FINISHED" and chief.returncode == 0
    finished = sorted(run.data.tags["trial_id"] for run in children if run.info.status == "FINISHED")
    assert finished == ["0", "1", "2"]  # the retry logged trial 0 once more, to the end
    killed = [run for run in children if run.info.status != "FINISHED"]
    assert [(run.data.tags["trial_id"], run.info.status) for run in killed] == [("0", "KILLED")]  # never RUNNING
    assert "w1 stopped answering" in killed[0].data.tags["tuner_app.reason"]


def _wait_for_completed(search: Search, count: int, *alive: str) -> set[str]:
    """Wait until `count` trials are COMPLETED in the results directory, while the named processes stay up."""
    deadline = time.monotonic() + FINISH_S
    while len(completed := {trial for trial, status in _trial_statuses(search.tmp_path).items()
                            if status == "COMPLETED"}) < count:
        down = [name for name in alive if search.processes[name].poll() is not None]
        assert not down and time.monotonic() < deadline, f"{down}: " + search.log(alive[0]).read_text()[-3000:]
        time.sleep(0.3)
    return completed


def _trained(search: Search, *names: str) -> list[str]:
    """The trial ids the named processes began training, from their progress lines ("[...] trial ID ...")."""
    return [line.split("] trial ")[1].split()[0] for name in names for line in search.log(name).read_text().splitlines()
            if line.startswith("[") and "] trial " in line]


def test_a_restarted_chief_keeps_its_workers_and_a_search_killed_whole_resumes(server, tmp_path, search_processes):
    url, store = server
    search = search_processes(tmp_path, url, _space(tmp_path, "random", trials=4, epochs=8))  # the space's 4
    search.start("chief", "--chief")
    for worker in ("w1", "w2"):
        search.start(worker, "--worker", worker)
    _wait_for_completed(search, 1, "w1", "w2")
    os.killpg(search.processes["chief"].pid, signal.SIGKILL)  # the chief alone: its workers wait for it
    search.processes["chief"].wait()
    search.start("chief-again", "--chief")
    before_kill = _wait_for_completed(search, 2, "chief-again", "w1", "w2")  # the same workers went on
    search.stop_all()  # everything, mid-search
    search.start("chief-3", "--chief")
    for worker in ("w1", "w2"):
        search.start(f"{worker}-again", "--worker", worker)
    assert [search.wait(name) for name in ("w1-again", "w2-again", "chief-3")] == [0, 0, 0]
    assert _trial_statuses(tmp_path) == {str(index): "COMPLETED" for index in range(4)}
    assert not before_kill & set(_trained(search, "w1-again", "w2-again"))  # finished trials not retrained
    (parent,), children = _runs(store, search.experiment)  # one parent across the three chiefs
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_completed"] == 4
    finished = sorted(run.data.tags["trial_id"] for run in children if run.info.status == "FINISHED")
    assert finished == ["0", "1", "2", "3"]  # each logged once
    assert {run.info.status for run in children} <= {"FINISHED", "KILLED"}  # the killed ones, never RUNNING


@pytest.mark.parametrize("args, culprit", [
    (["--chief"], "several processes must not share the SQLite store"),
    (["--worker", "chief-2"], "must not contain 'chief'"),
    (["--chief", "--worker", "w1"], "--chief and --worker"),
    (["--worker", "w1", "--oracle", "nohost"], "--oracle 'nohost': expected HOST:PORT"),
    (["--worker", "w1", "--fresh", "--tracking-uri", "http://127.0.0.1:9"], "--fresh: only the chief"),
])
def test_distributed_options_refuse_what_cannot_work_in_one_line(args, culprit, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "environ", dict(os.environ))  # --chief/--worker set keras-tuner's variables
    result = CliRunner().invoke(cli, ["search", "--space", SMOKE_SPACE, *args])
    assert culprit in cli_error_line(result)


def test_a_tracking_server_that_does_not_answer_stops_the_search_before_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["search", "--space", SMOKE_SPACE, "--data", str(tmp_path / "missing"),
                                      "--tracking-uri", f"http://127.0.0.1:{free_port()}"])
    message = cli_error_line(result)
    assert "MLflow tracking server http://127.0.0.1:" in message and "does not answer" in message
    assert "tuner-app server" in message and not (tmp_path / "runs").exists()
    assert time.monotonic() - started < 60  # not MLflow's minutes of retries


def test_a_database_password_is_never_printed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"postgresql://tuner:s3cret-pw@127.0.0.1:{free_port()}/mlflow"
    result = CliRunner().invoke(cli, ["search", "--space", SMOKE_SPACE, "--tracking-uri", uri])
    message = cli_error_line(result)
    assert "s3cret-pw" not in result.output and "postgresql://tuner:***@127.0.0.1" in message


def test_redaction_hides_a_uris_password_and_nothing_else():
    from tuner_app.redaction import redact

    assert redact("postgresql://tuner:p%40ss@db:5432/mlflow; mysql+pymysql://a:b@h/d") == \
        "postgresql://tuner:***@db:5432/mlflow; mysql+pymysql://a:***@h/d"
    for kept in ("http://127.0.0.1:5000/health", "sqlite:////tmp/a.db", "postgresql://tuner@db/mlflow"):
        assert redact(kept) == kept
