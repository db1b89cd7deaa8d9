"""A report with ``[[replication]]`` entries, within-strata estimands and prompts named by
their whole text (issue 21 items 4-5): the "Published vs reanalysis" table and figure, the
findings in the declared order, the long labels shown as keys everywhere but the key table.
Also: the shipped simulated analyses' published numbers are their truth."""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path

import polars as pl
import pytest

from biasstats.cli import main
from biasstats.simulate import designs

REPO = Path(__file__).resolve().parents[2]
TERM = "condition | test"
AVG = "average (equal weights)"


def _text(p: str) -> str:
    return f"Prompt {p}: the whole text of the prompt as the release names it, word for word."


def test_report_with_published_values_and_long_prompt_names(tmp_path):
    df, truth = designs.stratified_condition(seed=5, reps=6)
    df = df.with_columns(pl.col("prompt").map_elements(_text, return_dtype=pl.Utf8))
    df.write_csv(tmp_path / "d.csv")
    avg = truth[f"difference:{TERM}:treated − control@{AVG}"]
    (tmp_path / "s.toml").write_text(f"""[analysis]
name = "rep"
[data]
source = "d.csv"
outcome = "y"
[model]
formula = "y ~ 0 + test:condition + (1|prompt)"
family = "gaussian"
[fit]
chains = 2
tune = 200
draws = 200
[checks]
allow_failure = true
loo_pit = false
[effects]
unit = "points"
contrasts = ["{TERM}"]
by = ["test"]
reference = {{ condition = "control" }}
[[replication]]
estimand = "contrast:{TERM}"
stratum = "{AVG}"
level = "treated - control"
published = {avg}
se = 5.0
citation = "Paper (2025), Table 2"
[[replication]]
estimand = "contrast:{TERM}"
stratum = "t1"
level = "treated - control"
published = 500
citation = "Paper (2025), Table 3"
""")
    assert main(["report", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out" / "rep"
    rep = pl.read_csv(out / "tables" / "replication.csv")
    assert rep["Stratum"].to_list() == [AVG, "t1"]
    assert rep["Inside HDI"].to_list() == [True, False]  # the truth inside, 500 outside
    assert rep["Unit"].to_list() == ["points", "points"]
    assert rep["Ratio"][1] == pytest.approx(rep["Reanalysis"][1] / 500)
    assert (out / "tables" / "replication.tex").is_file()
    assert (out / "figures" / "replication.svg").is_file()
    keys = pl.read_csv(out / "tables" / "label_keys.csv")
    assert sorted(keys["Label"]) == sorted(df["prompt"].unique())
    assert set(keys["Key"]) == {f"P{i}" for i in range(1, keys.height + 1)}
    html = (out / "report.html").read_text()
    summary = html[html.index('id="summary"'):html.index('id="data"')]
    said = [re.sub(r"<[^>]+>", "", s).strip() for s in re.findall(r"<li>(.*?)</li>", summary,
                                                                    re.S)]
    said = [s for s in said if not s.startswith("The sampler did not converge")]  # tiny fit
    assert said[0].startswith("Condition treated − control within each test, averaged over "
                              "4 strata")  # declared first: contrasts, then by
    assert said[1].startswith("Mean y by test")
    assert said[2].startswith("Published vs reanalysis: 1 of 2 published values lie inside "
                              "the 95% HDI of the reanalysis")
    assert "outside: contrast condition | test, t1, treated − control (published 500" in said[2]
    assert said[3].startswith("Overall,")
    assert "Published vs reanalysis" in html and "published value" in html  # section, methods
    whole = _text("t1p0")
    assert whole not in summary
    for svg in (out / "figures").glob("*.svg"):
        assert whole not in svg.read_text(), svg.name  # keys on every axis


@pytest.mark.parametrize("name, truth_file", [
    ("simulated_tokens_strata", "sim_tokens_strata_truth.json"),
    ("simulated_ranking_audit", "sim_ranking_audit_truth.json")])
def test_shipped_published_numbers_are_the_simulations_truth(name, truth_file):
    """Each ``[[replication]]`` value of a shipped simulated analysis is its true value as a
    paper prints it (rounded), and its interval holds the truth."""
    spec = tomllib.loads((REPO / "analyses" / f"{name}.toml").read_text())
    truth = json.loads((REPO / "data" / truth_file).read_text())
    assert len(spec["replication"]) >= 5
    for e in spec["replication"]:
        kind, term = e["estimand"].split(":", 1)
        level = e["level"].replace(" - ", " − ")
        scale = (("ratio" if " / " in level else "difference") if kind == "contrast" else
                 "ratio_to_reference" if kind == "impact" and " / " in level
                 and level != "min / max" else kind)
        t = truth[f"{scale}:{term}:{level}@{e['stratum']}"]
        digits = len(str(e["published"]).split(".")[1]) if "." in str(e["published"]) else 0
        assert e["published"] == pytest.approx(t, abs=0.51 * 10 ** -digits), e
        if "interval" in e or "se" in e:
            lo, hi = e.get("interval") or (e["published"] - 1.96 * e["se"],
                                           e["published"] + 1.96 * e["se"])
            assert lo < t < hi, e
        assert math.isfinite(e["published"]) and e["citation"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["simulated_tokens_strata", "simulated_ranking_audit"])
def test_shipped_analysis_passes_its_gate_and_holds_its_published_truth(name, tmp_path):
    """The whole shipped report (about 25 s of CPU each): the convergence gate passes and
    every published value (the truth) lies inside the reanalysis' 95% HDI."""
    assert main(["report", str(REPO / "analyses" / f"{name}.toml"), "--out",
                 str(tmp_path)]) == 0
    rep = pl.read_csv(tmp_path / name / "tables" / "replication.csv")
    assert rep.height >= 5 and rep["Inside HDI"].all()
