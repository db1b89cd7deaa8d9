"""Counts that agree (issue 26 item 6): the status line, the ledger, the methods paragraph and
the attempt lines report the same numbers, and no library warning reaches the terminal."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import xarray as xr

from biasstats.inference.result import Fit
from biasstats.ingest.ledger import Ledger, Tally
from biasstats.report.methods import _ta_reason, methods_paragraph


def _ledger() -> Ledger:
    rows = Tally("rows", 240, {"ok": 240}, {})
    judgements = Tally("judgements", 5040, {"ok": 4990, "unparseable": 37, "refused": 13},
                       {"no rating found": 37, "refused": 13})
    return Ledger(source="cvs.csv", rows_read=240, tallies=(rows, judgements))


def test_the_status_line_counts_what_the_ledger_counts():
    led = _ledger()
    assert led.counted() == "240 rows, 5040 judgements"
    assert "  rows read: 240" in led.render() and "  judgements: 5040" in led.render()
    one = Ledger(source="d.csv", rows_read=600, tallies=(Tally("rows", 600, {"ok": 600}, {}),))
    assert one.counted() == "600 rows"


def _fit(reason="set by user", ta=0.95):
    spec = SimpleNamespace(groups=[SimpleNamespace(funnel_risk=2.0)])
    st = {"sampler": "nutpie", "chains": 4, "tune": 1000, "draws": 1000, "seed": 1,
          "target_accept": ta, "target_accept_reason": reason, "adaptation": "low_rank"}
    return SimpleNamespace(priors={}, family="cumulative", formula="rating ~ name",
                           settings=st, spec=spec)


def test_the_methods_paragraph_counts_the_unparseable_judgements():
    spec = SimpleNamespace(model=SimpleNamespace(aux={}), fit=SimpleNamespace(sampler="nutpie"))
    gate = SimpleNamespace(values={"max_rhat": 1.004, "min_ess_bulk": 900, "min_ess_tail": 800,
                                   "divergences": 0, "min_bfmi": 0.7}, passed=True, failures=())
    text = methods_paragraph(spec, SimpleNamespace(ledger=_ledger()), _fit(), gate, [])
    assert text.startswith(
        "We analysed 240 trials (4,990 judgements with a parsed outcome; 13 judgements "
        "refused, 37 unparseable or partly parsed, 0 excluded by declared filters;")


def test_a_raised_target_acceptance_is_named_as_raised_not_as_the_first_choice():
    raised = _fit("raised from 0.9 by the automatic refit after a failed gate", 0.95)
    assert _ta_reason(raised.settings, raised.spec) == (
        " (raised from 0.9 by the automatic refit after a failed gate)")
    auto = _fit("automatic: largest funnel risk 2.0", 0.9)
    assert _ta_reason(auto.settings, auto.spec) == (
        " (chosen from the largest funnel risk of the group terms' parameterisations)")


def test_diagnostics_of_a_stuck_parameter_raise_no_library_warning():
    """A constant draw (a degenerate cell's SD stuck at one value) makes arviz divide by zero;
    the numbers say it (R-hat nan or inf), the terminal gets no RuntimeWarning."""
    rng = np.random.default_rng(0)
    post = xr.Dataset({"a": (("chain", "draw"), rng.normal(size=(2, 50))),
                       "stuck": (("chain", "draw"), np.ones((2, 50)))})
    stats = xr.Dataset({"energy": (("chain", "draw"), np.ones((2, 50))),
                        "diverging": (("chain", "draw"), np.zeros((2, 50), bool))})
    fit = Fit(idata=xr.DataTree.from_dict({"posterior": post, "sample_stats": stats}),
              spec=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = fit.diagnostics()
    assert d["divergences"] == 0 and d["chains"] == 2
