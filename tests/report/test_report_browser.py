"""The report page in a real browser: headless Chromium, no network, no console errors.

Renders a report from fake inputs, then runs Chromium three times on it:

1. ``--dump-dom`` on a *copy* of the page with a small probe script injected (the page itself
   has no JavaScript): the probe records resource loads, error events and the rendered size
   of every figure ``<svg>``, and writes them into the DOM as JSON;
2. ``--screenshot`` of the page itself (kept under the pytest tmp dir, and copied to
   ``reports/_browser_check.png`` when a ``reports/`` folder exists beside the tests);
3. ``--print-to-pdf`` to check that the page prints.

Every host name resolves to nothing (``--host-resolver-rules``), so a request for anything
outside the file would fail and show up as an error. Skips when no Chromium is installed
(Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mimage
import pytest

from biasstats.report import figures as F
from biasstats.report.page import write_report
from biasstats.report.style import save_figure

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def _fakes():
    """The fake inputs of test_report_render (one source of truth for both test files)."""
    name = "_biasstats_report_fakes"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "test_report_render.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _chromium() -> str | None:
    env = os.environ.get("BIASSTATS_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM = _chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium binary (chromium / chromium-browser / google-chrome) on PATH; "
    "install it (Debian: apt-get install chromium) or set BIASSTATS_CHROMIUM",
)

WIDTH, HEIGHT = 1280, 4000

PROBE_HEAD = """<script>
window.__probe = {errors: []};
window.addEventListener("error", function (e) {
  var t = e.target || {};
  window.__probe.errors.push(String(e.message || t.src || t.href || "resource error"));
}, true);
window.addEventListener("load", function () {
  var figs = Array.prototype.map.call(document.querySelectorAll("svg.figure-svg"), function (s) {
    var r = s.getBoundingClientRect();
    return {id: s.closest("figure").id, width: r.width, height: r.height};
  });
  var out = {
    errors: window.__probe.errors,
    resources: performance.getEntriesByType("resource").map(function (x) { return x.name; }),
    figures: figs,
    sections: Array.prototype.map.call(document.querySelectorAll("main > section"),
                                       function (s) { return s.id; }),
    banner: (document.getElementById("diagnostics-banner") || {}).className || null,
    bodyWidth: document.body.scrollWidth
  };
  var pre = document.createElement("pre");
  pre.id = "probe-result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def _run_chromium(
    args: list[str], profile: Path, timeout: float = 60
) -> subprocess.CompletedProcess:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--mute-audio",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        "--run-all-compositor-stages-before-draw",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def _console_messages(stderr: str) -> list[str]:
    """Lines Chromium logs for the page's console (``...:INFO:CONSOLE(...)] "..."``)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> dict:
    fk = _fakes()
    root = tmp_path_factory.mktemp("browser")
    folder = root / "figures"
    eff = fk.fake_effects()
    ppc, reps = fk.fake_ppc()
    made = {
        "forest_llm": F.forest(eff, "llm", "bias"),
        "heatmap_llm_stereotype": F.heatmap(eff, "llm", "stereotype", "bias",
                                            category_of=fk.CATEGORY_OF),
        "ppc_llm": F.ppc_grouped(ppc, "llm", replicated=reps),
        "variance": F.variance_decomposition(fk.fake_vd()),
        "ranks": F.ranks(fk.fake_ranks()),
        "crosscheck_llm": F.crosscheck(fk.fake_cross(), "llm"),
    }
    # SVG only: the page inlines it; PDF/PNG are just linked (and tested in test_report_render)
    figures = {
        name: (save_figure(fig, folder, name, formats=("svg",)), None) for name, fig in made.items()
    }
    ctx = fk.make_context(root, figures, passed=False)
    page = write_report(ctx, root / "report.html")
    return {"root": root, "page": page, "figures": figures}


def test_report_renders_in_chromium_without_errors_or_requests(site):
    page: Path = site["page"]
    text = page.read_text(encoding="utf-8")
    probe = page.with_name("report_probe.html")
    probe.write_text(text.replace("</head>", PROBE_HEAD + "</head>", 1), encoding="utf-8")

    proc = _run_chromium(["--dump-dom", probe.as_uri()], site["root"] / "profile-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r'<pre id="probe-result">(.*?)</pre>', proc.stdout, re.S)
    assert m, "the probe did not run: " + proc.stdout[-500:]
    result = json.loads(html.unescape(m.group(1)))

    assert _console_messages(proc.stderr) == []
    assert result["errors"] == []
    assert result["resources"] == []  # everything is inline: no file, font, CSS or URL loaded
    assert result["banner"] == "banner fail"
    # the estimands and effect sizes lead, then the findings, the ledger and the checks
    assert result["sections"][:6] == ["effects", "ranks", "summary", "data", "model",
                                      "diagnostics"]
    assert "methods" in result["sections"] and "files" in result["sections"]
    figs = {f["id"]: f for f in result["figures"]}
    assert len(figs) == len(site["figures"])
    for fid, f in figs.items():
        assert f["width"] > 100 and f["height"] > 50, (fid, f)
    # figures are scaled to the column, and the page does not overflow the window
    assert max(f["width"] for f in figs.values()) <= WIDTH
    assert result["bodyWidth"] <= WIDTH


def test_report_screenshot_and_print(site):
    page: Path = site["page"]
    shot = site["root"] / "report_screenshot.png"
    proc = _run_chromium([f"--screenshot={shot}", page.as_uri()], site["root"] / "profile-shot")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    assert _console_messages(proc.stderr) == []
    img = mimage.imread(shot)
    assert img.shape[1] == WIDTH
    assert img[..., :3].std() > 0.05  # not a blank page
    if (REPO / "reports").is_dir():
        shutil.copyfile(shot, REPO / "reports" / "_browser_check.png")

    pdf = site["root"] / "report_print.pdf"
    proc = _run_chromium(
        [f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri()],
        site["root"] / "profile-pdf",
    )
    assert proc.returncode == 0 and pdf.is_file(), proc.stderr[-2000:]
    assert pdf.read_bytes().startswith(b"%PDF")
