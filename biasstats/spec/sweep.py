"""``[sweep]``: one spec, one analysis per value of its variables.

::

    [sweep]
    llm = "runs/*/"                 # a glob relative to the spec: each match's name
    suite = ["race", "gender"]      # or a list of values (strings or integers)
    [data]
    source = "runs/{llm}/{suite}.csv"

expands into the product of the variables' values (here: every folder of ``runs/`` × 2),
each an analysis of its own named ``<analysis>--llm-<value>--suite-<value>`` (the value with
every character other than a letter, digit, ``-`` or ``_`` written as ``-``), titled
``<title> (llm = gpt4, suite = race)`` unless the title names a variable itself.

The expansion is data only: ``{name}`` in ``[data] source`` (also a part's), ``[analysis]
title`` and ``description`` is replaced by the value, nothing else is read as a template
(``path_pattern`` keeps its own ``{column}`` fields), and nothing is evaluated. Everything is
checked when the spec loads, one :class:`SpecError` line naming the key: a variable a path
names that ``[sweep]`` does not declare, one no source uses, a glob that matches nothing,
more analyses than :data:`biasstats.limits.MAX_SWEEP`, two values that give one analysis
name. A glob only lists names (``glob``), it opens nothing.
"""

from __future__ import annotations

import copy
import glob
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from biasstats.errors import SpecError
from biasstats.limits import MAX_SWEEP, MAX_SWEEP_VARIABLES
from biasstats.spec.load import Spec, SweepMember, load_spec, read_spec_file, validate_spec
from biasstats.spec.schema import is_safe_name, toml_value

__all__ = ["Sweep", "load_specs", "load_member", "read_sweep", "member_name"]

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")  # {name}; other braces are left alone
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_COMPRESSED = (".gz", ".zst")
_EXAMPLE = 'llm = "runs/*/" or llm = ["a", "b"]'


@dataclass(frozen=True)
class Sweep:
    """A spec's ``[sweep]``: the analysis name its members share (``name``) and each
    variable's values, in the order declared."""

    path: Path
    name: str
    variables: dict[str, tuple[str, ...]]

    def members(self) -> list[tuple[tuple[str, str], ...]]:
        """Every combination of values, the first variable varying slowest."""
        names = list(self.variables)
        return [tuple(zip(names, combo, strict=True))
                for combo in itertools.product(*self.variables.values())]


def member_name(sweep: str, values: tuple[tuple[str, str], ...]) -> str:
    """``<sweep>--<var>-<value>--...``: a folder name (letters, digits, ``-``, ``_``)."""
    return "--".join([sweep, *(f"{k}-{_slug(v)}" for k, v in values)])


def _slug(value: str) -> str:
    return _UNSAFE.sub("-", value).strip("-")


def load_specs(path: str | Path) -> list[Spec]:
    """The analyses of the spec file ``path``: itself, or one per member of its ``[sweep]``
    (in :meth:`Sweep.members` order), each validated."""
    path = Path(path)
    text, raw = read_spec_file(path)
    if "sweep" not in raw:
        return [load_spec(path)]
    sweep = read_sweep(path, raw)
    return [_member(sweep, text, raw, values) for values in sweep.members()]


def load_member(path: str | Path, values) -> Spec:
    """The member of the sweep spec ``path`` with these variable ``values`` ((name, value)
    pairs): what a worker process loads from a spec path and a member."""
    path = Path(path)
    text, raw = read_spec_file(path)
    if "sweep" not in raw:
        raise SpecError(f"{path}: [sweep]: expected a sweep spec (it has no [sweep] table)")
    sweep = read_sweep(path, raw)
    values = tuple((str(k), str(v)) for k, v in values)
    if values not in set(sweep.members()):
        shown = ", ".join(f"{k} = {v!r}" for k, v in values)
        raise SpecError(f"{path}: [sweep]: no member has {shown} (the spec or its files "
                        "changed since it was expanded)")
    return _member(sweep, text, raw, values)


def _member(sweep: Sweep, text: str, raw: dict, values) -> Spec:
    got = dict(values)
    member = copy.deepcopy({k: v for k, v in raw.items() if k != "sweep"})
    meta = member.setdefault("analysis", {})
    title = meta.get("title")
    meta["name"] = member_name(sweep.name, values)
    for key in ("title", "description"):
        if isinstance(meta.get(key), str):
            meta[key] = _FIELD.sub(lambda m: got[m.group(1)], meta[key])
    if not (isinstance(title, str) and _FIELD.search(title)):
        shown = ", ".join(f"{k} = {v}" for k, v in values)
        meta["title"] = f"{title if isinstance(title, str) else sweep.name} ({shown})"
    for data in _data_tables(member):
        if "source" in data:
            src = data["source"]
            data["source"] = ([_FIELD.sub(lambda m: got[m.group(1)], s) if isinstance(s, str)
                               else s for s in src] if isinstance(src, list)
                              else _FIELD.sub(lambda m: got[m.group(1)], src)
                              if isinstance(src, str) else src)
    return validate_spec(sweep.path, text, member, SweepMember(sweep.name, tuple(values)))


def _data_tables(raw: dict) -> list[dict]:
    """The ``[data]`` table and each part's (``[parts.<name>.data]``)."""
    out = [raw["data"]] if isinstance(raw.get("data"), dict) else []
    parts = raw.get("parts")
    if isinstance(parts, dict):
        out += [p["data"] for p in parts.values()
                if isinstance(p, dict) and isinstance(p.get("data"), dict)]
    return out


def _templates(raw: dict) -> list[tuple[str, str]]:
    """(key, text) of every string that may name sweep variables."""
    out = []
    meta = raw.get("analysis")
    if isinstance(meta, dict):
        out += [(f"[analysis] {k}", meta[k]) for k in ("title", "description")
                if isinstance(meta.get(k), str)]
    parts = raw.get("parts") if isinstance(raw.get("parts"), dict) else {}
    tables = ([("[data]", raw["data"])] if isinstance(raw.get("data"), dict) else []) + [
        (f"[parts.{n}.data]", p["data"]) for n, p in parts.items()
        if isinstance(p, dict) and isinstance(p.get("data"), dict)]
    for where, data in tables:
        src = data.get("source")
        if isinstance(src, str):
            out.append((f"{where} source", src))
        elif isinstance(src, list):
            out += [(f"{where} source[{i}]", s) for i, s in enumerate(src) if isinstance(s, str)]
    return out


def read_sweep(path: Path, raw: dict) -> Sweep:
    """The ``[sweep]`` of the spec ``path`` (TOML tables ``raw``), checked: see the module
    doc for what is refused."""
    table = raw["sweep"]
    if not isinstance(table, dict):
        raise SpecError(f"{path}: [sweep]: expected a table of variables ({_EXAMPLE}), got "
                        f"{toml_value(table, items=False)}")
    if not table:
        raise SpecError(f"{path}: [sweep]: expected at least one variable ({_EXAMPLE})")
    if len(table) > MAX_SWEEP_VARIABLES:
        raise SpecError(f"{path}: [sweep]: {len(table)} variables, above the limit of "
                        f"{MAX_SWEEP_VARIABLES}")
    meta = raw.get("analysis") if isinstance(raw.get("analysis"), dict) else {}
    name = meta.get("name") if isinstance(meta.get("name"), str) else path.stem
    if not is_safe_name(name):
        raise SpecError(f"{path}: the sweep's name {name!r} (its analyses are named "
                        f"{name}--<variable>-<value>) must be letters, digits, '-' or '_'; "
                        "rename the file or set [analysis] name")
    checks = raw.get("checks") if isinstance(raw.get("checks"), dict) else {}
    if checks.get("sensitivity"):
        raise SpecError(f"{path}: [checks] sensitivity: not available in a sweep yet (each "
                        "analysis would need its own sensitivity spec); sweep without it")
    variables: dict[str, tuple[str, ...]] = {}
    for var, given in table.items():
        if not _VARIABLE.fullmatch(var):
            raise SpecError(f"{path}: [sweep] {var!r}: a variable name is letters, digits and "
                            "'_', not starting with a digit")
        values = (_glob_values(path, var, given) if isinstance(given, str)
                  else _list_values(path, var, given))
        _distinct(path, name, var, values)
        variables[var] = values
    total = 1
    for values in variables.values():
        total *= len(values)
    if total > MAX_SWEEP:
        sizes = " × ".join(f"{k} ({len(v)} values)" for k, v in variables.items())
        raise SpecError(f"{path}: [sweep]: {sizes} is {total:,} analyses, above the limit of "
                        f"{MAX_SWEEP:,}")
    _check_templates(path, raw, variables)
    return Sweep(path=path, name=name, variables=variables)


def _list_values(path: Path, var: str, given) -> tuple[str, ...]:
    if not isinstance(given, list):
        raise SpecError(f"{path}: [sweep] {var}: expected a glob (a string) or a list of "
                        f"values, got {toml_value(given, items=False)}")
    if not given:
        raise SpecError(f"{path}: [sweep] {var}: expected at least one value, got none")
    if len(given) > MAX_SWEEP:
        raise SpecError(f"{path}: [sweep] {var}: {len(given):,} values, above the limit of "
                        f"{MAX_SWEEP:,} analyses")
    out = []
    for i, v in enumerate(given):
        if isinstance(v, bool) or not isinstance(v, str | int) or not _slug(str(v)):
            raise SpecError(f"{path}: [sweep] {var}[{i}]: expected a string with a letter or "
                            f"digit, or an integer, got {toml_value(v, items=False)}")
        out.append(str(v))
    return tuple(out)


def _glob_values(path: Path, var: str, pattern: str) -> tuple[str, ...]:
    """The name of each match of ``pattern`` (relative to the spec's folder; a trailing
    ``/`` matches folders only), sorted: a folder's name, a file's without its extension
    (and a ``.gz`` / ``.zst`` before it)."""
    where = f'{path}: [sweep] {var} = "{pattern}"'
    if not pattern.strip():
        raise SpecError(f"{where}: expected a glob or a list of values")
    root = path.parent if str(path.parent) else Path(".")
    names = []
    for m in glob.iglob(os.path.expanduser(pattern), root_dir=root, recursive=True):
        if len(names) >= MAX_SWEEP:
            raise SpecError(f"{where}: the glob matches more than {MAX_SWEEP:,} entries, the "
                            "limit of analyses in a sweep")
        names.append(m)
    if not names:
        raise SpecError(f"{where}: the glob matches nothing (relative to {root}/)")
    out = []
    for m in sorted(names):
        p = Path(m.rstrip("/"))
        full = p if p.is_absolute() else root / p
        value = p.name
        if not full.is_dir():
            if any(value.endswith(s) for s in _COMPRESSED):
                value = Path(value).stem
            value = Path(value).stem or value
        if not _slug(value):
            raise SpecError(f"{where}: the match {m!r} gives no name (a value needs a letter "
                            "or digit)")
        out.append(value)
    return tuple(out)


def _distinct(path: Path, sweep: str, var: str, values: tuple[str, ...]) -> None:
    """Two values that name one folder (the same slug, or slugs differing in case only: a
    case-insensitive file system) are refused."""
    seen: dict[str, str] = {}
    for v in values:
        key = _slug(v).casefold()
        if key in seen:
            raise SpecError(f"{path}: [sweep] {var}: the values {seen[key]!r} and {v!r} give "
                            f"the same analysis name {sweep}--{var}-{_slug(seen[key])}")
        seen[key] = v


def _check_templates(path: Path, raw: dict, variables: dict) -> None:
    used: set[str] = set()
    declared = ", ".join(variables)
    for where, text in _templates(raw):
        for m in _FIELD.finditer(text):
            if m.group(1) not in variables:
                raise SpecError(f"{path}: {where}: unknown variable {{{m.group(1)}}} (the "
                                f"[sweep] variables: {declared})")
            if "source" in where:
                used.add(m.group(1))
    for var in variables:
        if var not in used:
            raise SpecError(f"{path}: [sweep] {var}: used in no [data] source (each analysis "
                            f"of a sweep reads its own data: write {{{var}}} in a path, e.g. "
                            f'source = "runs/{{{var}}}/trials.csv")')
