"""Build the reports for a list of specs; an analysis whose data can't be had is listed, not fatal."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from biasstats.errors import BiasstatsError, DatasetUnavailableError
from biasstats.ingest import ingest
from biasstats.io import write_text_atomic
from biasstats.spec import load_spec


@dataclass(frozen=True)
class AnalysisOutcome:
    name: str
    title: str
    spec_path: Path
    ok: bool
    message: str  # ledger summary when ok; the reason (and fetch command) when unavailable
    ledger_text: str = ""


def _one(spec_path: Path, out_root: Path) -> AnalysisOutcome:
    spec = load_spec(spec_path)
    title = spec.content.analysis.title or spec.name
    try:
        result = ingest(spec)
    except DatasetUnavailableError as e:
        fetch = f"biasstats fetch {spec.data.source}"
        return AnalysisOutcome(spec.name, title, spec_path, False, f"{e} — to get it: {fetch}")
    folder = out_root / spec.name
    result.write(folder)
    led = result.ledger
    ok_rows = led.rows.by_status.get("ok", 0)
    summary = f"{led.rows_read} rows read, {ok_rows} fully parsed"
    write_text_atomic(folder / "ledger.txt", led.render() + "\n")
    return AnalysisOutcome(spec.name, title, spec_path, True, summary, led.render())


def build_reports(spec_paths: list[str | Path], out_root: str | Path) -> list[AnalysisOutcome]:
    """Build every analysis (spec errors stop everything: they are the user's to fix)."""
    out_root = Path(out_root)
    specs = [load_spec(p) for p in spec_paths]  # validate all specs before any work
    names = [s.name for s in specs]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise BiasstatsError(f"two analyses share the name {sorted(dup)[0]!r}: names must be unique")
    outcomes = [_one(Path(p), out_root) for p in spec_paths]
    env = Environment(
        loader=PackageLoader("biasstats.report", "templates"),
        autoescape=select_autoescape(["html"]),
    )
    page = env.get_template("index.html.j2").render(outcomes=outcomes, escape=html.escape)
    write_text_atomic(out_root / "index.html", page)
    return outcomes
