"""Derived estimands in the report and in ``biasstats effects`` (issue 21, items 3-4): the
"Derived estimands" table as CSV and LaTeX, small multiples for a derived estimand with
several strata, its findings sentences in declared order, its rows in estimands.parquet, and
the terminal sections of ``biasstats effects`` from the cached posterior."""

from __future__ import annotations

import re

import polars as pl

from biasstats.cli import main
from biasstats.simulate import qa_design

SPEC = """
[analysis]
name = "qa"
[data]
source = "qa.csv"
outcome = "answer"
outcome_type = "label"
[model]
formula = "answer ~ category*context + (1|question)"
family = "categorical"
[model.centered]
question = false
[fit]
chains = 2
tune = 150
draws = 150
[checks]
allow_failure = true
loo = false
loo_pit = false
[effects]
by = []
contrasts = []
[effects.derived.gap]
expr = "P('biased', context='ambiguous') - P('anti', context='ambiguous')"
label = "ambiguous-context gap"
[effects.derived.dis]
score = "qa_bias_disambiguated"
within = "category:context"
rope = 0.05
"""


def test_derived_estimands_in_the_report_and_the_effects_command(tmp_path, capsys):
    df, truth = qa_design.qa_bias(seed=3, categories=("age", "race"), questions=3, reps=20)
    df.write_csv(tmp_path / "qa.csv")
    (tmp_path / "qa.toml").write_text(SPEC)
    out = tmp_path / "out"
    assert main(["report", str(tmp_path / "qa.toml"), "--out", str(out)]) in (0, 1)
    folder = out / "qa"
    table = pl.read_csv(folder / "tables" / "derived.csv")
    # declared order: gap (one stratum), then dis in each category x context
    assert table["Stratum"].to_list() == ["all", "age:ambiguous", "age:disambiguated",
                                          "race:ambiguous", "race:disambiguated"]
    assert table["Estimand"].to_list() == ["ambiguous-context gap"] + ["bias score s_DIS"] * 4
    tex = (folder / "tables" / "derived.tex").read_text()
    assert "\\label{tab:derived}" in tex and "bias score s\\_DIS" in tex
    assert (folder / "figures" / "derived_dis.svg").is_file()
    assert not (folder / "figures" / "derived_gap.svg").exists()  # one stratum: no panels
    html = (folder / "report.html").read_text()
    gap = html.index("Ambiguous-context gap is ")
    dis = html.index("Bias score s_DIS (−1 to 1) by category:context (95% HDI): age:ambiguous")
    assert gap < dis
    rows = pl.read_parquet(folder / "estimands.parquet").filter(pl.col("estimand") == "derived")
    assert rows.height == 5 and set(rows["unit"]) == {"", "−1 to 1"}
    # each stratum's interval against the design's truth: most cover it (tiny fit, 95% HDIs)
    dis_rows = rows.filter(pl.col("term") == "dis")
    inside = [r["hdi_low"] <= truth[f"derived:bias_disambiguated:{r['level']}"] <= r["hdi_high"]
              for r in dis_rows.iter_rows(named=True)]
    assert sum(inside) >= 3, dis_rows
    # biasstats effects: the cached posterior, a section per kind, the derived rows written
    capsys.readouterr()
    assert main(["effects", str(tmp_path / "qa.toml"), "--out", str(folder),
                 "--csv", str(tmp_path / "e.csv")]) == 0
    printed = capsys.readouterr().out
    assert "\nderived estimands\n" in printed and "\nmarginal means\n" in printed
    line = next(ln for ln in printed.splitlines() if "race:disambiguated" in ln)
    assert re.search(r"dis .*race:disambiguated .*\[-?\d\.\d+, \d\.\d+\]", line), line
    written = pl.read_csv(tmp_path / "e.csv").filter(pl.col("estimand") == "derived")
    assert written.select("term", "level").rows() == rows.select("term", "level").rows()
    assert (folder / "estimands.parquet").is_file()
