"""Files written whole or not at all."""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
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


@contextlib.contextmanager
def staged_directory(out: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """A new hidden directory beside `out` (same file system, so the final rename is atomic), renamed to `out`
    when the block succeeds and removed in every case: `out` is complete or absent, never half-written. `out`
    must then be absent or empty, unless `replace`: an existing `out` is set aside, and deleted once replaced.
    The caller decides whether `out` may be replaced (outputs.check_new_directory); nothing is left beside it."""
    out = Path(out)
    if out.name in ("", ".", ".."):  # "." or "/": no sibling to stage in, and never a directory to replace
        raise ValueError(f"{out}: not a directory name to create")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        yield staging
        staging.chmod(0o755)  # mkdtemp makes it private; what is staged here is ordinary shared data
        if replace and out.exists():
            _replace_directory(staging, out)
        else:
            staging.replace(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _replace_directory(new: Path, out: Path) -> None:
    """Rename `new` to the existing `out`: the old one is renamed aside first, put back if the rename fails,
    and deleted once replaced. A name, not a folder, is reserved for it: a failed rename leaves nothing."""
    aside = out.with_name(f".{out.name}.old-{secrets.token_hex(6)}")
    os.rename(out, aside)
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(aside, out)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def write_json(path: str | os.PathLike, value) -> None:
    """`value` as JSON in `path`, whole or not at all."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(value), encoding="utf-8")


class _NamedBuffer(io.BytesIO):
    """A file in memory that Keras takes where it wants a `.weights.h5` path (it checks the name's ending)."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def __str__(self) -> str:
        return self.name


def save_weights(model, path: str | os.PathLike) -> None:
    """`model.save_weights(path)` (a `.weights.h5`), whole or not at all. HDF5 writes into memory: HDF5 2.0
    crashes the process (SIGSEGV) when the disk refuses one of its writes, so the bytes go to disk from
    Python, where a full disk is an OSError."""
    buffer = _NamedBuffer(Path(path).name)
    model.save_weights(buffer)
    with atomic_path(path) as temporary:
        temporary.write_bytes(buffer.getvalue())
