"""User-facing errors: the CLI prints their message on one line, without a traceback."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator


class TunerAppError(Exception):
    """A problem the user can fix: a bad path, file, key or configuration."""


class InfeasibleConfig(TunerAppError):
    """A configuration whose layers do not fit the input (e.g. a kernel larger than the feature map)."""


class ConversionError(TunerAppError):
    """A model the TFLite converter refused (an op with no TFLite kernel, say); the caller names the trial."""


class StorageError(TunerAppError, OSError):
    """A write the disk refused (full, over quota, file too large, read-only, no permission). Still an
    OSError, so code that handles those handles it too."""


# The OS's words for a write refused for want of space, or of permission: each has its own remedy.
_NO_SPACE = tuple(os.strerror(code) for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG))
_UNWRITABLE = tuple(os.strerror(code) for code in (errno.EACCES, errno.EPERM, errno.EROFS))


def storage_error(path, cause: str, option: str, kept: str = "") -> StorageError:
    """The one line for a failed write of `path`: why (`cause`, the OS's words), what to do about it (free
    space, or make it writable, or choose another `option`) and, if given, what was `kept`."""
    fix = next((fix for fix, causes in (("free space or ", _NO_SPACE), ("make it writable or ", _UNWRITABLE))
                if any(words in cause for words in causes)), "")
    kept = f" ({kept})" if kept else ""
    return StorageError(f"cannot write {path}: {cause}; {fix}choose another {option}, then run the same command "
                        f"again{kept}")


def os_cause(error: OSError) -> str:
    """The OS's words for a failed write ("No space left on device"), without the errno and file name."""
    return error.strerror or str(error) or type(error).__name__


@contextlib.contextmanager
def storage_errors(path, option: str, kept: str = "") -> Iterator[None]:
    """An OSError inside the block (a write of `path` failing) becomes `storage_error(path, ...)`."""
    try:
        yield
    except StorageError:
        raise  # already names its file
    except OSError as error:
        raise storage_error(path, os_cause(error), option, kept) from None
