"""Files written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A new temporary file beside `path`, renamed onto it when the block succeeds and removed in every case.

    A name of its own per writer: two processes writing one file (two searches on one corpus) never share
    a temporary, and an interrupted write never leaves a half file under the real name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(descriptor)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; these are ordinary shared files
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
