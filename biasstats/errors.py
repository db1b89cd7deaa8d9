"""User-facing errors.

Every mistake a user can make (a bad spec, a missing column, an unavailable dataset) raises a
:class:`BiasstatsError` whose message is ONE line naming the file, the key or column, and what
was expected. The CLI prints it as ``error: <message>`` and exits with code 2, no traceback.
Anything else that escapes is a bug in biasstats and keeps its traceback.
"""

from __future__ import annotations


class BiasstatsError(Exception):
    """A user error with a one-line, actionable message."""

    exit_code = 2

    def __init__(self, message: str):
        # Newlines would break the one-line contract (and CLI/grep friendliness).
        super().__init__(" ".join(str(message).split()))


class SpecError(BiasstatsError):
    """The analysis spec (TOML) is malformed or inconsistent with the data."""


class DataError(BiasstatsError):
    """An input data file cannot be read or does not have the expected shape."""


class DatasetUnavailableError(BiasstatsError):
    """A registered dataset is neither mirrored locally nor downloadable."""


class ChecksumError(BiasstatsError):
    """A file's checksum does not match the registry: it is refused, never used."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of ``exc``'s message, else the exception's type name
    (for quoting a library error inside a one-line :class:`BiasstatsError`)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
