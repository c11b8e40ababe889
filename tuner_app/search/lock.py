"""One search per project directory: a lock file in it, flock-ed while the search runs, naming the pid and host
of its holder. The kernel drops a flock when its process dies, even by SIGKILL, so a lock file left behind is
known to be stale and is taken over. A distributed search's workers take none: the chief's lock covers them."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tuner_app.errors import TunerAppError, storage_errors

LOCK_FILE = "tuner_app.lock"
log = logging.getLogger(__name__)


@contextlib.contextmanager
def project_lock(project_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock of `project_dir` for the block; a TunerAppError naming the holder if a search holds it."""
    path = Path(project_dir) / LOCK_FILE
    with storage_errors(path, "--runs-dir"):
        descriptor = _locked(path)
    try:
        _take_over(path, descriptor)
    except BaseException:
        os.close(descriptor)  # the file stays: it is not this process's to remove
        raise
    try:
        yield path
    finally:
        _release(path, descriptor)


def _locked(path: Path) -> int:
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(descriptor)
            os.close(descriptor)
            raise TunerAppError(f"{path}: another search ({_who(holder)}) is running in this project; wait for "
                                "it to end, or use another --runs-dir (--fresh too is refused while it runs)") from None
        except OSError:
            os.close(descriptor)
            raise
        if _still_there(path, descriptor):
            return descriptor
        os.close(descriptor)  # its holder removed it as this process opened it: lock the file there now


def _still_there(path: Path, descriptor: int) -> bool:
    try:
        named, opened = os.stat(path), os.fstat(descriptor)
    except FileNotFoundError:
        return False
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _take_over(path: Path, descriptor: int) -> None:
    """Write this process into the lock, after saying whose stale lock it replaces."""
    earlier = _holder(descriptor)
    if earlier and earlier.get("host") != socket.gethostname():
        # Over a shared file system another machine's flock may not show here: it may still be running.
        raise TunerAppError(f"{path}: another search ({_who(earlier)}) may still be running in this project (this "
                            "machine cannot tell); delete this file once it has ended, or use another --runs-dir")
    if earlier:
        log.warning(f"{path}: taking over the lock of a search that ended without releasing it ({_who(earlier)})")
    mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode("utf-8")
    with storage_errors(path, "--runs-dir"):
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, mine, 0)


def _release(path: Path, descriptor: int) -> None:
    # Removed while still locked: a search waiting on this file then finds it gone and locks a new one.
    try:
        os.unlink(path)
    except OSError:  # a folder turned read-only: emptied, the file names no stale holder
        with contextlib.suppress(OSError):
            os.ftruncate(descriptor, 0)
    os.close(descriptor)


def _holder(descriptor: int) -> dict[str, Any]:
    return _parsed(os.pread(descriptor, 4096, 0))


def _parsed(content: bytes) -> dict[str, Any]:
    try:
        holder = json.loads(content.decode("utf-8"))
    except ValueError:  # empty: its holder is starting, or was killed before it wrote itself in
        return {}
    return holder if isinstance(holder, dict) else {}


def _who(holder: dict[str, Any]) -> str:
    return f"pid {holder.get('pid')} on host {holder.get('host')}" if holder else "starting, pid not yet written"
