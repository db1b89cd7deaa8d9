"""Names are data, never paths (issue 19, item 2).

A factor or level name may hold anything: a space, ``/``, ``..``, ``$``, NUL, BEL and ESC, a
newline, an emoji, 300 characters, a spreadsheet formula. It becomes a file name, a LaTeX
label and an HTML id only through :func:`biasstats.names.safe_name` (a safe single path
component, different for different names), is shown with its control characters written out
(:func:`biasstats.names.visible`) in LaTeX, HTML, SVG and the terminal, survives posterior.nc
(a NUL is escaped there and restored on read), and a CSV cell that a spreadsheet would run
as a formula is neutralised in every CSV.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import warnings
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import escape

from biasstats.cli import main
from biasstats.names import neutralise_text, safe_name, safe_stem, visible
from biasstats.report.tables import latex_escape

# ----------------------------------------------------------------------------- safe_name
SAFE = re.compile(r"[a-z0-9][a-z0-9_-]*")
# every character a name may hold, lone surrogates and controls included
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=320)
# names that differ only where a slug cannot see it: separators, case, a trailing character
NEAR = st.lists(st.sampled_from(["a", "b", "_", ":", "-", " ", "/", ".", "A", "\x00", "é",
                                 "e\u0301"]), max_size=8).map("".join)


def _is_safe_component(stem: str) -> bool:
    return (SAFE.fullmatch(stem) is not None and len(stem) <= 64 and stem not in (".", "..")
            and not stem.startswith((".", "-")) and not {"/", "\\", "\x00"} & set(stem))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(ANY_TEXT, NEAR), min_size=2, max_size=40, unique=True))
def test_safe_name_is_injective_and_a_safe_path_component(names):
    stems = [safe_name(n) for n in names]
    assert len(set(stems)) == len(names), "two names gave one file name"
    for n, s in zip(names, stems, strict=True):
        assert _is_safe_component(s), (n, s)
        assert safe_name(n) == s  # the same name, the same file, run to run
        assert Path("out", s).parent == Path("out")  # one component: never leaves its folder
        assert ("-" in s) != (s == n)  # kept as it is, or slug-hash: the two never meet


@pytest.mark.parametrize(("a", "b"), [("cond_llm", "cond:llm"), ("llm", "LLM"),
                                      ("prompt style", "prompt-style"), ("a/b", "a_b"),
                                      ("", " "), ("x" * 300, "x" * 299)])
def test_names_a_slug_would_merge_stay_apart(a, b):
    assert safe_name(a) != safe_name(b)
    assert _is_safe_component(safe_name(a)) and _is_safe_component(safe_name(b))


def test_plain_names_keep_their_file_names():
    for name in ("llm", "cond_llm", "variance_decomposition", "x2"):
        assert safe_name(name) == name == safe_stem(name)
    assert safe_name("prompt style").startswith("prompt-style-")
    assert safe_name("a/../../../../tmp/x").startswith("a-tmp-x-")
    assert safe_name("con") != "con"  # a device name on Windows
    assert safe_stem("ppc_" + safe_name("a b")) == "ppc_" + safe_name("a b")  # already safe


@given(ANY_TEXT)
def test_visible_writes_out_every_control_character(text):
    shown = visible(text)
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]", shown)
    assert visible(shown) == shown
    if not re.search(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
                     r"\ufeff\ufffe\uffff\ud800-\udfff]", text):
        assert shown == text


def test_visible_forms():
    assert visible("a\x07b\x1b[31m\x00\n\t\u202e") == "a\\x07b\\x1b[31m\\x00\\n\\t\\u202e"
    assert visible("line\nbreak", keep="\n") == "line\nbreak"
    assert visible("emoji 😀 and $5 & 10%") == "emoji 😀 and $5 & 10%"


# ----------------------------------------------------------------------------- posterior.nc
def test_nul_in_level_names_round_trips_through_netcdf(tmp_path):
    import xarray as xr

    from biasstats.inference.result import escape_nul, read_posterior

    levels = ["nul\x00here", "100%", "%00", "%2500", "plain", "\x00"]
    ds = xr.Dataset({"r_g": (("chain", "draw", "g"), np.ones((1, 2, len(levels))))},
                    coords={"g": np.array(levels, dtype=object)})
    tree = xr.DataTree.from_dict({"/posterior": ds})
    stored = tree.copy()
    escape_nul(stored)
    assert tree.posterior["g"].values.tolist() == levels  # the fit's own tree is untouched
    stored.to_netcdf(tmp_path / "p.nc", engine="h5netcdf")
    back = read_posterior(tmp_path / "p.nc")
    assert back.posterior["g"].values.tolist() == levels
    assert "biasstats_nul_escaped" not in back.attrs
    with xr.open_datatree(tmp_path / "p.nc") as plain:  # plain xarray reads the escaped form
        assert "nul%00here" in plain.posterior["g"].values.tolist()


# ----------------------------------------------------------------------------- one report
LEVELS = ["plain", "two words", "a/b", "..", "$5 & 10%", "nul\x00here", "bel\x07esc\x1b[31m",
          "line\n\nbreak", "emoji 😀", "L" * 300, '=HYPERLINK("http://x")', "@SUM(A1)",
          "+cmd|x", "-2+3"]
ESCAPE = "a/../../../../escaped"   # from out/hostile/figures/: four folders up, outside --out
SPACE = "prompt style"             # the README's own backtick example
DOLLAR = "cost in $ & %"
GROUP = "grp 😀\x07\x1b" + "g" * 300  # BEL, ESC, an emoji and 300 characters
FACTORS = [ESCAPE, SPACE, DOLLAR, "cond_llm", "cond:llm", GROUP, "lev"]
SPEC = """[analysis]
name = "hostile"
[data]
source = "h.csv"
outcome = "score"
[data.columns]
llm = "model"
[model]
formula = "score ~ 1 + `{escape}` + `{space}` + `{dollar}` + cond_llm + lev + (1|llm) + (1|cond:llm) + (1|`{group}`)"
family = "gaussian"
[fit]
chains = 2
tune = 100
draws = 100
refit = false
[checks]
allow_failure = true
"""


def _toml_string(text: str) -> str:
    return "".join(f"\\u{ord(c):04x}" if ord(c) < 0x20 else c for c in text)


def _run(argv) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue() + err.getvalue()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """One small gaussian fit over hostile factor and level names, its report, its
    ``biasstats effects`` and a (cached) ``biasstats fit``."""
    root = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(1)
    n = 420
    pl.DataFrame({
        "model": [f"m{i % 3}" for i in range(n)],
        ESCAPE: [["u", "v"][(i // 2) % 2] for i in range(n)],
        SPACE: [["p", "q"][(i // 3) % 2] for i in range(n)],
        DOLLAR: [["$1", "$2"][(i // 11) % 2] for i in range(n)],
        "cond_llm": [["p", "q"][(i // 7) % 2] for i in range(n)],
        "cond": [["r", "s"][(i // 5) % 2] for i in range(n)],
        GROUP: [LEVELS[(i // 3) % len(LEVELS)] for i in range(n)],
        "lev": [LEVELS[i % len(LEVELS)] for i in range(n)],
        "score": rng.normal(size=n),
    }).write_csv(root / "h.csv")
    spec = root / "h.toml"
    spec.write_text(SPEC.format(escape=ESCAPE, space=SPACE, dollar=DOLLAR,
                                group=_toml_string(GROUP)), encoding="utf-8")
    before = {p for p in root.rglob("*")}
    out = root / "out"
    with warnings.catch_warnings():  # matplotlib: no emoji glyph in DejaVu Sans
        warnings.simplefilter("ignore")
        rc, printed = _run(["report", spec, "--out", out])
    folder = out / "hostile"
    rc_effects, printed_effects = _run(["effects", spec, "--out", folder])
    rc_fit, printed_fit = _run(["fit", spec, "--out", folder])
    return {"root": root, "before": before, "out": out, "folder": folder,
            "rc": (rc, rc_effects, rc_fit), "printed": printed + printed_effects + printed_fit,
            "each": (printed, printed_effects, printed_fit)}


def test_report_over_hostile_names_succeeds_and_writes_only_inside_out(hostile):
    for name, rc, printed in zip(("report", "effects", "fit"), hostile["rc"], hostile["each"],
                                 strict=True):
        assert rc == 0, f"{name} exited {rc}: " + printed[-3000:]
    new = {p for p in hostile["root"].rglob("*")} - hostile["before"]
    outside = [p for p in new if not p.resolve().is_relative_to(hostile["out"].resolve())]
    assert outside == []
    assert not list(hostile["root"].rglob("escaped*"))
    figures = hostile["folder"] / "figures"
    for f in figures.iterdir():
        assert _is_safe_component(f.stem), f.name
    # cond_llm and the cond:llm grouping: two figures, not one written twice
    assert (figures / "ppc_cond_llm.svg").is_file()
    assert (figures / f"ppc_{safe_name('cond:llm')}.svg").is_file()
    assert (figures / f"ppc_{safe_name(SPACE)}.svg").is_file()
    assert (hostile["folder"] / "tables" / f"contrasts_{safe_name(ESCAPE)}.tex").is_file()


def test_terminal_output_holds_no_raw_control_character(hostile):
    printed = hostile["printed"]
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", printed)
    assert "bel\\x07esc\\x1b[31m" in printed and "nul\\x00here" in printed


def _keys(hostile) -> dict[str, str]:
    """The report's key table: full label -> key (long and multi-line level names)."""
    table = pl.read_csv(hostile["folder"] / "tables" / "label_keys.csv")
    return dict(zip(table["Label"], table["Key"], strict=True))


def test_svgs_are_well_formed_and_show_the_names_written_out(hostile):
    svgs = sorted((hostile["folder"] / "figures").glob("*.svg"))
    assert len(svgs) >= 10
    texts = {}
    for f in svgs:
        texts[f.stem] = "".join(ET.parse(f).getroot().itertext())  # raises if not XML
    lev = texts["estimand_lev"]
    keys = _keys(hostile)
    for level in LEVELS:  # a long or multi-line level is shown as its key (the key table)
        shown = keys.get(level, visible(level))
        assert shown in lev or shown[:40] in lev, level
    assert keys and all(visible(label) not in lev for label in keys)


def test_latex_holds_no_raw_control_character_and_every_row_is_one_line(hostile):
    texs = sorted((hostile["folder"] / "tables").glob("*.tex"))
    assert len(texs) >= 10
    for f in texs:
        tex = f.read_text(encoding="utf-8")
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", tex), f.name
        assert re.search(r"\\label\{tab:[a-z0-9_-]+\}", tex), f.name
        body = tex[tex.index(r"\midrule") + len(r"\midrule\n"):tex.index(r"\bottomrule")]
        assert all(line.endswith(r" \\") for line in body.splitlines()), f.name
    tex = (hostile["folder"] / "tables" / "estimand_lev.tex").read_text(encoding="utf-8")
    key_tex = (hostile["folder"] / "tables" / "label_keys.tex").read_text(encoding="utf-8")
    keys = _keys(hostile)
    for level in LEVELS:  # a long or multi-line level: its key here, written out in the keys
        assert latex_escape(keys.get(level, level)) in tex, level
        if level in keys:
            assert latex_escape(level) in key_tex and latex_escape(level) not in tex, level
    assert "\nbel\\textbackslash{}x07esc\\textbackslash{}x1b[31m & " in tex
    assert '\n=HYPERLINK("http://x") & ' in tex  # LaTeX shows the real value


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.ids += [v for k, v in attrs if k == "id"]


def test_html_ids_are_unique_and_the_names_appear_written_out(hostile):
    html = (hostile["folder"] / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", html)
    parser = _Ids()
    parser.feed(html)
    dup = {i for i in parser.ids if parser.ids.count(i) > 1}
    assert dup == set()
    assert f'id="fig-ppc_{safe_name("cond:llm")}"' in html and 'id="fig-ppc_cond_llm"' in html
    for name in [*LEVELS, *FACTORS]:
        shown = str(escape(visible(name)))
        assert shown in html, name


def _formula_cells(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        cells = [c for row in csv.reader(f) for c in row]
    bad = []
    for c in cells:
        if c[:1] in ("=", "+", "-", "@", "\t", "\r"):
            try:
                float(c)
            except ValueError:
                bad.append(c)
    return bad


def test_no_csv_cell_would_run_as_a_formula(hostile):
    estimands = hostile["folder"] / "estimands.csv"
    assert _formula_cells(estimands) == []
    text = estimands.read_text(encoding="utf-8")
    assert "'=HYPERLINK" in text and "'@SUM(A1)" in text and "'+cmd|x" in text
    assert "'-2+3" in text and ",-0." in text  # a negative number stays a number
    tables = sorted((hostile["folder"] / "tables").glob("*.csv"))
    assert len(tables) >= 10
    for f in tables:
        assert _formula_cells(f) == [], f.name
    # the CSV keeps the real name behind the quote (and its NUL)
    levels = pl.read_csv(estimands)["level"].to_list()
    assert "'" + LEVELS[10] in levels and "nul\x00here" in levels


def test_level_names_round_trip_through_posterior_nc(hostile):
    import xarray as xr

    from biasstats.inference.result import read_posterior

    path = hostile["folder"] / "posterior.nc"
    tree = read_posterior(path)
    assert set(tree.posterior[GROUP].values.tolist()) == set(LEVELS)
    assert "lev[T.nul\x00here]" in tree.posterior["coef"].values.tolist()
    with xr.open_datatree(path) as plain:
        assert plain.posterior[GROUP].sizes[GROUP] == len(LEVELS)


def test_neutralise_text_keeps_numbers():
    assert neutralise_text("-0.5") == "-0.5" and neutralise_text("-2+3") == "'-2+3"


def test_a_nul_in_a_column_name_is_one_line(tmp_path):
    (tmp_path / "d.csv").write_text("model,score\na,1.0\nb,2.0\n")
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.replace("`{escape}` + `{space}` + `{dollar}` + cond_llm + lev + "
                                 "(1|llm) + (1|cond:llm) + (1|`{group}`)", "`x\\u0000y`")
                    .replace('"h.csv"', '"d.csv"'))
    rc, printed = _run(["ingest", spec, "--out", tmp_path / "out"])
    assert rc == 2
    assert printed == (f"error: {spec}: [model] formula: formula names a column holding a NUL "
                       "character (\\x00), which neither the sampler's parameter names nor "
                       "NetCDF can hold; rename the column\n")
    assert not (tmp_path / "out").exists()


def test_a_factor_name_holding_a_colon_is_one_line_before_sampling(tmp_path):
    (tmp_path / "d.csv").write_text("model,cond:x,score\n" + "".join(
        f"m{i % 2},{'ab'[i % 3 > 0]},{i / 10}\n" for i in range(12)))
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.replace("`{escape}` + `{space}` + `{dollar}` + cond_llm + lev + "
                                 "(1|llm) + (1|cond:llm) + (1|`{group}`)", "`cond:x` + (1|llm)")
                    .replace('"h.csv"', '"d.csv"'))
    rc, printed = _run(["fit", spec, "--out", tmp_path / "out"])
    assert rc == 2
    assert printed == (f"error: {spec}: [model] formula: factor 'cond:x' holds ':', which "
                       "separates the factors of an interaction (a:b); give the column a name "
                       "without it (e.g. with [data.derive])\n")
    assert not (tmp_path / "out").exists()


def test_a_stem_written_twice_in_one_analysis_gets_its_own_files(tmp_path):
    """Two names that end in one stem (a hash collision, or two outputs of one name) never
    overwrite each other's files, and the page gives them different ids."""
    from biasstats.report.analysis import _Artifacts
    from biasstats.report.page import ReportContext, render_report

    art = _Artifacts(tmp_path)
    for level in ("first", "second"):
        art.table("ppc_x", pl.DataFrame({"Level": [level]}), f"caption {level}")
    art.table("a b", pl.DataFrame({"Level": ["third"]}), "caption third")
    names = [t.name for t in art.tables]
    assert names == ["ppc_x", "ppc_x-2", safe_name("a b")]
    assert pl.read_csv(tmp_path / "tables" / "ppc_x.csv")["Level"].to_list() == ["first"]
    assert pl.read_csv(tmp_path / "tables" / "ppc_x-2.csv")["Level"].to_list() == ["second"]
    assert r"\label{tab:ppc_x-2}" in (tmp_path / "tables" / "ppc_x-2.tex").read_text()
    # a page given two entries of one name (any caller of render_report) still has unique ids
    page = render_report(ReportContext(title="t", tables=[art.tables[0], art.tables[0],
                                                          art.tables[2]]))
    parser = _Ids()
    parser.feed(page)
    tab_ids = [i for i in parser.ids if i.startswith("tab-")]
    assert tab_ids == ["tab-ppc_x", "tab-ppc_x-2", f"tab-{safe_name('a b')}"]
