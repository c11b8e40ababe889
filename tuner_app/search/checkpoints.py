"""Writes under --runs-dir (a trial's checkpoint, keras-tuner's state files, the search record), each whole or
not at all; a disk that refuses one stops the search with one line, and a rerun resumes it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import keras_tuner

from tuner_app.errors import TunerAppError, os_cause, storage_error
from tuner_app.files import atomic_path, save_weights

KEPT = "finished trials are kept"


class RunsDirWriteError(TunerAppError, keras_tuner.errors.FatalError):
    """A write under --runs-dir the disk refused. A FatalError, so keras-tuner stops the search at once rather
    than fail every later trial the same way; a TunerAppError, so the CLI prints its one line."""


@contextlib.contextmanager
def runs_dir_write(path) -> Iterator[None]:
    """An OSError inside the block (writing `path`) becomes a RunsDirWriteError naming it."""
    try:
        yield
    except RunsDirWriteError:
        raise
    except OSError as error:
        raise RunsDirWriteError(str(storage_error(path, os_cause(error), "--runs-dir", KEPT))) from None


def check_writable(directory) -> None:
    """Create `directory` and write a file in it now, so that a read-only or full --runs-dir stops the search
    before any training, with one line (keras-tuner's own first write raises a TensorFlow error)."""
    with runs_dir_write(directory):
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory) as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())


def start_over(project_dir, keep: str) -> None:
    """--fresh: remove what a search left in `project_dir`, all but the file named `keep` (the search's lock,
    which keras-tuner's own overwrite would remove with the rest)."""
    with runs_dir_write(project_dir):
        for entry in Path(project_dir).iterdir():
            if entry.name == keep:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def write_checkpoint(model, checkpoint: str, build_config: str) -> None:
    """A trial's weights and build config, each written whole or not at all; RunsDirWriteError naming
    the file if the disk refuses it (full, over quota, read-only...)."""
    with runs_dir_write(checkpoint):
        save_weights(model, checkpoint)
    with runs_dir_write(build_config), atomic_path(build_config) as temporary:
        with open(temporary, "w", encoding="utf-8") as stream:
            json.dump(model.get_build_config(), stream)
