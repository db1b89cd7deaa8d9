"""The analyses a synthesis reads, and the draws of one declared estimand in each.

An analysis is a built report folder (``biasstats report``) holding ``estimand_draws.parquet``
(:data:`biasstats.effects.draws.DRAWS_FILE`): the posterior draws behind every row of its
``estimands.parquet``, with its outcome, the outcome's declared unit and scale in the file's
metadata. A source is such a folder, a folder of them (a reports root: its sub-folders), or a
glob of either. The estimand is named as ``<estimand>:<term>`` (``contrast:condition``,
``mean:overall``, ``mean:llm:condition``, ``slope:x``, ``impact:group | job``) and, where the
term has more than one row, its ``level``, ``scale``, ``stratum`` and ``category``.

Every user mistake is one line: no analysis found, a folder built before the draws were kept,
the estimand missing in an analysis (naming it and what it has), an ambiguous estimand (naming
what to choose with), different units or scales across analyses.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from biasstats.effects.draws import DRAWS_FILE
from biasstats.errors import BiasstatsError, SpecError
from biasstats.names import visible
from biasstats.report.page import SWEEP_FILE
from biasstats.spec.schema import is_safe_name

__all__ = ["KINDS", "AnalysisDraws", "Selector", "collect", "find_analyses", "parse_estimand"]

KINDS = ("mean", "contrast", "slope", "impact")  # the estimands an analysis keeps draws of
ESTIMANDS_FILE = "estimands.parquet"
REPORT_FILE = "report.html"
# the scale a contrast is compared on when none is named (its ratios need --scale)
DEFAULT_SCALES = ("difference", "difference (rating points)")


@dataclass(frozen=True)
class Selector:
    """One row of every analysis' estimands: ``estimand`` (a kind of :data:`KINDS`) and
    ``term``, with ``level`` / ``scale`` / ``stratum`` / ``category`` where the term has several
    rows."""

    estimand: str
    term: str
    level: str | None = None
    scale: str | None = None
    stratum: str | None = None
    category: str | None = None

    def label(self) -> str:
        """``contrast:condition [treated − control, difference]``: the estimand in one line."""
        extra = [x for x in (self.level, self.stratum, self.category, self.scale) if x]
        return f"{self.estimand}:{self.term}" + (f" [{', '.join(extra)}]" if extra else "")


def parse_estimand(text: str, key: str = "--estimand", **choices) -> Selector:
    """``"contrast:condition"`` (and the ``choices``: level, scale, stratum, category) ->
    :class:`Selector`; a one-line SpecError naming ``key`` otherwise."""
    kind, sep, term = str(text).partition(":")
    if not sep or kind.strip() not in KINDS or not term.strip():
        raise SpecError(f"{key} {text!r}: expected <estimand>:<term> with the estimand one of "
                        f"{', '.join(KINDS)} (e.g. contrast:condition, mean:overall)")
    return Selector(kind.strip(), term.strip(),
                    **{k: (str(v) if v is not None else None) for k, v in choices.items()})


@dataclass(frozen=True)
class AnalysisDraws:
    """One analysis' draws of the selected estimand and what they are."""

    name: str
    title: str
    folder: Path
    values: np.ndarray          # (S,) posterior draws, in stored order
    level: str
    scale: str
    unit: str                   # e.g. "percentage points", or the declared unit ("tokens")
    outcome: str
    report: Path | None = None  # its report.html, when there is one
    meta: dict | None = None    # the draws file's metadata (outcome, family, formula, ...)


def _is_analysis(folder: Path) -> bool:
    return (folder / DRAWS_FILE).is_file() or (folder / ESTIMANDS_FILE).is_file()


def _sweep_members(folder: Path) -> list[Path]:
    """The analysis folders a ``sweep.json`` in ``folder`` lists (``biasstats report`` of a
    ``[sweep]`` spec writes it), in its order; none when there is no such file."""
    try:
        doc = json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))
        names = [a["name"] for a in doc["analyses"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [folder.parent / n for n in names
            if isinstance(n, str) and is_safe_name(n) and _is_analysis(folder.parent / n)]


def find_analyses(sources, base: Path | None = None, key: str = "analyses") -> list[Path]:
    """The analysis folders ``sources`` name (folders, reports roots, globs; a sweep's folder
    holding its ``sweep.json``: its analyses; relative to ``base``), in order, each once."""
    found: list[Path] = []
    for src in sources:
        text = str(src)
        path = Path(text) if base is None or Path(text).is_absolute() else base / text
        matches = ([Path(p) for p in sorted(glob.glob(str(path), recursive=True))]
                   if glob.has_magic(text) else [path])
        if not matches or not any(m.exists() for m in matches):
            raise BiasstatsError(f"{key}: {text} not found")
        for m in matches:
            if not m.is_dir():
                continue
            if _is_analysis(m):
                found.append(m)
            elif (m / SWEEP_FILE).is_file():
                found += _sweep_members(m)
            else:
                found += sorted(d for d in m.iterdir() if d.is_dir() and _is_analysis(d))
    seen: dict[Path, Path] = {}
    for p in found:  # each folder once, as first named
        seen.setdefault(p.resolve(), p)
    unique = list(seen.values())
    if not unique:
        where = ", ".join(str(s) for s in sources) or "(none given)"
        raise BiasstatsError(f"{key}: no analyses found in {where} (an analysis folder holds "
                             f"{DRAWS_FILE}, written by biasstats report)")
    return unique


def _read(folder: Path, sel: Selector) -> tuple[pl.DataFrame, dict]:
    """The draws of ``sel``'s estimand and term in ``folder`` (every level, scale, ...) and
    the file's metadata."""
    path = folder / DRAWS_FILE
    if not path.is_file():
        raise BiasstatsError(f"{folder}: no {DRAWS_FILE} (built before biasstats kept the "
                             "draws of its estimands): rebuild it with biasstats report (or "
                             "biasstats effects) on its spec")
    try:
        meta = pl.read_parquet_metadata(path)
        rows = pl.scan_parquet(path).filter(
            (pl.col("estimand") == sel.estimand) & (pl.col("term") == sel.term)).collect()
    except (OSError, pl.exceptions.PolarsError) as e:
        raise BiasstatsError(f"{path}: cannot be read ({type(e).__name__}); rebuild it with "
                             "biasstats report") from None
    if not rows.height:
        have = (pl.scan_parquet(path).filter(pl.col("estimand") == sel.estimand)
                .select("term").unique(maintain_order=True).collect()["term"].to_list())
        name = meta.get("biasstats_analysis", folder.name)
        listing = (f"its {sel.estimand} terms: {', '.join(map(visible, have))}" if have
                   else f"it has no {sel.estimand} estimands")
        raise BiasstatsError(f"estimand {sel.estimand}:{visible(sel.term)} is not in analysis "
                             f"'{visible(name)}' ({folder}): {listing}")
    return rows, meta


def _choose(rows: pl.DataFrame, sel: Selector, name: str, folder: Path) -> pl.DataFrame:
    """The one row (all its draws) ``sel`` names among ``rows`` of its term."""
    for field in ("scale", "level", "stratum", "category"):
        want = getattr(sel, field)
        have = [v for v in rows[field].unique(maintain_order=True).to_list()]
        if want is None:
            if field == "scale" and len(have) > 1:
                default = [s for s in DEFAULT_SCALES if s in have]
                if default:
                    rows = rows.filter(pl.col("scale") == default[0])
                    continue
            if len(have) > 1:
                raise BiasstatsError(
                    f"estimand {sel.estimand}:{visible(sel.term)} has {len(have)} {field}s in "
                    f"analysis '{visible(name)}' ({folder}): choose one with {field} = ... "
                    f"(--{field}): {', '.join(visible(str(v)) for v in have[:12])}")
            continue
        if want not in have:
            listing = ", ".join(visible(str(v)) for v in have[:12] if v is not None) or "none"
            raise BiasstatsError(
                f"estimand {sel.estimand}:{visible(sel.term)} has no {field} "
                f"'{visible(want)}' in analysis '{visible(name)}' ({folder}): its {field}s: "
                f"{listing}")
        rows = rows.filter(pl.col(field) == want)
    return rows


def collect(folders: list[Path], sel: Selector) -> list[AnalysisDraws]:
    """The draws of ``sel`` in every analysis folder: one-line errors for a missing or
    ambiguous estimand (naming the analysis) and for different units or scales."""
    out: list[AnalysisDraws] = []
    for folder in folders:
        rows, meta = _read(folder, sel)
        name = meta.get("biasstats_analysis", folder.name)
        rows = _choose(rows, sel, name, folder).sort("draw")
        first = rows.row(0, named=True)
        unit = first["unit"] or ""
        if unit in ("", "outcome units") and meta.get("outcome_unit"):
            unit = meta["outcome_unit"]  # the declared unit: tokens, seconds, ...
        report = folder / REPORT_FILE
        out.append(AnalysisDraws(
            name=name, title=meta.get("title", name), folder=folder,
            values=rows["value"].to_numpy().astype(float), level=first["level"] or "",
            scale=first["scale"] or "", unit=unit, outcome=meta.get("outcome", ""),
            report=report if report.is_file() else None, meta=meta))
    _check_same(out, sel)
    return out


def _check_same(analyses: list[AnalysisDraws], sel: Selector) -> None:
    """Two analyses with one name, or whose draws are on different scales or units, cannot
    be compared: one line naming them."""
    names = [a.name for a in analyses]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        where = [str(a.folder) for a in analyses if a.name == dup[0]]
        raise BiasstatsError(f"analysis '{visible(dup[0])}' is read twice ({', '.join(where)}): "
                             "each analysis may enter a synthesis once")
    for what in ("level", "scale", "unit"):
        groups: dict[str, list[str]] = {}
        for a in analyses:
            groups.setdefault(getattr(a, what), []).append(a.name)
        if len(groups) > 1:
            parts = "; ".join(f"{', '.join(map(visible, v[:4]))}"
                              f"{' …' if len(v) > 4 else ''}: {visible(k) or '(none)'}"
                              for k, v in groups.items())
            if what == "level":  # one level in each, but not the same one
                raise BiasstatsError(
                    f"estimand {sel.estimand}:{visible(sel.term)} is a different level in "
                    f"different analyses ({parts}): a synthesis compares one level, named "
                    "alike in every analysis (level = ..., --level)")
            raise BiasstatsError(f"estimand {sel.estimand}:{visible(sel.term)} is on different "
                                 f"{what}s across analyses ({parts}): a synthesis compares "
                                 f"one quantity on one {what}")
    for a in analyses:
        if a.values.size == 0 or not np.all(np.isfinite(a.values)):
            raise BiasstatsError(f"analysis '{visible(a.name)}' ({a.folder}): the draws of "
                                 f"{sel.label()} are empty or not finite")

