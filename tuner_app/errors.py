"""User-facing errors: the CLI prints their message on one line, without a traceback."""


class TunerAppError(Exception):
    """A problem the user can fix: a bad path, file, key or configuration."""


class InfeasibleConfig(TunerAppError):
    """A configuration whose layers do not fit the input (e.g. a kernel larger than the feature map)."""
