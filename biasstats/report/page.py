"""The HTML report of one analysis: one self-contained, offline file.

:func:`render_report` turns a :class:`ReportContext` (plain data: strings, DataFrames, the
ingest ledger, paths of the figure and table files written by
:func:`biasstats.report.style.save_figure` and :func:`biasstats.report.tables.write_table`)
into HTML; :func:`write_report` writes it atomically. Figures are embedded as inline SVG read
from the saved ``.svg`` files; the page needs no network, no JavaScript and no external CSS or
fonts, and prints cleanly. Sections whose inputs are ``None`` / empty are left out.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from biasstats.io import write_text_atomic
from biasstats.names import safe_stem, visible
from biasstats.report.tables import as_frame, display_table

__all__ = [
    "SECTIONS",
    "FigureEntry",
    "ModelInfo",
    "ReportContext",
    "TableEntry",
    "inline_svg",
    "SWEEP_FILE",
    "refresh_index",
    "render_index",
    "render_report",
    "write_report",
]

# sections the page leads with, before the findings, the ledger and the checks
LEAD_SECTIONS = ("leaderboard", "meta", "joint", "refusals", "estimands", "effects", "ranks",
                 "replication")

# Report sections that hold figures and tables: key → heading. Entries name their section.
SECTIONS: dict[str, str] = {
    "leaderboard": "Leaderboard",  # a synthesis across analyses (biasstats.synthesis)
    "meta": "Meta-analysis",
    "joint": "Joint model: correlated effects",
    "refusals": "Refusals and answers",
    "estimands": "Estimands",
    "effects": "Effect sizes",
    "ranks": "Ranking of LLMs",
    "replication": "Published vs reanalysis",
    "ppc": "Posterior predictive checks",
    "variance": "Variance decomposition",
    "crosscheck": "Frequentist cross-check",
    "other": "Further results",
}


@dataclass(frozen=True)
class FigureEntry:
    """A saved figure: ``files`` is what :func:`~biasstats.report.style.save_figure` returned."""

    name: str
    files: Mapping[str, str | os.PathLike]
    caption: str = ""
    alt: str = ""  # a text description for screen readers; defaults to the caption
    section: str = "effects"
    title: str | None = None


@dataclass(frozen=True)
class TableEntry:
    """A table shown in the page; ``files`` is what ``write_table`` returned (optional)."""

    name: str
    data: Any  # polars or pandas DataFrame, shown formatted
    caption: str = ""
    section: str = "effects"
    files: Mapping[str, str | os.PathLike] = field(default_factory=dict)
    float_digits: int = 2
    column_digits: Mapping[str, int] | None = None
    title: str | None = None


@dataclass(frozen=True)
class ModelInfo:
    """What was fitted: formula, family, priors and sampler settings."""

    formula: str
    family: str
    link: str | None = None
    priors: Any = None  # DataFrame, or mapping parameter → prior text
    sampler: Mapping[str, Any] | None = None  # e.g. {"sampler": "nutpie", "chains": 4, ...}
    notes: Sequence[str] = ()


@dataclass
class ReportContext:
    """Everything the report page shows. Only ``title`` is required."""

    title: str
    analysis: str | None = None  # the analysis name (spec file stem)
    description: str | None = None
    generated: str | None = None  # e.g. "biasstats 0.1.0, 2025-01-31" (caller's choice)
    findings: Sequence[str] | None = None  # plain sentences, most important first
    diagnostics: Mapping[str, Any] | None = None  # max_rhat, ..., passed, failures, thresholds
    diagnostics_table: Any = None  # per-parameter summary DataFrame
    ledger: Any = None  # biasstats.ingest.ledger.Ledger or its to_dict()
    model: ModelInfo | None = None
    figures: Sequence[FigureEntry] = ()
    tables: Sequence[TableEntry] = ()
    crosscheck_note: str | None = None
    methods: str | None = None  # the methods paragraph, shown in a copyable block
    extra_files: Sequence[tuple[str, str | os.PathLike]] = ()  # (label, path) e.g. trials.parquet
    base_dir: str | os.PathLike | None = None  # links are made relative to this folder


# ---------------------------------------------------------------------------- inline SVG

_XML_DECL = re.compile(r"<\?xml[^>]*\?>\s*")
_DOCTYPE = re.compile(r"<!DOCTYPE[^>]*>\s*", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_SVG_STYLE = re.compile(r"<style[^>]*>.*?</style>\s*", re.S)
_EMPTY_DEFS = re.compile(r"<defs>\s*</defs>\s*")
_XMLNS = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')
_ID = re.compile(r'\bid="([^"]+)"')
_HREF = re.compile(r'((?:xlink:)?href)="#([^"]+)"')
_URL = re.compile(r"url\(#([^)]+)\)")
_SVG_OPEN = re.compile(r"<svg\b([^>]*)>")


SCREEN_SCALE = 1.75  # screen pixels per point of figure width (print uses the true size)


def inline_svg(svg_text: str, uid: str, alt: str) -> str:
    """Make a matplotlib SVG file embeddable in HTML.

    Drops the XML declaration, DOCTYPE, RDF metadata and namespace declarations (HTML puts
    ``<svg>`` in the SVG namespace itself, and this keeps every URL out of the page); prefixes
    every id with ``uid`` (made a safe id by :func:`biasstats.names.safe_stem`) so several
    figures can share a page; adds ``role="img"`` and a ``<title>`` (``alt``, its control
    characters written out) for screen readers.
    """
    uid = safe_stem(uid)
    s = _XML_DECL.sub("", svg_text)
    s = _DOCTYPE.sub("", s)
    s = _METADATA.sub("", s)
    s = _SVG_STYLE.sub("", s)  # the page's CSS carries matplotlib's one rule, scoped
    s = _EMPTY_DEFS.sub("", s)
    s = _ID.sub(lambda m: f'id="{uid}-{m.group(1)}"', s)
    s = _HREF.sub(lambda m: f'{m.group(1)}="#{uid}-{m.group(2)}"', s)
    s = _URL.sub(lambda m: f"url(#{uid}-{m.group(1)})", s)
    m = _SVG_OPEN.search(s)
    if m is None:
        raise ValueError(f"figure {uid!r}: the SVG file has no <svg> element")
    attrs = _XMLNS.sub("", m.group(1))
    title_id = f"{uid}-title"
    # On screen, show figures larger than print size (journal widths are small on a monitor).
    w = re.search(r'width="([\d.]+)pt"', attrs)
    style = f' style="--screen-width: {float(w.group(1)) * SCREEN_SCALE:.0f}px"' if w else ""
    opening = (
        f'<svg{attrs} class="figure-svg"{style} role="img" aria-labelledby="{title_id}">'
        f'<title id="{title_id}">{html.escape(visible(alt))}</title>'
    )
    return s[: m.start()] + opening + s[m.end() :].rstrip() + "\n"


# ---------------------------------------------------------------------------- helpers


def _rel(path: str | os.PathLike, base: Path | None) -> str:
    p = Path(path)
    if base is not None:
        try:
            return Path(os.path.relpath(p.resolve(), base.resolve())).as_posix()
        except ValueError:  # another drive (Windows)
            return p.name
    return p.as_posix() if not p.is_absolute() else p.name


def _table_view(df, float_digits: int = 2, column_digits=None, intervals="auto") -> dict:
    headers, rows, align = display_table(
        df, float_digits, intervals=intervals, column_digits=dict(column_digits or {})
    )
    return {"headers": headers, "rows": rows, "align": align}


def _kv_view(mapping: Mapping[str, Any], key: str, value: str) -> dict:
    rows = [[str(k), _fmt_value(v)] for k, v in mapping.items()]
    return {"headers": [key, value], "rows": rows, "align": ["l", "l"]}


def _fmt_value(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}".replace("-", "\u2212")
    if isinstance(v, list | tuple):
        return ", ".join(_fmt_value(x) for x in v)
    return "" if v is None else str(v)


_DIAG_METRICS: tuple[tuple[str, str, str], ...] = (
    # key, label, comparison the value must satisfy against its threshold
    ("max_rhat", "Largest R-hat", "<="),
    ("min_ess_bulk", "Smallest bulk ESS", ">="),
    ("min_ess_tail", "Smallest tail ESS", ">="),
    ("divergences", "Divergent transitions", "<="),
    ("min_bfmi", "Smallest E-BFMI", ">="),
)
_DIAG_RESERVED = {"passed", "failures", "thresholds"} | {k for k, _, _ in _DIAG_METRICS}


def _diagnostics_view(diag: Mapping[str, Any]) -> dict:
    thresholds = diag.get("thresholds") or {}
    rows = []
    for key, label, op in _DIAG_METRICS:
        if key not in diag:
            continue
        value = diag[key]
        thr = thresholds.get(key)
        status = ""
        if thr is not None and value is not None:
            ok = value <= thr if op == "<=" else value >= thr
            status = "ok" if ok else "FAILED"
        sign = "\u2264" if op == "<=" else "\u2265"
        shown = f"{value:.3f}" if key in ("max_rhat", "min_bfmi") else _fmt_value(value)
        if isinstance(value, float) and key.startswith("min_ess"):
            shown = f"{value:.0f}"
        rows.append(
            {
                "label": label,
                "value": shown,
                "threshold": f"{sign} {_fmt_value(thr)}" if thr is not None else "",
                "status": status,
            }
        )
    extra = {
        k: v
        for k, v in diag.items()
        if k not in _DIAG_RESERVED and isinstance(v, int | float | str | bool)
    }
    return {
        "passed": bool(diag.get("passed", False)),
        "failures": [str(f) for f in (diag.get("failures") or [])],
        "metrics": rows,
        "extra": _kv_view(extra, "Setting", "Value") if extra else None,
    }


def _ledger_view(ledger: Any) -> dict:
    d = ledger.to_dict() if hasattr(ledger, "to_dict") else dict(ledger)
    tallies = []
    for t in d.get("tallies", []):
        total = int(t.get("total", 0))
        statuses = [
            {
                "status": s,
                "n": int(n),
                "pct": f"{100.0 * n / total:.1f}%" if total else "",
            }
            for s, n in t.get("by_status", {}).items()
        ]
        reasons = [{"reason": r, "n": int(n)} for r, n in t.get("by_reason", {}).items()]
        tallies.append(
            {"unit": t.get("unit", ""), "total": total, "statuses": statuses, "reasons": reasons}
        )
    return {
        "source": d.get("source", ""),
        "rows_read": d.get("rows_read"),
        "balanced": d.get("balanced"),
        "tallies": tallies,
        "notes": list(d.get("notes", [])),
    }


def _priors_view(priors: Any) -> dict | None:
    if priors is None:
        return None
    if isinstance(priors, Mapping):
        return _kv_view(priors, "Parameter", "Prior")
    if isinstance(priors, pl.DataFrame) or hasattr(priors, "columns"):
        return _table_view(priors, 3, intervals=None)
    raise TypeError("ModelInfo.priors must be a DataFrame or a mapping parameter → prior")


_FILE_ORDER = ("pdf", "svg", "png", "csv", "tex")


def _links(files: Mapping[str, Any], base: Path | None) -> list[dict]:
    keys = [k for k in _FILE_ORDER if k in files] + sorted(k for k in files if k not in _FILE_ORDER)
    return [
        {"label": k.upper() if k != "tex" else "TeX", "href": _rel(files[k], base)} for k in keys
    ]


def _diag_table(df) -> dict:
    frame = as_frame(df)
    if "r_hat" in frame.columns:
        frame = frame.sort("r_hat", descending=True, nulls_last=True)
    digits = {"r_hat": 3, "ess_bulk": 0, "ess_tail": 0}
    return _table_view(frame, 3, column_digits=digits)


# ---------------------------------------------------------------------------- render


def _shown(value: Any) -> Any:
    """Every value a template prints: text with its control characters written out
    (:func:`biasstats.names.visible`; a level name with a BEL, an ESC or a newline reads
    ``\\x07``, ``\\x1b``, ``\\n``); markup (the inline SVG) and non-text as given."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value)
    return value


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("biasstats.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_shown,
    )
    return env


class _Ids:
    """HTML ids of one page: ``prefix-<stem>`` (:func:`biasstats.names.safe_stem` of the
    figure's or table's name), unique (a repeated one gets ``-2``, ``-3``, …)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, prefix: str, name: str) -> str:
        base = f"{prefix}-{safe_stem(name)}"
        out, k = base, 2
        while out in self.used:
            out, k = f"{base}-{k}", k + 1
        self.used.add(out)
        return out


def _figure_item(f: FigureEntry, number: int, ids: _Ids, base: Path | None) -> dict:
    """One figure of a section: its SVG inlined (with ``alt`` as its title), its file links."""
    svg_path = f.files.get("svg")
    if svg_path is None:
        raise ValueError(f"figure {f.name!r}: no SVG file given (files={sorted(f.files)})")
    svg_path = Path(svg_path)
    if not svg_path.is_file():
        raise FileNotFoundError(f"figure {f.name!r}: SVG file {svg_path.name} not found")
    alt = f.alt or f.caption or f.title or f.name
    fig_id = ids("fig", f.name)
    return {
        "kind": "figure",
        "id": fig_id,
        "number": number,
        "title": f.title,
        "caption": f.caption,
        "svg": Markup(
            inline_svg(svg_path.read_text(encoding="utf-8"),
                       "svg-" + fig_id.removeprefix("fig-"), alt)
        ),
        "links": _links(f.files, base),
    }


def _table_item(t: TableEntry, number: int, ids: _Ids, base: Path | None) -> dict:
    """One table of a section: its rows for display, its file links."""
    return {
        "kind": "table",
        "id": ids("tab", t.name),
        "number": number,
        "title": t.title,
        "caption": t.caption,
        "table": _table_view(t.data, t.float_digits, t.column_digits),
        "links": _links(t.files, base),
    }


def _sections(context: ReportContext, base: Path | None) -> list[dict]:
    """The figure-and-table sections that have something to show, in :data:`SECTIONS`
    order; figures and tables numbered through the page."""
    figure_no = 0
    table_no = 0
    sections = []
    ids = _Ids()
    for key, heading in SECTIONS.items():
        figs = [f for f in context.figures if f.section == key]
        tabs = [t for t in context.tables if t.section == key]
        if not figs and not tabs and not (key == "crosscheck" and context.crosscheck_note):
            continue
        items = []
        for f in figs:
            figure_no += 1
            items.append(_figure_item(f, figure_no, ids, base))
        for t in tabs:
            table_no += 1
            items.append(_table_item(t, table_no, ids, base))
        note = context.crosscheck_note if key == "crosscheck" else None
        sections.append({"key": key, "heading": heading, "items": items, "note": note,
                         "lead": key in LEAD_SECTIONS})
    return sections


def _downloads(context: ReportContext, base: Path | None) -> list[dict]:
    """The files of every figure and written table, for the page's file list."""
    downloads = []
    for f in context.figures:
        downloads.append({"name": f.name, "kind": "figure", "links": _links(f.files, base)})
    for t in context.tables:
        if t.files:
            downloads.append({"name": t.name, "kind": "table", "links": _links(t.files, base)})
    return downloads


def _model_view(m: ModelInfo | None) -> dict | None:
    if m is None:
        return None
    return {
        "formula": m.formula,
        "family": m.family,
        "link": m.link,
        "priors": _priors_view(m.priors),
        "sampler": _kv_view(m.sampler, "Setting", "Value") if m.sampler else None,
        "notes": list(m.notes),
    }


def _toc(context: ReportContext, sections: list[dict], model: dict | None,
         files: bool) -> list[tuple[str, str]]:
    """The table of contents: the lead sections, then the page's fixed parts in order."""
    toc = [(s["key"], s["heading"]) for s in sections if s["lead"]]
    if context.findings:
        toc.append(("summary", "Summary of findings"))
    if context.ledger is not None:
        toc.append(("data", "Data ledger"))
    if model:
        toc.append(("model", "Model"))
    if context.diagnostics is not None or context.diagnostics_table is not None:
        toc.append(("diagnostics", "Sampling diagnostics"))
    toc += [(s["key"], s["heading"]) for s in sections if not s["lead"]]
    if context.methods:
        toc.append(("methods", "Methods"))
    if files:
        toc.append(("files", "Files"))
    return toc


def render_report(context: ReportContext, base_dir: str | os.PathLike | None = None) -> str:
    """The report page as one self-contained HTML string.

    Links to figure and table files are relative to ``base_dir`` (default:
    ``context.base_dir``; :func:`write_report` passes the page's own folder).
    """
    base = base_dir if base_dir is not None else context.base_dir
    base = Path(base) if base is not None else None
    sections = _sections(context, base)
    downloads = _downloads(context, base)
    extra = [{"label": label, "href": _rel(p, base)} for label, p in context.extra_files]
    model = _model_view(context.model)
    page = _environment().get_template("report.html.j2")
    return page.render(
        ctx=context,
        toc=_toc(context, sections, model, bool(downloads or extra)),
        diagnostics=_diagnostics_view(context.diagnostics) if context.diagnostics else None,
        diagnostics_table=(
            _diag_table(context.diagnostics_table)
            if context.diagnostics_table is not None
            else None
        ),
        ledger=_ledger_view(context.ledger) if context.ledger is not None else None,
        model=model,
        sections=sections,
        downloads=downloads,
        extra_files=extra,
    )


def write_report(context: ReportContext, path: str | os.PathLike) -> Path:
    """Render the report and write it to ``path`` atomically; links are relative to its folder."""
    path = Path(path)
    text = render_report(context, base_dir=path.parent)
    return write_text_atomic(path, text)


INDEX_ROWS = "index.json"  # the index's analysis rows, so a summary can list itself later
SWEEP_FILE = "sweep.json"  # <reports>/<sweep>/sweep.json: the analyses of one [sweep]
_ROW_KEYS = ("name", "title", "status", "message", "gate_passed", "allow_failure")


def render_index(outcomes, out_root: Path) -> Path:
    """``<out_root>/index.html``: one row per analysis outcome (anything with ``title``,
    ``name``, ``status``, ``message``, ``gate_passed``, ``allow_failure`` and ``report``), in
    the order given, then the syntheses across analyses found in ``out_root`` (folders
    holding a ``summary.json``: ``biasstats summarize``). The rows are kept in
    ``index.json`` for :func:`refresh_index`."""
    out_root = Path(out_root)
    rows = [{**{k: getattr(o, k) for k in _ROW_KEYS},
             "link": None if o.report is None else _rel(o.report, out_root),
             "sweep": getattr(o, "sweep", None)}
            for o in outcomes]
    write_text_atomic(out_root / INDEX_ROWS, json.dumps(rows, indent=1) + "\n")
    return _write_index(rows, out_root)


def refresh_index(out_root: Path) -> Path:
    """Rewrite ``<out_root>/index.html`` with the analysis rows of the last
    :func:`render_index` (``index.json``), then one row for every other folder holding a
    ``report.html`` (built by other runs: one task per analysis on a cluster), and the
    syntheses now in ``out_root``."""
    out_root = Path(out_root)
    try:
        rows = json.loads((out_root / INDEX_ROWS).read_text(encoding="utf-8"))
        rows = [r for r in rows if isinstance(r, dict) and set(_ROW_KEYS) <= r.keys()]
    except (OSError, ValueError):
        rows = []
    listed = {r.get("link") for r in rows}
    if out_root.is_dir():
        rows += [_folder_row(d, out_root) for d in sorted(out_root.iterdir())
                 if (d / "report.html").is_file()
                 and _rel(d / "report.html", out_root) not in listed]
    return _write_index(rows, out_root)


def _folder_row(folder: Path, out_root: Path) -> dict:
    """An index row of a built analysis folder (its gate from ``diagnostics.json``)."""
    try:
        diag = json.loads((folder / "diagnostics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        diag = {}
    return {"name": folder.name, "title": folder.name, "status": "built", "message": "",
            "gate_passed": diag.get("passed"), "allow_failure": diag.get("allow_failure"),
            "link": _rel(folder / "report.html", out_root)}


def _summaries(out_root: Path) -> list[dict]:
    """The syntheses in ``out_root``: title, link, estimand, number of analyses."""
    out = []
    for f in sorted(out_root.glob("*/summary.json")):
        try:
            s = json.loads(f.read_text(encoding="utf-8"))
            est = s["estimand"]
            out.append({"title": str(s["title"]), "name": str(s["name"]),
                        "link": _rel(f.parent / "summary.html", out_root),
                        "estimand": f"{est['estimand']}:{est['term']}"
                                    + (f" ({est['level']})" if est.get("level") else ""),
                        "analyses": len(s["analyses"])})
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a summary biasstats wrote
    return out


def _write_index(rows: list[dict], out_root: Path) -> Path:
    """The page; a run of rows of one ``[sweep]`` is grouped under a row naming the sweep,
    its number of analyses and its ``sweep.json``."""
    sizes: dict[str, int] = {}
    for r in rows:
        if isinstance(r.get("sweep"), str):
            sizes[r["sweep"]] = sizes.get(r["sweep"], 0) + 1
    shown, prev = [], None
    for r in rows:
        sweep = r.get("sweep") if isinstance(r.get("sweep"), str) else None
        head = None
        if sweep is not None and sweep != prev:
            head = {"name": sweep, "analyses": sizes[sweep],
                    "link": _rel(out_root / sweep / SWEEP_FILE, out_root)}
        shown.append({"o": r, "link": r.get("link"), "sweep": head, "member": bool(sweep)})
        prev = sweep
    page = _environment().get_template("index.html.j2").render(
        rows=shown, summaries=_summaries(out_root))
    return write_text_atomic(out_root / "index.html", page)
