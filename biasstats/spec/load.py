"""Read and validate an analysis spec: :func:`load_spec` is this stage's entry point."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from biasstats.errors import SpecError
from biasstats.limits import input_kind
from biasstats.spec.analysis import AnalysisSpec
from biasstats.spec.parts import PartSpec
from biasstats.spec.schema import AnalysisMeta, is_safe_name, toml_value


@dataclass(frozen=True)
class SweepMember:
    """Which member of a ``[sweep]`` a spec is: the sweep's name (the analysis name the
    members share as their prefix) and the value of each sweep variable, in the order the
    ``[sweep]`` table declares them (:mod:`biasstats.spec.sweep`)."""

    sweep: str
    values: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Spec:
    """A validated spec and where it came from (paths in it are relative to ``path``);
    ``member``: which member of the spec's ``[sweep]`` it is, or None."""

    path: Path
    content: AnalysisSpec
    text: str
    member: SweepMember | None = None

    @property
    def name(self) -> str:
        return self.content.analysis.name or self.path.stem

    @property
    def title(self) -> str:
        return self.content.analysis.title or self.name

    @property
    def data(self):
        return self.content.data

    @property
    def simulate(self):
        return self.content.simulate

    @property
    def model(self):
        return self.content.model

    @property
    def fit(self):
        return self.content.fit

    @property
    def parts(self):
        """The parts of a joint model (``[parts.<name>]``), or None."""
        return self.content.parts

    def part(self, name: str) -> Spec:
        """Part ``name`` of a joint spec as a spec of its own (its data, model and effects,
        this spec's [fit] and [checks]; named after the part), already validated with the
        whole spec."""
        p = self.parts[name]
        content = AnalysisSpec.model_construct(
            analysis=AnalysisMeta(name=name, title=f"{self.title}: part {name}",
                                  description=self.content.analysis.description),
            data=p.data, simulate=None, model=p.model, fit=self.content.fit,
            effects=p.effects, checks=self.content.checks, parts=None, joint=None)
        return Spec(path=self.path, content=content, text=self.text)

    def single(self, what: str) -> None:
        """A one-line SpecError when this is a joint spec: ``what`` needs one model."""
        if self.parts is not None:
            raise SpecError(f"{self.path}: [parts]: {what} takes a spec with one model; a "
                            "joint spec is ingested, fitted and reported part by part by "
                            f"'biasstats report {self.path}'")

    def relative(self, p: str | Path) -> Path:
        """A path from the spec, resolved against the spec's folder."""
        p = Path(p).expanduser()
        return p if p.is_absolute() else (self.path.parent / p)


def _loc(loc: tuple) -> str:
    """pydantic location ('data', 'filters', 0) → '[data] filters[0]'."""
    if not loc:
        return "(top level)"
    table, *rest = loc
    if table == "parts" and rest:  # ('parts', 'decision', 'model', 'formula')
        n = 2 if len(rest) > 1 and rest[1] in PartSpec.model_fields else 1
        table, rest = ".".join(map(str, (table, *rest[:n]))), rest[n:]
    key = "".join(f"[{p}]" if isinstance(p, int) else ("." if i else "") + str(p)
                  for i, p in enumerate(rest))
    return f"[{table}] {key}" if key else f"[{table}]"


def _model_at(loc: tuple) -> type[BaseModel]:
    """The pydantic model a location inside the spec points at (tables nested in dicts, e.g.
    ``[data.parse.answer]``, included)."""
    model, parts = AnalysisSpec, list(loc)
    while parts:
        ann = model.model_fields[parts.pop(0)].annotation
        args = [a for a in getattr(ann, "__args__", (ann,)) if a is not type(None)]
        if getattr(ann, "__origin__", None) is not dict:  # dict[str, X] | None
            ann = next((a for a in args if getattr(a, "__origin__", None) is dict), ann)
        if getattr(ann, "__origin__", None) is dict:
            ann, args = ann.__args__[1], [ann.__args__[1]]
            parts = parts[1:]  # skip the user's key
        model = next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), ann)
    return model


def describe_error(err: dict) -> str:
    """One line for one pydantic error of the analysis spec (its loc starts at the table)."""
    loc = tuple(err["loc"])
    kind = err["type"]
    where = _loc(loc)
    if kind == "extra_forbidden":
        parent = _loc(loc[:-1]) if len(loc) > 1 else "(top level)"
        model = _model_at(loc[:-1])
        allowed = ", ".join(model.model_fields)
        where_ = "at the top level" if parent == "(top level)" else f"in {parent}"
        return f"unknown key {loc[-1]!r} {where_} (expected one of: {allowed})"
    if kind == "value_error" and not loc:
        return err["msg"].removeprefix("Value error, ")
    if kind == "missing":
        return f"missing required key {where}"
    msg = err["msg"].removeprefix("Value error, ")
    if kind == "value_error" and msg.startswith("["):
        return msg  # the validator named the key itself (e.g. "[data] filters[0] '...': ...")
    got = err.get("input")
    if kind in _EXPECTED:
        return f"{where}: expected {_EXPECTED[kind]}, got {toml_value(got, items=False)}"
    if kind in _BOUND:
        limit = (err.get("ctx") or {}).get(_BOUND[kind][1])
        limit = f"{limit:g}" if isinstance(limit, float) else limit
        return f"{where}: expected {_BOUND[kind][0]} {limit}, got {toml_value(got, items=False)}"
    if kind == "too_short":
        n = (err.get("ctx") or {}).get("min_length")
        return f"{where}: expected at least {n} item{'s' if n != 1 else ''}, got none" if not \
            got else f"{where}: expected at least {n} items, got {len(got)}"
    if kind == "finite_number":
        return f"{where}: expected a finite number, got {toml_value(got, items=False)}"
    if kind == "literal_error":
        return f"{where}: expected {msg.removeprefix('Input should be ')}, got {toml_value(got, items=False)}"
    return f"{where}: {msg}"


_BOUND = {
    "less_than_equal": ("at most", "le"),
    "less_than": ("less than", "lt"),
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("more than", "gt"),
}

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
}


def _priority(err: dict) -> int:
    """Report typos in key names first: they usually explain the other errors."""
    return {"extra_forbidden": 0, "missing": 1}.get(err["type"], 2)


MAX_LINKED_SPECS = 50  # specs reached through [checks] sensitivity, transitively


def load_spec(path: str | Path, *, _seen: set[Path] | None = None) -> Spec:
    """Parse and validate a spec file; any problem is one :class:`SpecError` line.

    Every spec it names in ``[checks] sensitivity`` (and those name, transitively) is loaded
    and validated too, so that a spec reached that way is held to the same rules (no code,
    no file or network access from an expression) before anything runs. A spec with a
    ``[sweep]`` is several analyses: :func:`biasstats.spec.sweep.load_specs` expands it."""
    path = Path(path)
    text, raw = read_spec_file(path)
    if "sweep" in raw:
        raise SpecError(f"{path}: [sweep]: this spec is a sweep (one analysis per value); "
                        f"build its analyses with 'biasstats report {path}' (a command on one "
                        "analysis takes a spec without [sweep])")
    spec = validate_spec(path, text, raw)
    _load_linked(spec, set() if _seen is None else _seen)
    return spec


def read_spec_file(path: Path) -> tuple[str, dict]:
    """The text of the spec file ``path`` and its TOML tables (nothing but a regular file is
    opened: a FIFO would block)."""
    kind, _ = input_kind(path)
    if kind == "missing":
        raise SpecError(f"{path}: spec file not found")
    if kind != "file":
        shown = "a folder" if kind == "folder" else kind
        raise SpecError(f"{path}: is {shown}, not a spec file (expected a .toml file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: spec is not valid UTF-8 (byte at offset {e.start})") from None
    except OSError as e:
        raise SpecError(f"{path}: cannot read the spec ({e.strerror or e})") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{path}: invalid TOML: {e}") from None


def validate_spec(path: Path, text: str, raw: dict, member: SweepMember | None = None) -> Spec:
    """The :class:`Spec` of the TOML tables ``raw`` read from ``path`` (its ``[checks]
    sensitivity`` specs not loaded yet: :func:`load_spec` does)."""
    try:
        content = AnalysisSpec.model_validate(raw)
    except ValidationError as e:
        errors = sorted(e.errors(), key=_priority)
        first = errors[0]
        more = len(errors) - 1
        extra = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise SpecError(f"{path}: {describe_error(first)}{extra}") from None
    if content.analysis.name is None and not is_safe_name(path.stem):
        raise SpecError(f"{path}: the file name gives the analysis name {path.stem!r}, which "
                        "must be letters, digits, '-' or '_' (it names the report folder); "
                        "rename the file or set [analysis] name")
    return Spec(path=path, content=content, text=text, member=member)


def _load_linked(spec: Spec, seen: set[Path]) -> None:
    """Validate the ``[checks] sensitivity`` specs of ``spec`` (cycle-safe, bounded)."""
    seen.add(spec.path.resolve())
    for i, rel in enumerate(spec.content.checks.sensitivity):
        other = spec.relative(rel)
        if other.resolve() in seen:
            continue
        where = f'{spec.path}: [checks] sensitivity[{i}] = "{rel}"'
        if len(seen) >= MAX_LINKED_SPECS:
            raise SpecError(f"{where}: more than {MAX_LINKED_SPECS} specs are linked through "
                            "[checks] sensitivity")
        try:
            load_spec(other, _seen=seen)
        except SpecError as e:
            raise SpecError(f"{where}: {e}") from None

