"""``[[replication]]`` of a derived estimand (``estimand = "derived:<name>"``, ``level`` its
stratum): the address checked when the spec loads and before sampling, and the comparison
made from the derived estimand's own draws and null."""

from __future__ import annotations

import numpy as np
import pytest

import biasstats
from biasstats.effects.replication import compare_published, expected_rows, match_entries
from biasstats.errors import SpecError
from biasstats.spec.replication import ReplicationSpec

DERIVED = {"s": {"score": "qa_bias_disambiguated", "within": "condition",
                 "categories": {"biased": "refuse", "anti": "comply"}}}


def _entries(*raw):
    return [ReplicationSpec(**r) for r in raw]


def test_a_derived_estimand_is_compared_with_its_published_value(categorical_fit):
    fit = categorical_fit[0]
    est = biasstats.estimands(fit, by=["condition"], contrasts=["condition"], rank=None,
                              derived=DERIVED)
    strata, s = est.draws["derived:s"]
    truth = float(s[:, 1].mean())
    entries = _entries({"estimand": "derived:s", "level": strata[1], "published": truth,
                        "citation": "posterior mean"},
                       {"estimand": "derived:s", "level": strata[0], "published": 5.0,
                        "citation": "wild"})
    # the rows are known before sampling, and the address is found among them
    rows = expected_rows(est.request, fit.spec)
    assert match_entries(entries, rows) is not None
    table = compare_published(est, entries)
    near, wild = table.row(0, named=True), table.row(1, named=True)
    assert near["mean"] == pytest.approx(truth) and near["inside"] and not wild["inside"]
    assert near["ratio"] == pytest.approx(1.0)
    assert near["p_same_sign"] == pytest.approx(float((s[:, 1] * truth > 0).mean()))
    assert near["unit"] == "−1 to 1"
    with pytest.raises(SpecError, match=r'level "nowhere": no such row \(rows of '
                                        r'"derived:s": levels neutral, sensitive\)'):
        match_entries(_entries({"estimand": "derived:s", "level": "nowhere", "published": 0,
                                "citation": "x"}), rows)
    assert np.isfinite(wild["mean"])


def test_a_replication_of_an_undeclared_derived_name_is_refused_when_the_spec_loads(tmp_path):
    (tmp_path / "d.csv").write_text("y,g\n1,a\n0,b\n")
    spec = tmp_path / "s.toml"
    spec.write_text('[data]\nsource = "d.csv"\noutcome = "y"\n[model]\nformula = "y ~ g"\n'
                    'family = "bernoulli"\n[effects.derived.gap]\nexpr = "P(g=\'a\') - P(g=\'b\')"\n'
                    '[[replication]]\nestimand = "derived:gaps"\npublished = 0.1\n'
                    'citation = "x"\n')
    with pytest.raises(SpecError, match=r"\[\[replication\]\] entry 1: estimand "
                                        r"\"derived:gaps\": \[effects.derived\] has no 'gaps' "
                                        r"\(its names: gap\)"):
        biasstats.load_spec(spec)
