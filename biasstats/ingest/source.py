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

import re
from pathlib import Path

from biasstats.errors import DataError, SpecError
from biasstats.ingest.read import COMPRESSED, EXTENSIONS, SourceRef
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


def _is_data_file(p: Path, fmt: str | None) -> bool:
    if not p.is_file() or p.name.startswith("."):
        return False
    if fmt is not None:
        return _is_log_file(p, fmt)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1].lstrip(".") in EXTENSIONS


def _expand(spec: Spec, entry: str) -> tuple[list[Path], Path]:
    """(files, fixed prefix) of one source entry; an entry naming nothing is an error."""
    where = f'{spec.path}: [data] source = "{entry}"'
    parts = Path(entry).expanduser().parts
    wild = next((i for i, part in enumerate(parts) if _WILDCARD.search(part)), None)
    if wild is None:
        path = spec.relative(entry)
        if path.is_dir():
            files = sorted(f for f in path.rglob("*") if _is_data_file(f, spec.data.format))
            if not files:
                expected = (_LOG_FILES[spec.data.format][1] if spec.data.format in _LOG_FILES
                            else ".csv, .tsv, .jsonl, .json, .parquet or .eval, optionally .gz or .zst")
                raise SpecError(f"{where}: the folder {path} holds no data files (expected {expected})")
            return files, path
        if not path.is_file():
            raise SpecError(f"{where}: file not found ({path})")
        return [path], path.parent
    base = spec.relative(Path(*parts[:wild])) if wild else spec.path.parent
    rest = "/".join(parts[wild:])
    try:
        files = sorted(f for f in base.glob(rest) if f.is_file() and not f.name.startswith(".")
                       and _is_log_file(f, spec.data.format))
    except ValueError as e:
        raise SpecError(f"{where}: not a valid glob ({e})") from None
    if not files:
        raise SpecError(f"{where}: no file matches (searched {rest!r} in {base})")
    return files, base


def compile_path_pattern(pattern: str) -> re.Pattern:
    """``"{llm}/{test}.csv"`` -> a regex with one named group per placeholder (no ``/``)."""
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)\}", pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        out.append(f"(?P<{m[1]}>[^/]+?)")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out))


def _label(spec: Spec, path: Path) -> str:
    """``source_file``: the path relative to the spec's folder when inside it."""
    try:
        return path.resolve().relative_to(spec.path.parent.resolve()).as_posix()
    except ValueError:
        return str(path)


def user_sources(spec: Spec) -> tuple[list[SourceRef], str]:
    """The files of a (not registered) source, in order, and a label for the ledger."""
    src = spec.data.source
    entries = [src] if isinstance(src, str) else list(src)
    pattern = spec.data.path_pattern
    regex = compile_path_pattern(pattern) if pattern else None
    refs, seen = [], set()
    for entry in entries:
        files, base = _expand(spec, entry)
        for f in files:
            if f.resolve() in seen:
                continue
            seen.add(f.resolve())
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
            refs.append(SourceRef(f, _label(spec, f), columns))
    label = src if isinstance(src, str) else ", ".join(src)
    return refs, label
