"""Which files a spec's ``[data] source`` names, and the columns their paths carry.

``source`` is a file path, a glob (``"runs/*/*.csv"``, ``**`` for any depth), a folder (every
data file below it), or a list of those; relative paths are relative to the spec's folder.
``path_pattern`` (e.g. ``"{llm}/{test}.csv"``) is matched against each file's path relative to
its entry's fixed prefix (the folder part before the first wildcard; a folder entry itself;
a plain file's own folder), and each ``{placeholder}`` becomes a column.

For an evaluation-log format, a folder or glob yields its logs only: Inspect ``.eval`` and
``.json`` logs (not the ``logs.json`` listing), lm-eval ``samples_*.jsonl`` files (not
``results_*.json``, which the samples reader consults for the model name).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from biasstats.errors import DataError, SpecError
from biasstats.ingest.read import COMPRESSED, EXTENSIONS, SourceRef
from biasstats.limits import input_kind
from biasstats.spec import Spec

_WILDCARD = re.compile(r"[*?\[]")


_LOG_FILES = {
    # format: (which files of a folder or glob it reads, what the error says it expected)
    "inspect_eval": (re.compile(r"(?!logs\.json$).+\.(eval|json)", re.IGNORECASE),
                     "Inspect AI .eval or .json logs"),
    "lm_eval_samples": (re.compile(r"samples_.+\.jsonl?", re.IGNORECASE),
                        "lm-evaluation-harness samples_*.jsonl files"),
}


def _is_log_file(p: Path, fmt: str | None) -> bool:
    """For an evaluation-log format, whether a file found in a folder or by a glob is one of
    its logs (an Inspect folder's logs.json listing and lm-eval's results_*.json are not)."""
    if fmt not in _LOG_FILES:
        return True
    name = p.name
    for ext in COMPRESSED:
        name = name.removesuffix(ext).removesuffix(ext.upper())
    return _LOG_FILES[fmt][0].fullmatch(name) is not None


def _looks_like_data(name: str, fmt: str | None) -> bool:
    """Whether a file name found in a folder is one the source reads (by its extension, or
    any name for a declared format; an evaluation-log format's own file names)."""
    if name.startswith("."):
        return False
    if fmt is not None:
        return _is_log_file(Path(name), fmt)
    suffixes = [s.lower() for s in Path(name).suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1].lstrip(".") in EXTENSIONS


@dataclass
class _Listing:
    """The files of a source as they are listed: each file's path, real path and
    (device, inode) (the same file named twice is read once), with the ``max_files`` budget
    counted as they come, before any file is read."""

    spec: Spec
    limit: int
    seen: set[tuple[int, int]] = field(default_factory=set)
    count: int = 0

    def take(self, where: str, path: Path, kind: str, st) -> bool:
        """Account for one regular file; False if it was listed already. Anything else
        (a FIFO, socket, device, pseudo-file, broken link) is refused by its kind."""
        if kind != "file":
            raise SpecError(f"{where}: {path} is {kind}, not a data file")
        if (st.st_dev, st.st_ino) in self.seen:
            return False
        self.seen.add((st.st_dev, st.st_ino))
        self.count += 1
        if self.count > self.limit:
            raise SpecError(f"{where}: the source names more than {self.limit:,} files "
                            "([data] max_files); raise the limit if this is expected")
        return True


def _expand(listing: _Listing, entry: str) -> tuple[list[tuple[Path, str]], Path]:
    """((file, real path) in order, fixed prefix) of one source entry; an entry naming
    nothing, a file that is not a regular file, or one file more than ``max_files`` is an
    error."""
    spec = listing.spec
    where = f'{spec.path}: [data] source = "{entry}"'
    parts = Path(entry).expanduser().parts
    wild = next((i for i, part in enumerate(parts) if _WILDCARD.search(part)), None)
    found: list[tuple[Path, str]] = []
    matched = []  # every data file the entry names, those listed before by another included

    def add(f: Path, kind: str | None = None, st=None) -> None:
        real = os.path.realpath(f)
        if kind is None:
            kind, st = input_kind(f, real)
        if kind == "folder":
            return
        matched.append(f)
        if listing.take(where, f, kind, st):
            found.append((f, real))

    if wild is None:
        path = spec.relative(entry)
        kind, st = input_kind(path)
        if kind == "missing":
            raise SpecError(f"{where}: file not found ({path})")
        if kind == "folder":
            for f in path.rglob("*"):
                if _looks_like_data(f.name, spec.data.format):
                    add(f)
            if not matched:
                expected = (_LOG_FILES[spec.data.format][1] if spec.data.format in _LOG_FILES
                            else ".csv, .tsv, .jsonl, .json, .parquet or .eval, optionally .gz or .zst")
                raise SpecError(f"{where}: the folder {path} holds no data files (expected {expected})")
            return sorted(found), path
        add(path, kind, st)
        return found, path.parent
    base = spec.relative(Path(*parts[:wild])) if wild else spec.path.parent
    rest = "/".join(parts[wild:])
    try:
        for f in base.glob(rest):
            if not f.name.startswith(".") and _is_log_file(f, spec.data.format):
                add(f)
    except ValueError as e:
        raise SpecError(f"{where}: not a valid glob ({e})") from None
    if not matched:
        raise SpecError(f"{where}: no file matches (searched {rest!r} in {base})")
    return sorted(found), base


def compile_path_pattern(pattern: str) -> re.Pattern:
    """``"{llm}/{test}.csv"`` -> a regex with one named group per placeholder (no ``/``)."""
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        out.append(f"(?P<{m[1]}>[^/]+?)")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out))


def _label(spec_dir: str, path: Path, real: str) -> str:
    """``source_file``: the path relative to the spec's folder when inside it."""
    prefix = spec_dir.rstrip(os.sep) + os.sep
    if real.startswith(prefix):
        return Path(real[len(prefix):]).as_posix()
    return str(path)


def user_sources(spec: Spec) -> tuple[list[SourceRef], str]:
    """The files of a (not registered) source, in order, and a label for the ledger."""
    src = spec.data.source
    entries = [src] if isinstance(src, str) else list(src)
    pattern = spec.data.path_pattern
    regex = compile_path_pattern(pattern) if pattern else None
    listing = _Listing(spec, spec.data.max_files)
    spec_dir = os.path.realpath(spec.path.parent)
    refs = []
    for entry in entries:
        files, base = _expand(listing, entry)
        for f, real in files:
            columns: dict[str, str] = {}
            if regex is not None:
                rel = f.relative_to(base).as_posix()
                m = regex.fullmatch(rel)
                if m is None:
                    raise DataError(
                        f'{f}: path does not match [data] path_pattern = "{pattern}" '
                        f"(its path below {base} is '{rel}')"
                    )
                columns = m.groupdict()
            refs.append(SourceRef(f, _label(spec_dir, f, real), columns))
    label = src if isinstance(src, str) else ", ".join(src)
    return refs, label
