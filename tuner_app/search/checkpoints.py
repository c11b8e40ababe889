"""A trial's checkpoint (weights and build config, where keras-tuner looks for them), written whole or not
at all; a disk that refuses it stops the search with one line."""

from __future__ import annotations

import json

import keras_tuner

from tuner_app.errors import TunerAppError, os_cause, storage_error
from tuner_app.files import atomic_path, save_weights


class CheckpointWriteError(TunerAppError, keras_tuner.errors.FatalError):
    """A checkpoint the disk refused. A FatalError, so keras-tuner stops the search at once rather than fail
    every later trial the same way; a TunerAppError, so the CLI prints its one line."""


def write_checkpoint(model, checkpoint: str, build_config: str) -> None:
    """A trial's weights and build config, each written whole or not at all; CheckpointWriteError naming
    the file if the disk refuses it (full, over quota, read-only...)."""
    path = checkpoint
    try:
        save_weights(model, checkpoint)
        path = build_config
        with atomic_path(build_config) as temporary, open(temporary, "w", encoding="utf-8") as stream:
            json.dump(model.get_build_config(), stream)
    except OSError as error:
        remedy = "free space or choose another --runs-dir, then run the same command again (finished trials are kept)"
        raise CheckpointWriteError(str(storage_error(path, os_cause(error), remedy))) from None
