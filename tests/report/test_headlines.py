"""Headlines state what was declared (issue 21 item 4): the findings lead with the declared
estimands in the spec's order; a grouping factor is never ranked or led with unless asked;
long level names become short keys with a key table, and no sentence quotes one whole."""

from __future__ import annotations

import dataclasses
import re

import polars as pl
import pytest

import biasstats
from biasstats.effects.estimands import compute_estimands, default_request
from biasstats.report.estimand_outputs import Wording, estimand_outputs
from biasstats.report.figures import strata_panels
from biasstats.report.headlines import estimand_findings
from biasstats.report.labels import is_long, label_keys, shortened
from biasstats.report.style import DOUBLE_COLUMN
from biasstats.spec import load_spec
from biasstats.spec.declared import declared_estimands

WORDS = Wording(label="y", unit="points", scale="mean")
SPEC = """[data]
source = "d.csv"
outcome = "y"
[model]
formula = "y ~ condition + x + (1|prompt)"
family = "gaussian"
[effects]
{effects}
"""


def _declared(tmp_path, effects: str):
    p = tmp_path / "s.toml"
    p.write_text(SPEC.format(effects=effects))
    return declared_estimands(load_spec(p))


def _kind(sentence: str) -> str:
    """Which estimand a sentence states (the sentences' fixed wording)."""
    if sentence.startswith("One unit more of x"):
        return "slope"
    if sentence.startswith("condition treated − control"):
        return "contrast"
    if sentence.startswith("Mean y by condition"):
        return "by"
    if "has the highest" in sentence:
        return "rank"
    if sentence.startswith("Overall"):
        return "overall"
    return "other: " + sentence


def test_headline_order_follows_the_declaration_order(gaussian_fit, tmp_path):
    # designs.gaussian_condition(seed=2), "y ~ condition + x + (1|prompt)" (tests/conftest.py)
    fit, _, _ = gaussian_fit
    est = biasstats.estimands(fit, by=["condition", "prompt"], contrasts=["condition"],
                              slopes=["x"], rank="prompt")
    for effects, order in [
        ('slopes = ["x"]\nby = ["condition"]\ncontrasts = ["condition"]\nrank = "prompt"',
         ["slope", "by", "contrast", "rank", "overall"]),
        ('rank = "prompt"\ncontrasts = ["condition"]\nby = ["condition"]\nslopes = ["x"]',
         ["rank", "contrast", "by", "slope", "overall"]),
        ('contrasts = ["condition"]',  # the rest: overall, then the formula's slopes
         ["contrast", "overall", "slope"]),
    ]:
        said = estimand_findings(est, WORDS, _declared(tmp_path, effects))
        assert [_kind(s) for s in said] == order, said
    # what comes after the declared ones, before the overall mean
    said = estimand_findings(est, WORDS, _declared(tmp_path, 'slopes = ["x"]'),
                             after_declared=["Published vs reanalysis: ..."])
    assert said[:3] == [said[0], "Published vs reanalysis: ...", said[2]]
    assert _kind(said[0]) == "slope" and _kind(said[2]) == "overall"


class _Recorder:
    """Stands in for the report's artefact collector: the names of the tables, in order."""

    def __init__(self):
        self.tables: list[str] = []

    def table(self, name, df, caption, **_):
        if df is not None and df.height:
            self.tables.append(name)

    def figure(self, *_, **__):
        pass


def test_report_tables_follow_the_declaration_order(gaussian_fit, tmp_path):
    """The estimand tables (and so their CSV / LaTeX files and numbering) come in the order
    [effects] writes its keys, not the fixed default order (means, contrasts, slopes,
    ranks); what was not declared follows, the overall mean first."""
    fit, _, _ = gaussian_fit
    est = biasstats.estimands(fit, by=["condition", "prompt"], contrasts=["condition"],
                              slopes=["x"], rank="prompt")
    default = _Recorder()
    estimand_outputs(default, est, WORDS, declared=None)
    assert default.tables == ["estimand_overall", "estimand_condition", "estimand_prompt",
                              "contrasts_condition", "slopes", "ranks_prompt"]
    for effects, order in [
        ('rank = "prompt"\nslopes = ["x"]\ncontrasts = ["condition"]\n'
         'by = ["prompt", "condition"]',
         ["ranks_prompt", "slopes", "contrasts_condition", "estimand_prompt",
          "estimand_condition", "estimand_overall"]),
        ('slopes = ["x"]',  # the rest after the declared, in the default order
         ["slopes", "estimand_overall", "estimand_condition", "estimand_prompt",
          "contrasts_condition", "ranks_prompt"]),
    ]:
        art = _Recorder()
        estimand_outputs(art, est, WORDS, declared=_declared(tmp_path, effects))
        assert art.tables == order, (effects, art.tables)


def test_a_grouping_factor_is_never_ranked_or_led_with_unless_asked(gaussian_fit, tmp_path):
    fit, _, _ = gaussian_fit
    assert default_request(fit.spec).rank is None
    est = compute_estimands(fit)  # the default request: no [effects]
    assert est.ranks.height == 0
    assert "prompt" in est.request.by  # its means are tabled ...
    said = estimand_findings(est, WORDS, _declared(tmp_path, ""))
    assert not any("prompt" in s for s in said), said  # ... never said
    assert [_kind(s) for s in said] == ["overall", "contrast", "slope"]
    asked = biasstats.estimands(fit, rank="prompt", by=["prompt"])
    said = estimand_findings(asked, WORDS, _declared(tmp_path, 'rank = "prompt"'))
    assert _kind(said[0]) == "rank" and "among the levels of prompt" in said[0]


LONG = ["Here is a list of words about race. For each word, choose a group (template 1).",
        "Here is a list of words about race. For each word, choose a group (template 2).",
        "Pick one:\nA or B"]


def test_long_labels_get_keys_and_a_key_table():
    cells = pl.DataFrame({"prompt": [*LONG, "short one", "P1"],
                          "condition": ["a", "b", "a", "b", "a"]})
    keys = label_keys(cells, ["prompt", "condition"])
    assert [is_long(x) for x in (*LONG, "short one")] == [True, True, True, False]
    # "P1" is a real level, so the keys take another prefix
    assert {lab: k for lab, (_, k) in keys.keys.items()} == {LONG[0]: "PR1", LONG[1]: "PR2",
                                                            LONG[2]: "PR3"}
    assert keys.short(f"{LONG[1]} − {LONG[0]}") == "PR2 − PR1"
    assert keys.short(f"m1:{LONG[2]}") == "m1:PR3"
    assert keys.short("short one") == "short one"
    assert keys.table().rows() == [("prompt", "PR1", LONG[0]), ("prompt", "PR2", LONG[1]),
                                   ("prompt", "PR3", LONG[2])]
    assert not label_keys(cells, ["condition"])  # nothing long: no keys, no key table


def test_sentences_never_quote_a_long_label(gaussian_fit, tmp_path):
    fit, df, _ = gaussian_fit
    est = biasstats.estimands(fit, by=["prompt"], rank="prompt")
    # the fit's prompts are p00 ...: name them as a release would, by their whole text
    text = {p: f"{p}: the whole text of a prompt, far too long for a figure's axis"
            for p in df["prompt"].unique()}
    named = dataclasses.replace(est, means=est.means.with_columns(pl.col("level").replace(text)),
                                ranks=est.ranks.with_columns(pl.col("level").replace(text)))
    declared = _declared(tmp_path, 'by = ["prompt"]\nrank = "prompt"')
    unkeyed = estimand_findings(named, WORDS, declared)
    assert any(t in s for s in unkeyed for t in text.values())  # what the keys prevent
    keys = label_keys(pl.DataFrame({"prompt": list(text.values())}), ["prompt"])
    said = estimand_findings(shortened(named, keys), WORDS, declared)
    assert not any(t in s for s in said for t in text.values())
    assert re.search(r"\bP\d+ has the highest mean y among the levels of prompt", said[1])
    assert re.search(r"ranges from P\d+, .* to P\d+, ", said[0])


def test_strata_panels_are_a_double_column_figure():
    rows = [{"stratum": s, "level": lv, "mean": m, "hdi_low": m - 1, "hdi_high": m + 1,
             "hdi_prob": 0.95}
            for s in ("m1:t1", "m1:t2", "m2:t1", "m2:t2", "average (equal weights)")
            for lv, m in (("b − a", 3.0),)]
    fig = strata_panels(pl.DataFrame(rows), xlabel="Difference (tokens)", ref=0.0)
    assert fig.get_figwidth() == pytest.approx(DOUBLE_COLUMN)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    titles = ["".join(ax.get_title(loc=where) for where in ("left", "center", "right"))
              for ax in visible]
    assert titles == ["m1:t1", "m1:t2", "m2:t1", "m2:t2", "average (equal weights)"]
    assert len(visible) == 5 and len(fig.axes) == 6  # 3 per row, the sixth hidden
    lo, hi = visible[0].get_xlim()
    assert lo < 0 < 2 < 4 < hi  # the reference and every interval on the shared axis
