"""The report pipeline end to end: known truths in the tables, the red banner, the cache,
and an unavailable dataset listed (not fatal)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from scipy.special import expit, logit

from biasstats.cli import main
from biasstats.run import build_reports

BASE = {"alpha": 0.75, "beta": 0.5, "gamma": 0.3}
VARIANT = {"v1": -0.3, "v2": 0.0, "v3": 0.3}  # prompt wording shifts the log-odds
# the estimand: P(congruent | llm) averaged over the (balanced) variants
TRUTH = {k: float(np.mean([expit(logit(p) + v) for v in VARIANT.values()])) for k, p in BASE.items()}
N_PER_LLM = 3000


@pytest.fixture(scope="module")
def tidy_study(tmp_path_factory):
    """A tidy CSV with known P(congruent) per LLM and no other structure."""
    folder = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(2024)
    rows = []
    for llm, p in BASE.items():
        for v, shift in VARIANT.items():
            y = rng.random(N_PER_LLM // 3) < expit(logit(p) + shift)
            rows += [(llm, v, int(b)) for b in y]
    pl.DataFrame(rows, schema=["model", "prompt", "answer"], orient="row").write_csv(
        folder / "study.csv")
    return folder


SPEC = """
[analysis]
name = "{name}"
title = "Known-truth study"
[data]
source = "study.csv"
[data.columns]
llm = "model"
variant = "prompt"
congruent = "answer"
[model]
formula = "congruent ~ 1 + (1|llm) + (1|variant)"
[fit]
chains = {chains}
tune = {tune}
draws = {draws}
seed = 5
[checks]
allow_failure = {allow}
"""


def _spec(folder, name, chains=2, tune=400, draws=400, allow="false"):
    p = folder / f"{name}.toml"
    p.write_text(SPEC.format(name=name, chains=chains, tune=tune, draws=draws, allow=allow))
    return p


@pytest.mark.filterwarnings("ignore")
def test_tables_recover_known_truth_and_cache_is_reused(tidy_study, tmp_path):
    spec = _spec(tidy_study, "truth")
    out = tmp_path / "reports"
    (first,) = build_reports([spec], out)
    assert first.status == "built" and first.gate_passed, first.message
    folder = out / "truth"
    table = pl.read_csv(folder / "tables" / "effects_llm.csv")
    assert sorted(table["Level"].to_list()) == sorted(TRUTH)
    effects = pl.read_parquet(folder / "effects.parquet").filter(
        (pl.col("term") == "llm") & (pl.col("scale") == "probability"))
    se = np.sqrt(0.25 / N_PER_LLM)
    for r in effects.iter_rows(named=True):
        assert abs(r["mean"] - TRUTH[r["level"]]) < 3.5 * se
        assert r["hdi_low"] - 0.01 < TRUTH[r["level"]] < r["hdi_high"] + 0.01
    verdicts = dict(effects.select("level", "verdict").iter_rows())
    assert verdicts["alpha"] == "biased" and verdicts["gamma"] == "biased"
    for name in ("forest_llm", "ppc_llm", "ranks_llm", "variance_decomposition"):
        for ext in ("pdf", "svg", "png"):
            assert (folder / "figures" / f"{name}.{ext}").stat().st_size > 1000
    tex = (folder / "tables" / "effects_llm.tex").read_text()
    assert "\\toprule" in tex and "alpha" in tex
    html = (folder / "report.html").read_text()
    assert "Sampling diagnostics failed" not in html and "<svg" in html
    assert "Group terms were sampled centred or non-centred, chosen per term" in html
    assert "low-rank mass-matrix adaptation regularised by gamma = 0.01" in html
    assert ("target acceptance 0.9 (chosen from the largest funnel risk of the group terms"
            in html)
    assert "http://" not in html and "https://" not in html
    index = (out / "index.html").read_text()
    assert 'href="truth/report.html"' in index
    # nothing changed → the posterior is reused, and the numbers are identical
    (again,) = build_reports([spec], out)
    assert again.cached
    assert pl.read_parquet(folder / "effects.parquet").filter(
        (pl.col("term") == "llm") & (pl.col("scale") == "probability")).equals(effects)
    # a changed spec refits
    spec.write_text(spec.read_text().replace("seed = 5", "seed = 6"))
    (changed,) = build_reports([spec], out)
    assert not changed.cached


@pytest.mark.filterwarnings("ignore")
def test_non_converging_fit_gets_red_banner_and_fails_the_run(tidy_study, tmp_path, capsys):
    spec = _spec(tidy_study, "broken", chains=2, tune=3, draws=12)
    out = tmp_path / "reports"
    rc = main(["report", str(spec), "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "convergence gate failed for: broken" in err
    html = (out / "broken" / "report.html").read_text()
    assert "Sampling diagnostics failed" in html
    assert html.index("Sampling diagnostics failed") < html.index("Summary of findings")
    diag = json.loads((out / "broken" / "diagnostics.json").read_text())
    assert diag["passed"] is False and any("ESS" in f for f in diag["failures"])
    # declared allowed: still the banner, but the run succeeds
    spec.write_text(spec.read_text().replace("allow_failure = false", "allow_failure = true"))
    assert main(["report", str(spec), "--out", str(out)]) == 0
    assert "Sampling diagnostics failed" in (out / "broken" / "report.html").read_text()


def test_unavailable_dataset_is_listed_with_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("BIASSTATS_DATA", str(tmp_path / "no-mirror"))
    monkeypatch.setenv("BIASSTATS_OFFLINE", "1")
    spec = tmp_path / "full.toml"
    spec.write_text('[analysis]\nname = "full"\n[data]\nsource = "bai2024_implicit"\n'
                    '[model]\nformula = "congruent ~ 1 + (1|llm)"\n')
    csv = tmp_path / "d.csv"
    csv.write_text("m,a\nx,1\ny,0\n")
    other = tmp_path / "ok.toml"
    other.write_text('[analysis]\nname = "ok"\n[data]\nsource = "d.csv"\n'
                     '[data.columns]\nllm = "m"\ncongruent = "a"\n')
    outcomes = build_reports([spec, other], tmp_path / "reports")
    assert [o.status for o in outcomes] == ["unavailable", "ingested"]
    index = (tmp_path / "reports" / "index.html").read_text()
    assert "data unavailable" in index
    assert "biasstats fetch bai2024_implicit" in index
    assert (tmp_path / "reports" / "ok" / "report.html").is_file()


def test_cache_key_follows_the_model_code(tidy_study, monkeypatch):
    """An edit to the model or fit code (same version number) is a different cache key."""
    from biasstats.inference import from_spec
    from biasstats.ingest import ingest
    from biasstats.model.build import prepare

    result = ingest(_spec(tidy_study, "keyed"))
    m = result.spec.model
    prepared = prepare(m.formula, from_spec.model_data(result.spec, result.table), m.family)
    key, payload = from_spec._key(result.spec, prepared)
    assert payload["code"] == from_spec.code_digest() and len(payload["code"]) == 64
    assert from_spec._key(result.spec, prepared)[0] == key  # stable
    monkeypatch.setattr(from_spec, "code_digest", lambda: "0" * 64)
    assert from_spec._key(result.spec, prepared)[0] != key


@pytest.mark.filterwarnings("ignore")
def test_cli_fit_writes_a_posterior_plain_arviz_reads(tidy_study, tmp_path, capsys):
    """``biasstats fit SPEC``: posterior.nc under the output folder, readable without biasstats;
    the printout names the sampler settings and how they were chosen; a rerun reuses it."""
    import arviz_base as azb
    import xarray as xr

    # 400 draws cannot reach the gate's ESS 400: allowed, so the run succeeds (a failing
    # gate without allow_failure exits 1: tests/inference/test_self_correct.py)
    spec = _spec(tidy_study, "cli_fit", chains=2, tune=300, draws=200, allow="true")
    spec.write_text(spec.read_text().replace("seed = 5", "seed = 5\nrefit = false"))
    out = tmp_path / "fit"
    assert main(["fit", str(spec), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sampler: nutpie (numba), 2 chains x 200 draws (300 warm-up), low-rank mass matrix, " \
           "target_accept 0.9" in printed and "(automatic: largest funnel risk" in printed
    assert "  (llm) centred (" in printed and "  (variant) " in printed
    assert f"wrote {out / 'posterior.nc'}" in printed
    tree = xr.open_datatree(out / "posterior.nc")
    assert tree.posterior["sd_llm"].shape == (2, 200)
    assert {"posterior", "posterior_predictive", "log_likelihood", "observed_data",
            "sample_stats"} <= set(tree.children)
    assert azb.convert_to_datatree(tree).posterior["r_llm"].sizes["llm"] == 3
    assert not list(out.glob("*.tmp*"))                          # atomic: no leftovers
    assert main(["fit", str(spec), "--out", str(out)]) == 0
    assert f"reused cached posterior {out / 'posterior.nc'}" in capsys.readouterr().out


def test_methods_sentence_on_target_acceptance():
    from biasstats.inference.sample import auto_target_accept
    from biasstats.model.build import prepare
    from biasstats.report.methods import _ta_reason

    none = prepare("y ~ x", pl.DataFrame({"y": [0.0, 1.0, 1.0, 0.0], "x": [0.1, 0.5, 0.9, 0.2]}))
    reason = auto_target_accept(none)[1]
    assert _ta_reason({"target_accept_reason": reason}, none) == " (the default; no group terms)"
    assert _ta_reason({"target_accept_reason": "set by user"}, none) == ""
