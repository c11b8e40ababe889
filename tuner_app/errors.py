"""User-facing errors: the CLI prints their message on one line, without a traceback."""


class TunerAppError(Exception):
    """A problem the user can fix: a bad path, file, key or configuration."""
