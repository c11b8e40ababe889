"""Two processes opening one new SQLite store at once both succeed: MLflow's schema set-up runs in one at a time
(tracking/store.py), never both half-way ("duplicate column name: step")."""

import subprocess
import sys

ROUNDS = 2  # a new store per round, opened by both processes as soon as both are told its URI
# Opens each store named on stdin as a search does before it begins, then says so.
OPEN = ("import sys\nfrom tuner_app.tracking import store\nprint('ready', flush=True)\n"
        "for uri in sys.stdin:\n    store.check_reachable(uri.strip())\n    print('opened', flush=True)\n")


def test_two_processes_creating_one_new_sqlite_store_both_succeed(tmp_path):
    logs = [open(tmp_path / f"stderr{index}.txt", "w") for index in range(2)]
    children = [subprocess.Popen([sys.executable, "-c", OPEN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=log, text=True) for log in logs]
    try:
        assert [child.stdout.readline() for child in children] == ["ready\n"] * 2
        for round_ in range(ROUNDS):
            for child in children:  # both imported everything: they start the set-up together
                child.stdin.write(f"sqlite:///{tmp_path}/store{round_}/mlflow.db\n")
                child.stdin.flush()
            answers = [child.stdout.readline() for child in children]
            assert answers == ["opened\n"] * 2, [(tmp_path / f"stderr{i}.txt").read_text()[-500:] for i in range(2)]
    finally:
        for child, log in zip(children, logs):
            child.stdin.close()
            child.wait()
            log.close()
    assert [child.returncode for child in children] == [0, 0]
