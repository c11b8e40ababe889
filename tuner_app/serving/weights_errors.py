"""Why a Keras weights file did not load into the model its configuration builds, in one line.

h5py's reasons (a truncated or damaged file) are one line already; Keras's, for weights of another model,
run to dozens of lines: the variable's values, then every object it could not load.
"""

from __future__ import annotations

import re
from pathlib import Path

_NOT_LOADED = re.compile(r"A total of (?P<count>\d+) objects could not be loaded\. Example error message for object "
                         r"<(?P<object>[^>]*)>:\s*(?P<reason>[^\n]*)")
_SHAPES = re.compile(r"variable\.shape=(\([^)]*\)), Received: value\.shape=(\([^)]*\))")
_LAYER_NAME = re.compile(r"name=([\w.-]+)")
_MAX_REASON = 200


def unloadable(path: Path, error: Exception, remedy: str) -> str:
    """The one line for weights at `path` that `error` kept out of the model."""
    return f"{path}: cannot load the weights (truncated, damaged or another model's: {reason(error)}); {remedy}"


def reason(error: Exception) -> str:
    """The gist of h5py's or Keras's error, one line, without the variables' values."""
    text = str(error)
    found = _NOT_LOADED.search(text)
    if not found:
        return _shortened(" ".join(text.split()).strip("'") or type(error).__name__)  # a KeyError's quotes
    shapes = _SHAPES.search(text)
    detail = (f"the file has shape {shapes[2]} where this model has {shapes[1]}" if shapes
              else found["reason"].split(" Target variable:")[0])
    return _shortened(f"{found['count']} object(s) do not fit, first {_object_name(found['object'])}: {detail}")


def _object_name(description: str) -> str:
    named = _LAYER_NAME.search(description)  # "Dense name=b03_dense, built=True", else "....Adam object at 0x..."
    return named[1] if named else (description.split() or ["?"])[0].rsplit(".", 1)[-1]


def _shortened(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON - 3].rstrip() + "..."
