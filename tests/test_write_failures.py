"""A disk that refuses writes (full, over quota, a file too large) while writing the decoded cache, an export
or a checkpoint: one clear line, and no half-written result under a real name.

Simulated for real: RLIMIT_FSIZE makes the kernel fail every write past the limit with EFBIG, as a full disk
fails it with ENOSPC (tests run as root here, so a read-only directory would not stop a write)."""

import contextlib
import json
import resource
import signal
from pathlib import Path

from conftest import one_line_error, smoke_space, tone_splits, two_word_corpus

from tuner_app.data import cache, corpus
from tuner_app.search import observers, run as search_run
from tuner_app.serving import export

FILE_TOO_LARGE = "File too large"


@contextlib.contextmanager
def file_size_limit(limit: int):
    """Every write of this process past `limit` bytes of a file fails with OSError EFBIG (not SIGXFSZ's kill)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def leftovers(directory: Path) -> list[str]:
    """Temporaries a failed write could leave: atomic_path's .partial files, export's staging directories."""
    return [path.name for path in directory.rglob("*") if ".partial" in path.name or ".tmp-" in path.name]


def test_a_cache_write_that_fails_leaves_no_cache_and_names_the_file(tmp_path):
    found = corpus.scan(two_word_corpus(tmp_path / "data"))
    cache_dir = tmp_path / "cache"
    with file_size_limit(64 * 1024):  # the train split's .npy holds 8 clips of 32,000 bytes
        message = one_line_error(lambda: cache.decode_corpus(found, cache_dir), "cannot write", ".npy",
                                 FILE_TOO_LARGE, "--cache-dir")
    assert str(cache_dir / "decoded") in message
    assert sorted(path.name for path in (cache_dir / "decoded").iterdir()) == []  # neither half of the pair
    assert len(cache.decode_corpus(found, cache_dir)["train"]) == 8  # the same call, with room, works


def test_an_export_that_fails_leaves_nothing_at_out(tiny_trial_dir, tmp_path):
    out = tmp_path / "model"
    with file_size_limit(4096):
        one_line_error(lambda: export.export_trial(tiny_trial_dir, out), f"cannot write {out}: {FILE_TOO_LARGE}",
                       "--out")
    assert not out.exists()
    assert leftovers(tmp_path) == []


class FillDiskOnTrial(observers.SearchObserver):
    """Limits file sizes from the start of the `nth` trial on (the first is 1), as a disk filling up mid-search."""

    def __init__(self, nth: int, limit: int, stack: contextlib.ExitStack):
        self.nth, self.limit, self.stack, self.begun = nth, limit, stack, 0

    def trial_begin(self, tuner, trial) -> None:
        self.begun += 1
        if self.begun == self.nth:
            self.stack.enter_context(file_size_limit(self.limit))


def test_a_checkpoint_write_that_fails_stops_the_search_and_a_rerun_resumes(tmp_path):
    space, splits = smoke_space(max_trials=2), tone_splits()
    with contextlib.ExitStack() as stack:
        fill = FillDiskOnTrial(2, 8192, stack)
        message = one_line_error(lambda: search_run.run_search(space, splits, tmp_path, observers=[fill]),
                                 "cannot write", "checkpoint.weights.h5", FILE_TOO_LARGE, "--runs-dir")
    assert fill.begun == 2  # stopped at once: no third trial tried the same write
    checkpoint = Path(message.removeprefix("cannot write ").split(": ")[0])
    project, second = checkpoint.parent.parent, checkpoint.parent
    first = project / "trial_0"
    assert second != first and not checkpoint.exists()
    assert json.loads((second / "trial.json").read_text())["status"] != "COMPLETED"
    assert leftovers(project) == []
    kept = (first / "checkpoint.weights.h5").stat().st_mtime_ns

    resumed = search_run.run_search(space, splits, tmp_path)
    statuses = {trial.trial_id: trial.status for trial in resumed.oracle.trials.values()}
    assert list(statuses.values()).count("COMPLETED") == 2, statuses
    assert (first / "checkpoint.weights.h5").stat().st_mtime_ns == kept  # the finished trial was not retrained
