"""The rendering layer of the report: figures, tables and the HTML page, from fake inputs.

The inputs imitate the real ones (8 LLMs x 21 stereotypes in 4 categories, long effects table
on two scales, ranks, variance shares, grouped predictive checks, diagnostics, a ledger, the
frequentist cross-check) without touching the model code.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib as mpl
import matplotlib.image as mimage
import numpy as np
import polars as pl
import pytest

from biasstats.ingest.ledger import build_ledger
from biasstats.report import figures as F
from biasstats.report.page import (
    FigureEntry,
    ModelInfo,
    ReportContext,
    TableEntry,
    inline_svg,
    render_report,
    write_report,
)
from biasstats.report.style import DOUBLE_COLUMN, PNG_DPI, SINGLE_COLUMN, save_figure
from biasstats.report.tables import format_effects_table, to_latex, write_table
from biasstats.studies.bai2024.figures import category_forest

# ----------------------------------------------------------------------------- fake inputs

LLMS = [
    "GPT-4",
    "GPT-3.5-turbo",
    "Claude-3-Opus",
    "Claude-3-Sonnet",
    "LLaMA2-70B",
    "LLaMA2-13B",
    "LLaMA2-7B",
    "Alpaca-7B",
]
LLM_BIAS = [0.398, 0.253, 0.416, 0.397, 0.294, 0.192, 0.029, 0.139]
STEREOTYPES = {
    "race": [
        "racism",
        "guilt",
        "skintone",
        "weapon",
        "black",
        "hispanic",
        "asian",
        "arab",
        "english",
    ],
    "gender": ["career", "science", "power", "sexuality"],
    "religion": ["islam", "judaism", "buddhism"],
    "health": ["disability", "weight", "age", "mentalill", "eating"],
}
CATEGORY_OF = {s: c for c, ss in STEREOTYPES.items() for s in ss}
ROPE = {"bias": (-0.05, 0.05), "probability": (0.475, 0.525)}


def _verdict(lo: float, hi: float, rope: tuple[float, float]) -> str:
    if lo > rope[1] or hi < rope[0]:
        return "biased"
    if lo >= rope[0] and hi <= rope[1]:
        return "practically unbiased"
    return "undecided"


def fake_effects(llms=LLMS, stereotypes=CATEGORY_OF, seed: int = 0) -> pl.DataFrame:
    """The long effects table on the "bias" and "probability" scales."""
    rng = np.random.default_rng(seed)
    rows = []

    def add(term: str, level: str, bias: float, sd: float) -> None:
        for scale in ("bias", "probability"):
            m, s = (bias, sd) if scale == "bias" else ((bias + 1) / 2, sd / 2)
            lo, hi = m - 1.96 * s, m + 1.96 * s
            rope = ROPE[scale]
            rows.append(
                {
                    "term": term,
                    "level": level,
                    "scale": scale,
                    "mean": m,
                    "sd": s,
                    "hdi_low": lo,
                    "hdi_high": hi,
                    "hdi_prob": 0.95,
                    "p_positive": float(rng.uniform()),
                    "rope_low": rope[0],
                    "rope_high": rope[1],
                    "verdict": _verdict(lo, hi, rope),
                    "n_obs": int(rng.integers(200, 4000)),
                }
            )

    llm_b = {name: LLM_BIAS[i % len(LLM_BIAS)] for i, name in enumerate(llms)}
    for name, b in llm_b.items():
        add("llm", name, b, 0.03)
    for cat in dict.fromkeys(stereotypes.values()):
        add("category", cat, float(rng.normal(0.25, 0.1)), 0.05)
    st_b = {s: float(rng.normal(0.25, 0.25)) for s in stereotypes}
    st_b["asian"] = 0.01
    for s, b in st_b.items():
        add("stereotype", s, b, 0.015 if s == "asian" else 0.06)
    for name in llms:
        for s in stereotypes:
            b = float(np.clip(llm_b[name] + st_b[s] - 0.25 + rng.normal(0, 0.08), -0.99, 0.99))
            add("llm:stereotype", f"{name}:{s}", b, 0.08)
    return pl.DataFrame(rows)


def fake_ranks() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "llm": LLMS,
            "rank_mean": [2.1, 5.0, 1.6, 2.4, 4.1, 6.0, 8.0, 6.9],
            "rank_low": [1, 4, 1, 1, 3, 5, 7, 6],
            "rank_high": [4, 6, 3, 4, 5, 7, 8, 8],
            "p_best": [0.30, 0.0, 0.45, 0.25, 0.0, 0.0, 0.0, 0.0],
        }
    )


def fake_vd() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "component": ["llm", "category", "stereotype", "variant", "residual"],
            "share_mean": [0.18, 0.05, 0.32, 0.03, 0.42],
            "share_low": [0.08, 0.0, 0.20, 0.01, 0.35],
            "share_high": [0.30, 0.15, 0.45, 0.07, 0.50],
        }
    )


def fake_ppc(seed: int = 1) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    rows, reps = [], {}
    for name, b in zip(LLMS, LLM_BIAS, strict=True):
        p = (b + 1) / 2
        draws = rng.normal(p, 0.02, 400)
        reps[name] = draws
        observed = p + (0.06 if name == "Alpaca-7B" else float(rng.normal(0, 0.01)))
        rows.append(
            {
                "group_term": "llm",
                "level": name,
                "observed": observed,
                "rep_mean": float(draws.mean()),
                "rep_low": float(np.quantile(draws, 0.025)),
                "rep_high": float(np.quantile(draws, 0.975)),
                "p_value": float(np.mean(draws >= observed)),
            }
        )
    return pl.DataFrame(rows), reps


def fake_cross() -> pl.DataFrame:
    rows = []
    for name, b in zip(LLMS, LLM_BIAS, strict=True):
        rows.append(
            {
                "group_term": "llm",
                "level": name,
                "n": 4200,
                "t_mean": b + 0.01,
                "t_ci_low": b - 0.02,
                "t_ci_high": b + 0.04,
                "t_stat": 25.0 * b,
                "p_value": 1e-9,
                "glm_estimate": b,
                "glm_se_cluster": 0.02,
                "posterior_mean": b,
                "posterior_low": b - 0.05,
                "posterior_high": b + 0.05,
            }
        )
    return pl.DataFrame(rows)


def fake_diagnostics(passed: bool) -> dict:
    thresholds = {
        "max_rhat": 1.01,
        "min_ess_bulk": 400,
        "min_ess_tail": 400,
        "divergences": 0,
        "min_bfmi": 0.2,
    }
    if passed:
        values = {"max_rhat": 1.004, "min_ess_bulk": 812.0, "min_ess_tail": 655.0, "divergences": 0}
        failures: list[str] = []
    else:
        values = {"max_rhat": 1.08, "min_ess_bulk": 95.0, "min_ess_tail": 310.0, "divergences": 7}
        failures = ["R-hat 1.080 > 1.01 for sd_llm", "7 divergent transitions"]
    return {
        **values,
        "min_bfmi": 0.41,
        "thresholds": thresholds,
        "passed": passed,
        "failures": failures,
    }


def fake_param_summary() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "parameter": ["Intercept", "sd_llm", "sd_stereotype", "sd_variant"],
            "mean": [0.61, 0.31, 0.58, 0.05],
            "sd": [0.11, 0.06, 0.09, 0.03],
            "hdi_low": [0.40, 0.20, 0.41, 0.0],
            "hdi_high": [0.82, 0.43, 0.76, 0.11],
            "r_hat": [1.001, 1.08, 1.004, 1.002],
            "ess_bulk": [1510.0, 95.0, 902.0, 640.0],
            "ess_tail": [1233.0, 310.0, 800.0, 512.0],
        }
    )


def fake_ledger():
    statuses = ["ok"] * 4100 + ["refused"] * 60 + ["unparseable"] * 40
    reasons = [None] * 4100 + ["declined to answer"] * 60 + ["word not in the list"] * 40
    return build_ledger(
        "result_gpt4o/*.csv",
        pl.DataFrame({"status": statuses, "reason": reasons}),
        notes=("refusals are kept as their own outcome",),
    )


def build_figures(folder: Path) -> dict[str, tuple[dict[str, Path], float]]:
    """Every figure type saved under ``folder``: name → (files, expected width in inches)."""
    eff = fake_effects()
    ppc, reps = fake_ppc()
    made = {
        "forest_llm": (F.forest(eff, "llm", "bias"), SINGLE_COLUMN),
        "forest_stereotype_prob": (F.forest(eff, "stereotype", scale="probability"), SINGLE_COLUMN),
        "heatmap_llm_stereotype": (
            F.heatmap(eff, "llm", "stereotype", "bias", category_of=CATEGORY_OF), DOUBLE_COLUMN),
        "category_forest": (category_forest(eff, CATEGORY_OF), SINGLE_COLUMN),
        "ppc_llm": (F.ppc_grouped(ppc, "llm", replicated=reps), SINGLE_COLUMN),
        "variance": (F.variance_decomposition(fake_vd()), SINGLE_COLUMN),
        "ranks": (F.ranks(fake_ranks()), SINGLE_COLUMN),
        "crosscheck_llm": (
            F.crosscheck(fake_cross(), "llm", xlabel="Bias (−1 … +1)"),
            SINGLE_COLUMN,
        ),
    }
    return {name: (save_figure(fig, folder, name), width) for name, (fig, width) in made.items()}


SECTION_OF = {
    "forest_llm": "effects",
    "forest_stereotype_prob": "effects",
    "heatmap_llm_stereotype": "effects",
    "category_forest": "effects",
    "ppc_llm": "ppc",
    "variance": "variance",
    "ranks": "ranks",
    "crosscheck_llm": "crosscheck",
}


def make_context(folder: Path, figures: dict, passed: bool) -> ReportContext:
    """A full report context over saved figures (tables are written under ``folder``)."""
    eff = fake_effects()
    llm_table = format_effects_table(eff, "llm", "bias", p_label="P(bias > 0)")
    tables = [
        TableEntry(
            "effects_llm",
            llm_table,
            "Bias by LLM (posterior mean, 95% HDI).",
            files=write_table(
                llm_table, folder / "tables", "effects_llm", "Bias by LLM", "tab:effects_llm"
            ),
        ),
        TableEntry("ranks", fake_ranks(), "Posterior ranks.", section="ranks"),
        TableEntry("variance", fake_vd(), "Variance shares.", section="variance"),
        TableEntry("crosscheck", fake_cross(), "t-tests vs the posterior.", section="crosscheck"),
    ]
    figs = [
        FigureEntry(
            name,
            files,
            caption=f"Caption of {name}.",
            alt=f"Figure {name}",
            section=SECTION_OF[name],
        )
        for name, (files, _) in figures.items()
    ]
    return ReportContext(
        title="Implicit bias of eight LLMs",
        analysis="bai2024_iat",
        generated="biasstats (test)",
        findings=[
            "All eight LLMs show a positive implicit bias; LLaMA2-7B is undecided.",
            "Stereotype explains more variance than the LLM (32% vs 18%).",
        ],
        diagnostics=fake_diagnostics(passed),
        diagnostics_table=fake_param_summary(),
        ledger=fake_ledger(),
        model=ModelInfo(
            formula="congruent ~ 1 + (1|llm) + (1|category/stereotype) + (1|variant)",
            family="bernoulli",
            link="logit",
            priors={"Intercept": "Normal(0, 1.5)", "sd_*": "HalfNormal(1)"},
            sampler={"sampler": "nutpie", "chains": 4, "draws": 1000, "tune": 1000, "seed": 20240},
        ),
        figures=figs,
        tables=tables,
        crosscheck_note="The authors' one-sample t-tests agree in sign for every LLM.",
        methods="We fitted a hierarchical Bernoulli model (logit link) <with> partial pooling & R-hat.",
        extra_files=[("Trial table (Parquet)", folder / "trials.parquet")],
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("report") / "figures"
    return folder, build_figures(folder)


# ----------------------------------------------------------------------------- figures


def test_every_figure_saves_pdf_svg_png_that_parse(saved):
    folder, figures = saved
    assert set(figures) == set(SECTION_OF)
    for name, (files, width_in) in figures.items():
        assert set(files) == {"pdf", "svg", "png"}
        for fmt, path in files.items():
            assert path == folder / f"{name}.{fmt}" and path.is_file()
        root = ET.parse(files["svg"]).getroot()
        assert root.tag.endswith("svg"), name
        svg = files["svg"].read_text(encoding="utf-8")
        assert "<text" in svg, f"{name}: text must stay text in SVG (svg.fonttype none)"
        pdf = files["pdf"].read_bytes()
        assert pdf.startswith(b"%PDF") and pdf.rstrip().endswith(b"%%EOF"), name
        assert b"/FontFile2" in pdf, f"{name}: PDF fonts must be embedded TrueType (type 42)"
        png = mimage.imread(files["png"])
        assert png.shape[1] == round(width_in * PNG_DPI), name  # 1050 px / 2130 px
        assert 200 < png.shape[0] < 3000, name
    # no temporary files left behind by the atomic writes
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_same_input_gives_byte_identical_svg_and_pdf(tmp_path):
    eff = fake_effects(llms=LLMS[:4], stereotypes=dict(list(CATEGORY_OF.items())[:7]))
    out = []
    for run in ("a", "b"):
        fmts = ("svg", "pdf")  # PNG is raster: only the vector formats must be byte-identical
        out.append(save_figure(F.forest(eff, "llm", "bias"), tmp_path / run, "forest",
                               formats=fmts))
        heat = F.heatmap(eff, "llm", "stereotype", "bias", category_of=CATEGORY_OF)
        out.append(save_figure(heat, tmp_path / run, "heat", formats=fmts))
    for name in ("forest", "heat"):
        for fmt in ("svg", "pdf"):
            a = (tmp_path / "a" / f"{name}.{fmt}").read_bytes()
            b = (tmp_path / "b" / f"{name}.{fmt}").read_bytes()
            assert a == b, f"{name}.{fmt} differs between identical runs"


def test_style_is_scoped_and_failed_save_leaves_nothing(tmp_path):
    before = {
        k: mpl.rcParams[k] for k in ("svg.fonttype", "pdf.fonttype", "font.size", "svg.hashsalt")
    }
    fig = F.variance_decomposition(fake_vd())
    save_figure(fig, tmp_path, "ok")
    after = {k: mpl.rcParams[k] for k in before}
    assert before == after

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    fig.savefig = boom
    with pytest.raises(RuntimeError):
        save_figure(fig, tmp_path, "broken")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.pdf", "ok.png", "ok.svg"]


def test_figure_inputs_are_checked():
    eff = fake_effects(llms=LLMS[:2], stereotypes={"racism": "race"})
    with pytest.raises(ValueError, match="no effects for term 'variant'.*available: .*llm/bias"):
        F.forest(eff, "variant", "bias")
    with pytest.raises(ValueError, match="unknown scale"):
        F.forest(eff, "llm", scale="percent")


def test_heatmap_splits_llm_names_containing_colons():
    eff = fake_effects(
        llms=["llama2:13b", "gpt-4o"], stereotypes={"racism": "race", "career": "gender"}
    )
    fig = F.heatmap(eff, "llm", "stereotype", "bias")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert sorted(labels) == ["gpt-4o", "llama2:13b"]
    xlabels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert sorted(xlabels) == ["career", "racism"]


# ----------------------------------------------------------------------------- tables

EXPECTED_TEX = r"""\begin{table}[htbp]
\centering
\caption{Bias \& refusals: 95\% HDI, \#trials, \$cost, under\_score}
\label{tab:small_one}
\begin{tabular}{lrrrl}
\toprule
group\_term & estimate & hdi & p\_value & note \\
\midrule
R\&D\_team & 0.42 & [0.31, 0.53] & \textless{}0.001 & 50\% \#1 \\
A\$B & $-$0.05 & [$-$0.12, 0.02] & 0.250 & x\_y \\
\bottomrule
\end{tabular}
\end{table}
"""


def small_table() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "group_term": ["R&D_team", "A$B"],
            "estimate": [0.4213, -0.0487],
            "hdi_low": [0.3125, -0.1249],
            "hdi_high": [0.5311, 0.0199],
            "p_value": [0.0000123, 0.25],
            "note": ["50% #1", "x_y"],
        }
    )


def test_latex_table_is_exact(tmp_path):
    caption = "Bias & refusals: 95% HDI, #trials, $cost, under_score"
    assert to_latex(small_table(), caption, "tab:small_one") == EXPECTED_TEX
    files = write_table(small_table(), tmp_path, "small", caption, "tab:small_one", float_digits=2)
    assert files == {"csv": tmp_path / "small.csv", "tex": tmp_path / "small.tex"}
    assert files["tex"].read_text(encoding="utf-8") == EXPECTED_TEX
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.csv", "small.tex"]


def test_write_table_honours_column_digits(tmp_path):
    df = pl.DataFrame({"parameter": ["sd_llm"], "r_hat": [1.00234], "ess_bulk": [812.6]})
    files = write_table(df, tmp_path, "diag", "Diagnostics", "tab:diag", float_digits=2,
                        column_digits={"r_hat": 4, "ess_bulk": 0})
    tex = files["tex"].read_text(encoding="utf-8")
    assert tex == to_latex(df, "Diagnostics", "tab:diag", 2,
                           column_digits={"r_hat": 4, "ess_bulk": 0})
    assert "1.0023" in tex and "813" in tex and "812.6" not in tex


def test_csv_round_trips(tmp_path):
    df = small_table().with_columns(pl.Series("n", [50, 7]))
    files = write_table(df, tmp_path, "rt", "caption", "tab:rt")
    back = pl.read_csv(files["csv"])
    assert back.columns == df.columns
    assert back.equals(df)


def test_format_effects_table():
    eff = fake_effects()
    t = format_effects_table(eff, "llm", "bias", p_label="P(bias > 0)")
    assert t.columns == ["Level", "Mean", "95% HDI", "P(bias > 0)", "Verdict", "n"]
    assert t.height == 8
    assert t["Mean"].to_list() == sorted(t["Mean"].to_list(), reverse=True)
    assert t["Level"][0] == "Claude-3-Opus"
    assert re.fullmatch(r"\[\u2212?\d\.\d\d, \u2212?\d\.\d\d\]", t["95% HDI"][0])
    tex = to_latex(t, "Bias by LLM", "tab:llm")
    assert r"95\% HDI & P(bias \textgreater{} 0)" in tex
    assert r"\begin{tabular}{lrrrlr}" in tex


# ----------------------------------------------------------------------------- HTML page

SECTION_IDS = [
    "summary",
    "data",
    "model",
    "diagnostics",
    "effects",
    "ranks",
    "ppc",
    "variance",
    "crosscheck",
    "methods",
    "files",
]
EXTERNAL = re.compile(r"""(?:src|href|xlink:href|action)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


@pytest.mark.parametrize("passed", [True, False])
def test_html_report_is_complete_and_self_contained(saved, passed):
    folder, figures = saved
    site = folder.parent  # the page sits beside figures/ and tables/
    ctx = make_context(site, figures, passed)
    page = write_report(ctx, site / f"report_{passed}.html").read_text(encoding="utf-8")
    for sid in SECTION_IDS:
        assert f'<section id="{sid}"' in page, sid
    assert page.count("<svg") == len(figures)
    assert page.count('role="img"') == len(figures)
    # offline: no external resources, no scripts, no URL at all
    assert not EXTERNAL.search(page)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower() and "<link" not in page.lower()
    # ids are unique although eight matplotlib SVGs share one page
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    # the red banner iff diagnostics failed
    assert ('class="banner fail"' in page) is (not passed)
    assert ('class="banner ok"' in page) is passed
    if not passed:
        assert "7 divergent transitions" in page and 'role="alert"' in page
        assert page.index('class="banner fail"') < page.index('id="summary"')
    # user text is escaped; links are relative to the page
    assert "&lt;with&gt; partial pooling &amp; R-hat" in page
    assert 'href="figures/forest_llm.pdf"' in page and 'href="tables/effects_llm.tex"' in page
    assert str(site) not in page
    # headings: one h1, sections are h2
    assert page.count("<h1") == 1 and page.count("<h2") == len(SECTION_IDS)
    assert '<th scope="col"' in page and "@media print" in page


def test_html_sections_are_omitted_without_inputs():
    page = render_report(ReportContext(title="Nothing yet"))
    assert "<h1>Nothing yet</h1>" in page
    assert "<section" not in page and "banner" not in page.split("</style>")[1]


def test_inline_svg_prefixes_ids_and_drops_namespaces(saved):
    _, figures = saved
    svg = figures["heatmap_llm_stereotype"][0]["svg"].read_text(encoding="utf-8")
    out = inline_svg(svg, "svg-heat", "A heatmap")
    assert out.startswith("<svg ") and '<title id="svg-heat-title">A heatmap</title>' in out
    assert "xmlns" not in out and "<?xml" not in out and "<metadata" not in out
    for ref in re.findall(r'href="#([^"]+)"', out) + re.findall(r"url\(#([^)]+)\)", out):
        assert ref.startswith("svg-heat-") and f'id="{ref}"' in out


def test_pandas_inputs_are_accepted(tmp_path):
    fig = F.variance_decomposition(fake_vd().to_pandas())
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][-1] == "Residual"
    files = write_table(fake_vd().to_pandas(), tmp_path, "vd", "Variance shares", "tab:vd")
    assert pl.read_csv(files["csv"]).equals(fake_vd())
    assert r"\begin{tabular}{lrr}" in files["tex"].read_text(encoding="utf-8")  # share = [lo, hi]
