"""Build every analysis and the index; an analysis whose data can't be had is listed, not fatal."""

from __future__ import annotations

from pathlib import Path

from biasstats.errors import BiasstatsError
from biasstats.io import transaction, write_text_atomic
from biasstats.pipeline import AnalysisOutcome, run_analysis
from biasstats.report.page import _environment, _rel
from biasstats.spec import load_spec


def build_reports(spec_paths: list[str | Path], out_root: str | Path, *, refit: bool = False,
                  progress: bool | None = None, on_done=None) -> list[AnalysisOutcome]:
    """Build each analysis, then ``index.html``. Spec errors stop everything up front.

    Each analysis is one :func:`biasstats.io.transaction`: one that fails leaves nothing of
    its own behind (analyses built before it stay)."""
    out_root = Path(out_root)
    specs = [load_spec(p) for p in spec_paths]  # validate all specs before any work
    names = [s.name for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BiasstatsError(f"two analyses share the name {dup[0]!r}: names must be unique")
    outcomes = []
    for spec in specs:
        with transaction():
            o = run_analysis(spec, out_root, refit=refit, progress=progress)
        outcomes.append(o)
        if on_done is not None:
            on_done(o)
    write_index(outcomes, out_root)
    return outcomes


def write_index(outcomes: list[AnalysisOutcome], out_root: Path) -> Path:
    rows = [{"o": o, "link": None if o.report is None else _rel(o.report, out_root)}
            for o in outcomes]
    page = _environment().get_template("index.html.j2").render(rows=rows)
    return write_text_atomic(out_root / "index.html", page)
