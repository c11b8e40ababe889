"""A space file's YAML, read within bounds: its size is checked before it is parsed, and its nesting, its
count of values (aliases expanded, as every consumer would walk them) and its integers as it is composed, so
that no file (a 'billion laughs' of aliases, a deep nest, a megabyte of digits) takes the machine down.
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from tuner_app.errors import TunerAppError

MAX_BYTES = 1 << 20  # 1 MiB; the largest shipped space is under 3 KB
MAX_VALUES = 20_000  # scalars, lists and mappings, aliases expanded; a shipped space has a few hundred (and
# pure-Python PyYAML composes some 25,000 a second)
MAX_DEPTH = 64  # nested lists and mappings; a space needs 4
MAX_DIGITS = 100  # of an integer (Python refuses to read one of over 4,300 digits, with a traceback)


class _Exceeded(yaml.YAMLError):
    """A bound of this module, crossed where the message says."""


class BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses, while composing, a document beyond MAX_DEPTH, MAX_VALUES or MAX_DIGITS,
    and an alias inside its own anchor (a structure that contains itself)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._values, self._depth = 0, 0
        self._expanded: dict[int, int] = {}  # id of an anchored node -> its values, aliases expanded
        self._open: set[str] = set()  # anchors whose node is being composed

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            anchor = self.peek_event().anchor
            if anchor in self._open:
                raise self._exceeded(f"alias *{anchor} is inside its own anchor (a list or mapping holding itself)")
            node = super().compose_node(parent, index)
            self._count(self._expanded.get(id(node), 1))
            return node
        return self._compose_counted(parent, index)

    def _compose_counted(self, parent, index):
        anchor, before = self.peek_event().anchor, self._values
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise self._exceeded(f"nested deeper than {MAX_DEPTH} levels; a search space needs 4")
        self._count(1)
        if anchor is None:
            node = super().compose_node(parent, index)
        else:
            self._open.add(anchor)
            node = super().compose_node(parent, index)
            self._open.discard(anchor)
            self._expanded[id(node)] = self._values - before
        self._depth -= 1
        return node

    def _count(self, values: int) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            raise self._exceeded(f"more than {MAX_VALUES:,} values, each alias counted as the values it repeats; "
                                 "a search space holds a few hundred")

    def _exceeded(self, problem: str) -> _Exceeded:
        mark = self.peek_event().start_mark
        return _Exceeded(f"line {mark.line + 1}: {problem}")

    def construct_yaml_int(self, node):
        if len(node.value) > MAX_DIGITS:
            raise _Exceeded(f"line {node.start_mark.line + 1}: an integer of {len(node.value):,} characters; "
                            f"at most {MAX_DIGITS}")
        return super().construct_yaml_int(node)


BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)


def read(path: str | os.PathLike) -> Any:
    """The YAML document of a space file; TunerAppError naming the file if it cannot be read, is larger than
    MAX_BYTES, is not UTF-8, is malformed or crosses a bound of BoundedLoader."""
    name = os.path.basename(os.fspath(path))
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_BYTES + 1)  # never more, whatever the file (/dev/zero included)
    except OSError as err:
        raise TunerAppError(f"{path}: cannot read search space ({err.strerror})") from None
    if len(data) > MAX_BYTES:
        raise TunerAppError(f"{name}: larger than {MAX_BYTES // 1024:,} KiB, the most a search space may be; "
                            "is it the right file?")
    try:
        return _parsed(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise TunerAppError(f"{name}: not a YAML text file (byte {err.start} is not UTF-8)") from None
    except _Exceeded as err:
        raise TunerAppError(f"{name}: {err}") from None
    except yaml.YAMLError as err:
        raise TunerAppError(f"{name}: malformed YAML{_yaml_location(err)}") from None


def _parsed(text: str) -> Any:
    loader = BoundedLoader(text)  # what yaml.safe_load does, with this module's SafeLoader
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _yaml_location(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    if mark is None:  # e.g. a control character, which PyYAML reports on two lines
        return ": " + " ".join(str(err).split()).replace(' in "<unicode string>"', "")
    return f" at line {mark.line + 1}, column {mark.column + 1}: {getattr(err, 'problem', None) or ''}"
