"""JSON text from a source, parsed with a nesting limit checked first.

Python's ``json`` parser recurses once per nesting level: a record nested 100,000 deep ends
in a RecursionError traceback. :func:`loads` measures the nesting in linear time without
recursion (strings removed by one regex pass, then a running count of brackets) and refuses
anything deeper than :data:`biasstats.limits.MAX_JSON_DEPTH` with one line naming the file.
"""

from __future__ import annotations

import json
import re

import numpy as np

from biasstats.errors import DataError
from biasstats.limits import MAX_JSON_DEPTH

__all__ = ["check_depth", "json_depth", "loads"]

_STRING = re.compile(rb'"(?:[^"\\\n]|\\.)*"')
_OPEN = np.frombuffer(b"[{", dtype=np.uint8)
_CLOSE = np.frombuffer(b"]}", dtype=np.uint8)


def json_depth(data: str | bytes, lines: bool = False) -> int:
    """The deepest nesting of objects and arrays in a JSON text (0 for a scalar);
    ``lines=True``: of any one line of a JSON Lines text (each line counted from 0, so an
    unbalanced line does not carry over)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if b"[" not in raw and b"{" not in raw:
        return 0
    stripped = _STRING.sub(b"", raw) if b'"' in raw else raw
    arr = np.frombuffer(stripped, dtype=np.uint8)
    step = np.isin(arr, _OPEN).astype(np.int32) - np.isin(arr, _CLOSE).astype(np.int32)
    level = np.cumsum(step)
    if lines:
        newline = arr == 10
        base = np.concatenate([[0], level[newline]])  # the level where each line starts
        level = level - base[np.cumsum(newline) - newline]
    return int(level.max(initial=0))


def check_depth(data: str | bytes, where: str, depth: int = MAX_JSON_DEPTH,
                lines: bool = False) -> None:
    """A one-line DataError naming ``where`` when the text nests deeper than ``depth``
    (``lines=True``: any one line of a JSON Lines text)."""
    opens = data.count("[") + data.count("{") if isinstance(data, str) else \
        data.count(b"[") + data.count(b"{")
    if opens <= depth:  # cannot nest deeper than it opens (most small records)
        return
    if (d := json_depth(data, lines)) > depth:
        raise DataError(f"{where}: JSON nested {d} levels deep, above the limit of {depth}")


def loads(data: str | bytes, where: str, depth: int = MAX_JSON_DEPTH):
    """``json.loads(data)`` after :func:`check_depth`. JSON syntax errors are raised as
    ``json.JSONDecodeError`` (the callers word them)."""
    check_depth(data, where, depth)
    try:
        return json.loads(data)
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise DataError(f"{where}: JSON nested too deeply to read") from None
