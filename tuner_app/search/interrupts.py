"""Stopping a search cleanly: Ctrl-C (SIGINT) and `kill` (SIGTERM) end it with the running trial marked
KILLED and every finished one kept."""

from __future__ import annotations

import contextlib
import signal
import threading

# Set by SIGINT/SIGTERM during a search. The handler also raises KeyboardInterrupt at once, but Python
# drops an exception raised inside a weakref callback or __del__, so safe points check this flag too.
stop_requested = threading.Event()


def request_stop(signum, frame):
    """Signal handler for the search: stop now (and at the next safe point, should this be swallowed)."""
    stop_requested.set()
    raise KeyboardInterrupt


def note_stop(signum, frame):
    """Signal handler while saving state: only remember the request, act at the next safe point."""
    stop_requested.set()


def check_stop() -> None:
    """Raise KeyboardInterrupt if a stop was requested (a safe point of the search loop)."""
    if stop_requested.is_set():
        raise KeyboardInterrupt


@contextlib.contextmanager
def signals_to(handler):
    """Route SIGINT and SIGTERM (`kill`) to `handler` for the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)
