"""User-facing errors: the CLI prints their message on one line, without a traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class TunerAppError(Exception):
    """A problem the user can fix: a bad path, file, key or configuration."""


class InfeasibleConfig(TunerAppError):
    """A configuration whose layers do not fit the input (e.g. a kernel larger than the feature map)."""


class StorageError(TunerAppError, OSError):
    """A write the disk refused (full, over quota, file too large, read-only, no permission). Still an
    OSError, so code that handles those handles it too."""


def storage_error(path, cause: str, remedy: str) -> StorageError:
    """The one line for a failed write of `path`: why (`cause`, the OS's words) and what to do (`remedy`)."""
    return StorageError(f"cannot write {path}: {cause}; {remedy}")


def os_cause(error: OSError) -> str:
    """The OS's words for a failed write ("No space left on device"), without the errno and file name."""
    return error.strerror or str(error) or type(error).__name__


@contextlib.contextmanager
def storage_errors(path, remedy: str) -> Iterator[None]:
    """An OSError inside the block (a write of `path` failing) becomes `storage_error(path, ...)`."""
    try:
        yield
    except StorageError:
        raise  # already names its file
    except OSError as error:
        raise storage_error(path, os_cause(error), remedy) from None
