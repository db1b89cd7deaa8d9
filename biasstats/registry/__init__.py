"""Study registry: what a study module adds to the generic stages, declared as data.

Generic stages (ingest, model, fit, effects, checks, report, the pipeline) never import a
study's module; a study registers a :class:`Study` here and the stages ask the registry
(:func:`studies`, :func:`preset`, :func:`trial_aggregations`, :func:`congruence_effects`,
:func:`crosschecks`, :func:`report_outputs`, :func:`scale`, :func:`design`). The built-in
studies are imported on first use by :func:`load_builtin`; a third-party study registers
itself from an entry point in the ``biasstats.studies`` group (the entry point names a module
or a callable; loading it must call :func:`register_study`).

Adapters live here too. A spec's ``[data] adapter`` names only a *registered* adapter, never
Python code: ``tidy`` (the declared steps), a study's raw-text adapter
(:func:`register_study_adapter`), a user's function registered from their own Python with
:func:`register_adapter` (public as ``biasstats.register_adapter``), or an entry point in the
``biasstats.adapters`` group of an installed package (loaded when a spec that names it is
ingested). Listing the names reads package metadata only; nothing is imported.

A study declares, as data:

* ``congruence_adapters`` / ``congruence_presets``: the ``[data] adapter`` and
  ``[simulate] preset`` names whose outcome is the study's *congruence coding*. Only for these
  (:func:`biasstats.spec.outcome.outcome_study`) does a report use the study's words; every
  other analysis gets neutral words built from ``[effects] outcome_label`` and ``unit``. (Its
  raw-text adapters it registers itself, with :func:`register_study_adapter`, when its module
  is loaded.)
* ``vocabulary``: the study's words for its outcome (:class:`Vocabulary`): its verdict words,
  the nouns of its rate axes, its findings and methods sentences.
* ``presets``: ``[simulate] preset`` name → ``function(spec.simulate) -> SimulatedStudy``
  (the canonical table, the truth, and the input files the ledger records).
* ``trial_aggregations``: for ``[model] unit = "trial"``, functions ``(rows) -> DataFrame | None``
  that add per-trial columns (joined on the trial columns they return); ``None`` when the rows
  are not the study's.
* ``effects``: the congruence effects ``(fit, table, prob=, rope=) -> Effects``.
* ``crosschecks``: ``(table, effects) -> CrossCheck | None``: tables for the report.
* ``report_outputs``: ``(art, fit, ing, spec, effects)``: figures and tables for a congruence
  outcome (``art.figure`` / ``art.table``).
* ``scales``: extra effect scales (name → :class:`Scale`) the figures and ROPE understand.
* ``designs``: named covariate designs (e.g. the reduced design SBC runs on).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata

__all__ = [
    "ADAPTERS",
    "ADAPTER_ENTRY_POINTS",
    "STUDIES",
    "USER_ADAPTERS",
    "adapter_names",
    "code_adapter_message",
    "find_user_adapter",
    "register_adapter",
    "register_study_adapter",
    "CrossCheck",
    "CrossCheckTable",
    "Scale",
    "Study",
    "Vocabulary",
    "congruence_effects",
    "crosschecks",
    "design",
    "load_builtin",
    "preset",
    "register_study",
    "report_outputs",
    "scale",
    "studies",
    "trial_aggregations",
    "verdict_words",
]

BUILTIN = ("biasstats.studies.bai2024",)  # the loader is the one place that names them
ENTRY_POINT_GROUP = "biasstats.studies"


@dataclass(frozen=True)
class Scale:
    """An effect scale a study adds: axis label, the value meaning "no effect", log axis, and
    the scale whose ROPE it shares (None: its own; the study translates its ROPE)."""

    label: str
    null: float = 0.0
    log: bool = False
    rope_as: str | None = None


@dataclass(frozen=True)
class Vocabulary:
    """A study's words for the outcome it codes. The generic stages word every other outcome
    from ``[effects] outcome_label`` and ``unit``; for the study's own outcome they take:

    * ``outcome``: what the outcome is, in one line of ``biasstats effects``;
    * ``answers``: outcome column -> the plural noun of its 1s, for the axis of the observed
      rate in predictive checks ("Rate of <answers>");
    * ``verdicts``: the generic ROPE verdicts ("inside ROPE", "outside ROPE", "undecided") ->
      the study's words for them, which its effects tables hold (figures style a word as the
      verdict it stands for);
    * ``findings``: ``(effects) -> list[str]``, the sentences its effects lead the findings
      with;
    * ``methods``: ``(effects) -> str``, the methods sentence on its effects;
    * ``unusable``: the findings sentence on the rows not used, formatted with ``failed`` and
      ``read`` (numbers of rows).
    """

    outcome: str
    answers: Mapping[str, str] = field(default_factory=dict)
    verdicts: Mapping[str, str] = field(default_factory=dict)
    findings: Callable | None = None
    methods: Callable | None = None
    unusable: str | None = None


@dataclass(frozen=True)
class CrossCheckTable:
    name: str
    data: object  # pl.DataFrame
    caption: str
    digits: int = 3


@dataclass(frozen=True)
class CrossCheck:
    """What a cross-check adds to the report: tables (section "crosscheck") and a note."""

    tables: tuple[CrossCheckTable, ...]
    note: str | None = None


@dataclass(frozen=True, eq=False)
class Study:
    name: str
    congruence_adapters: tuple[str, ...] = ()
    congruence_presets: tuple[str, ...] = ()
    presets: Mapping[str, Callable] = field(default_factory=dict)
    # preset name -> function(spec.simulate) -> (rows it would make, how: "8 LLMs x ...")
    preset_sizes: Mapping[str, Callable] = field(default_factory=dict)
    trial_aggregations: tuple[Callable, ...] = ()
    effects: Callable | None = None
    crosschecks: tuple[Callable, ...] = ()
    report_outputs: tuple[Callable, ...] = ()
    scales: Mapping[str, Scale] = field(default_factory=dict)
    designs: Mapping[str, Callable] = field(default_factory=dict)
    vocabulary: Vocabulary | None = None


STUDIES: dict[str, Study] = {}
_loaded = False

ADAPTER_ENTRY_POINTS = "biasstats.adapters"
# study raw-text adapters: name -> function(raw, resolve) -> AdapterOutput (all text columns)
ADAPTERS: dict[str, Callable] = {}
# user adapters: name -> function(raw: polars.DataFrame) -> polars.DataFrame (the tidy steps
# then run on its output)
USER_ADAPTERS: dict[str, Callable] = {}
_ADAPTER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}")


def _check_adapter_name(name: str) -> None:
    if not isinstance(name, str) or not _ADAPTER_NAME.fullmatch(name):
        raise ValueError(f"adapter name {name!r}: expected letters, digits, '_', '.' or '-' "
                         "(starting with a letter or '_'; no ':')")
    if name == "tidy":
        raise ValueError("adapter name 'tidy' is the built-in declared steps")


def register_study_adapter(name: str):
    """Decorator: make a study's raw-text adapter ``(raw, resolve) -> AdapterOutput``
    selectable as ``[data] adapter = name``."""

    def deco(fn: Callable) -> Callable:
        _check_adapter_name(name)
        if name in ADAPTERS or name in USER_ADAPTERS:
            raise ValueError(f"adapter {name!r} registered twice")
        ADAPTERS[name] = fn
        return fn

    return deco


def register_adapter(name: str, fn: Callable | None = None, *, replace: bool = False):
    """Make ``fn(raw: polars.DataFrame) -> polars.DataFrame`` selectable as
    ``[data] adapter = name`` in specs loaded afterwards in this process.

    ``raw`` is every source file stacked, with ``source_row`` and ``source_file``; the
    function returns a polars DataFrame that keeps ``source_row`` (a source row it returns no
    row for is booked as excluded), and the declared steps (parse rules, explode, columns,
    derive, filters) then run on it. Use it as a call, ``register_adapter("mine", fn)``, or a
    decorator, ``@register_adapter("mine")``. ``replace=True`` replaces an earlier
    registration of the same name (a notebook re-running its cell)."""

    def deco(f: Callable) -> Callable:
        _check_adapter_name(name)
        if not callable(f):
            raise TypeError(f"register_adapter({name!r}, ...): expected a function")
        load_builtin()
        if name in ADAPTERS:
            raise ValueError(f"adapter {name!r} is a built-in study adapter")
        if name in USER_ADAPTERS and not replace and USER_ADAPTERS[name] is not f:
            raise ValueError(f"adapter {name!r} registered twice (pass replace=True to "
                             "replace it)")
        USER_ADAPTERS[name] = f
        return f

    return deco if fn is None else deco(fn)


def unregister_adapter(name: str) -> None:
    """Remove a user adapter (tests register toy adapters and take them away again)."""
    USER_ADAPTERS.pop(name, None)


def _entry_point_adapters() -> dict:
    return {ep.name: ep for ep in metadata.entry_points(group=ADAPTER_ENTRY_POINTS)}


def adapter_names() -> list[str]:
    """Every name a spec's ``[data] adapter`` may give: ``tidy``, the studies' adapters, the
    user adapters registered in this process and the installed entry points (names only:
    nothing is imported)."""
    load_builtin()
    return ["tidy", *sorted(set(ADAPTERS) | set(USER_ADAPTERS) | set(_entry_point_adapters()))]


def code_adapter_message(name: str) -> str:
    """Why ``[data] adapter = "module:function"`` is refused, and what to do instead."""
    module, _, attr = name.partition(":")
    attr = attr if attr.isidentifier() else "function"
    module = module if all(p.isidentifier() for p in module.split(".")) else "module"
    return (f"a spec names a registered adapter, never Python code to import; register the "
            f"function first, e.g. biasstats.register_adapter(\"{attr}\", {module}.{attr}), "
            f"and write adapter = \"{attr}\", or declare it as an entry point in the "
            f"'{ADAPTER_ENTRY_POINTS}' group of an installed package")


def find_user_adapter(name: str) -> Callable | None:
    """The user adapter registered as ``name``, else the function of the installed
    ``biasstats.adapters`` entry point of that name (imported now), else None."""
    if name in USER_ADAPTERS:
        return USER_ADAPTERS[name]
    ep = _entry_point_adapters().get(name)
    return None if ep is None else ep.load()


def register_study(study: Study) -> Study:
    """Add a study (idempotent for the same object; a different study under a taken name, or a
    preset or scale another study already provides, is an error)."""
    old = STUDIES.get(study.name)
    if old is not None and old is not study:
        raise ValueError(f"study {study.name!r} registered twice")
    for other in STUDIES.values():
        if other is study:
            continue
        for kind in ("presets", "scales", "designs"):
            clash = set(getattr(other, kind)) & set(getattr(study, kind))
            if clash:
                raise ValueError(f"study {study.name!r}: {kind} {sorted(clash)} already "
                                 f"provided by study {other.name!r}")
    STUDIES[study.name] = study
    return study


def unregister_study(name: str) -> None:
    """Remove a study (tests register toy studies and take them away again)."""
    STUDIES.pop(name, None)


def load_builtin() -> None:
    """Import the built-in studies and the ``biasstats.studies`` entry points (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True  # first, so a study that asks the registry while loading does not recurse

    try:
        for mod in BUILTIN:
            importlib.import_module(mod)
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            obj = ep.load()
            if callable(obj):
                obj()
    except BaseException:
        _loaded = False  # try again next time rather than run without the studies
        raise


def studies() -> list[Study]:
    """Every registered study, built-in ones loaded."""
    load_builtin()
    return list(STUDIES.values())


def preset(name: str) -> Callable:
    """The simulator registered for ``[simulate] preset = name`` (ValueError naming the
    registered presets when none is)."""
    found = {p: fn for s in studies() for p, fn in s.presets.items()}
    if name not in found:
        raise ValueError(f"unknown preset {name!r} (registered: {', '.join(sorted(found))})")
    return found[name]


def preset_size(name: str) -> Callable | None:
    """How many rows a registered preset would simulate (None when it does not say)."""
    return next((s.preset_sizes[name] for s in studies() if name in s.preset_sizes), None)


def preset_names() -> list[str]:
    return sorted(p for s in studies() for p in s.presets)


def trial_aggregations() -> list[Callable]:
    return [fn for s in studies() for fn in s.trial_aggregations]


def congruence_effects() -> Callable | None:
    """The congruence-effects function of the (first) study that provides one."""
    return next((s.effects for s in studies() if s.effects is not None), None)


def crosschecks() -> list[Callable]:
    return [fn for s in studies() for fn in s.crosschecks]


def report_outputs() -> list[Callable]:
    return [fn for s in studies() for fn in s.report_outputs]


def scale(name: str) -> Scale | None:
    """An extra effect scale registered by a study, or None."""
    for s in studies():
        if name in s.scales:
            return s.scales[name]
    return None


def verdict_words() -> dict[str, str]:
    """Every registered study's verdict words -> the generic verdict each stands for
    ("inside ROPE", "outside ROPE", "undecided")."""
    return {word: generic for s in studies() if s.vocabulary is not None
            for generic, word in s.vocabulary.verdicts.items()}


def design(name: str) -> Callable:
    found = {d: fn for s in studies() for d, fn in s.designs.items()}
    if name not in found:
        raise ValueError(f"unknown design {name!r} (registered: {', '.join(sorted(found))})")
    return found[name]
