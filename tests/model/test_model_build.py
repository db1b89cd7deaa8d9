"""Model building: names, dims, priors, centring, constraints, collapsed likelihood."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from biasstats.errors import SpecError
from biasstats.model.build import prepare
from biasstats.model.families import FAMILIES, get_family
from biasstats.model.graph import build_model, design_dot
from biasstats.model.priors import Prior, parse_prior
from biasstats.model.sufficient import log_binomial_constant


def _bern(n=400, seed=0):
    rng = np.random.default_rng(seed)
    llm = rng.choice([f"m{i}" for i in range(5)], n)
    cat = rng.choice(["race", "gender"], n)
    st = np.array([f"{c}_{j}" for c, j in zip(cat, rng.integers(0, 3, n), strict=True)])
    x = rng.normal(size=n)
    eta = 0.3 + 0.5 * x + np.array([int(s[-1]) for s in st]) * 0.2
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    return pl.DataFrame({"y": y, "x": np.round(x, 1), "llm": llm, "category": cat,
                         "stereotype": st, "variant": rng.choice(["v1", "v2"], n)})


def test_brms_style_names_and_dims():
    df = _bern()
    spec = prepare("y ~ x + (1|llm) + (1|category/stereotype)", df)
    m = build_model(spec)
    names = set(m.named_vars)
    for v in ["Intercept", "b", "sd_llm", "r_llm", "sd_category", "r_category",
              "sd_category:stereotype", "r_category:stereotype", "y"]:
        assert v in names, v
    assert m.named_vars_to_dims["r_llm"] == ("llm",)
    assert m.named_vars_to_dims["r_category:stereotype"] == ("category:stereotype",)
    assert list(m.coords["llm"]) == [f"m{i}" for i in range(5)]
    assert list(m.coords["coef"]) == ["x"]
    assert m.named_vars_to_dims["y"] == ("cell",)


def test_bernoulli_collapsed_to_cells():
    df = _bern()
    spec = prepare("y ~ x + (1|llm)", df)
    assert spec.collapsed and spec.obs_dim == "cell"
    assert spec.trials.sum() == df.height
    assert spec.y.sum() == df["y"].sum()
    assert len(spec.y) == df.select(["x", "llm"]).unique().height
    assert set(spec.cells.columns) == {"x", "llm", "k", "n"}


def test_collapsed_logp_equals_rows_up_to_binomial_constant():
    df = _bern(200)
    f = "y ~ x + (1|llm) + (1|variant)"
    c = {"llm": True, "variant": False}  # same parametrisation for both
    s_cell = prepare(f, df, centered=c)
    s_row = prepare(f, df, collapse=False, centered=c)
    assert not s_row.collapsed and len(s_row.y) == df.height
    m_cell, m_row = build_model(s_cell), build_model(s_row)
    rng = np.random.default_rng(1)
    for _ in range(3):
        pt = {k: v + rng.normal(scale=0.3, size=np.shape(v))
              for k, v in m_cell.initial_point().items()}
        lp_cell = m_cell.compile_logp()(pt)
        lp_row = m_row.compile_logp()(pt)
        assert lp_cell == pytest.approx(lp_row + log_binomial_constant(s_cell), rel=1e-10)


def test_a_design_with_few_distinct_rows_is_multiplied_over_them():
    """design_dot: X @ b over X's distinct rows, gathered (a factor's cells), the same values
    as the dense product; a design whose rows are mostly distinct stays dense."""
    import pytensor.tensor as pt
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import ancestors

    def matrices(out):
        return [v.data.shape for v in ancestors([out])
                if isinstance(v, Constant) and np.ndim(v.data) == 2]

    rng = np.random.default_rng(0)
    cells = np.eye(6)[rng.integers(0, 6, 500)] * rng.choice([1.0, 2.5], 6)
    b = rng.normal(size=6)
    got = design_dot(pt, cells, pt.as_tensor_variable(b))
    assert matrices(got) == [(6, 6)]                      # (U @ b)[row]
    np.testing.assert_allclose(got.eval(), cells @ b, rtol=1e-14)
    dense = rng.normal(size=(50, 3))
    out = design_dot(pt, dense, pt.as_tensor_variable(b[:3]))
    np.testing.assert_allclose(out.eval(), dense @ b[:3], rtol=1e-14)
    assert matrices(out) == [(50, 3)]


def test_zero_sum_group_effects_and_nested_constraint():
    df = _bern()
    spec = prepare("y ~ 1 + (1|category/stereotype)", df)
    child = spec.groups[1]
    assert child.parents == ["category"] and child.Q is not None
    m = build_model(spec)
    import pymc as pm

    r = np.asarray(pm.draw(m["r_category:stereotype"], random_seed=2))
    assert np.abs(r).max() > 1e-3
    assert abs(r.sum()) < 1e-10
    levels = child.levels
    for cat in ("race", "gender"):  # zero-sum within each parent level
        assert abs(sum(v for lv, v in zip(levels, r, strict=True) if lv.startswith(cat))) < 1e-10


def test_varying_slopes_correlated_and_uncorrelated():
    df = _bern()
    m = build_model(prepare("y ~ x + (x|llm)", df))
    assert m.named_vars_to_dims["r_llm"] == ("llm__coef", "llm")
    assert "cor_llm" in m.named_vars and "sd_llm" in m.named_vars
    assert list(m.coords["llm__coef"]) == ["Intercept", "x"]
    m2 = build_model(prepare("y ~ x + (x||llm)", df))
    assert "cor_llm" not in m2.named_vars
    assert m2.named_vars_to_dims["sd_llm"] == ("llm__coef",)


def test_default_priors_scaled_and_overridable():
    rng = np.random.default_rng(0)
    df = pl.DataFrame({"y": rng.normal(100, 20, 200), "x": rng.normal(0, 5, 200),
                       "g": rng.choice(list("abcd"), 200)})
    spec = prepare("y ~ x + (1|g)", df, family="gaussian")
    p = spec.priors
    assert p["Intercept"].dist == "Normal" and 90 < p["Intercept"].params["mu"] < 110
    assert 40 < p["Intercept"].params["sigma"] < 60          # 2.5 sd(y)
    assert 8 < p["b_x"].params["sigma"] < 12                   # 2.5 sd(y)/sd(x)
    assert 15 < p["sd_g"].params["sigma"] < 25
    assert p["sigma"].dist == "Exponential"
    spec2 = prepare("y ~ x + (1|g)", df, family="gaussian",
                    priors={"sd_g": "HalfNormal(1)", "Intercept": "Normal(0, 2)", "b": "Normal(0, 1)"})
    assert str(spec2.priors["sd_g"]) == "HalfNormal(1)"
    assert str(spec2.priors["Intercept"]) == "Normal(0, 2)"
    assert str(spec2.priors["b_x"]) == "Normal(0, 1)"


def test_logit_default_priors():
    spec = prepare("y ~ x + (1|llm)", _bern())
    assert str(spec.priors["Intercept"]) == "Normal(0, 2.5)"
    assert str(spec.priors["sd_llm"]) == "HalfNormal(1)"


@pytest.mark.parametrize(
    "text, message",
    [
        ("os.system('x')", "prior 'os.system('x')' for 'sd_llm' is not of the form Name(number, ...)"),
        ("Normal(0, x)", "prior 'Normal(0, x)' for 'sd_llm': arguments must be numbers"),
        ("Foo(1)", "prior 'Foo(1)' for 'sd_llm': unknown distribution 'Foo'; use one of "
                   "Normal, StudentT, Cauchy, Laplace, Logistic, Uniform, HalfNormal, "
                   "HalfStudentT, HalfCauchy, Exponential, Gamma, InverseGamma, LogNormal, "
                   "Beta, LKJ"),
        ("HalfNormal(-1)", "prior 'HalfNormal(-1)' for 'sd_llm': sigma must be positive"),
        ("Normal(0, 1, 2)", "prior 'Normal(0, 1, 2)' for 'sd_llm': Normal takes at most 2 "
                            "arguments (mu, sigma)"),
        ("Gamma(2)", "prior 'Gamma(2)' for 'sd_llm': missing beta"),
    ],
)
def test_prior_grammar_errors(text, message):
    with pytest.raises(SpecError) as e:
        parse_prior(text, "sd_llm")
    assert str(e.value) == message


def test_prior_grammar_ok():
    assert parse_prior("Normal(0, 2.5)") == Prior("Normal", {"mu": 0.0, "sigma": 2.5})
    assert str(parse_prior("HalfNormal(sigma=1)")) == "HalfNormal(1)"
    assert str(parse_prior("Exponential(scale=0.5)")) == "Exponential(scale=0.5)"
    assert str(parse_prior("Normal(-1, 1)")) == "Normal(-1, 1)"
    assert str(parse_prior("HalfNormal(2)")) == "HalfNormal(2)"


def test_prior_key_errors():
    df = _bern()
    with pytest.raises(SpecError, match=r"^unknown prior key 'sd_model'; known keys: "
                                        r"Intercept, b_x, sd_llm$"):
        prepare("y ~ x + (1|llm)", df, priors={"sd_model": "HalfNormal(1)"})
    with pytest.raises(SpecError, match=r"^prior 'Normal\(0, 1\)' for 'sd_llm' must be "
                                        r"positive-only"):
        prepare("y ~ x + (1|llm)", df, priors={"sd_llm": "Normal(0, 1)"})


def test_centring_rule_and_override():
    df = _bern(2000)
    spec = prepare("y ~ 1 + (1|llm)", df)
    # true llm effects are zero: no between-level spread -> non-centred
    assert not spec.groups[0].centered
    spec2 = prepare("y ~ 1 + (1|llm)", df, centered={"llm": True})
    assert spec2.groups[0].centered and spec2.groups[0].reason == "set by user"
    m = build_model(spec2)
    assert "z_llm" not in m.named_vars and m["r_llm"] in m.free_RVs
    m1 = build_model(spec)
    assert "z_llm" in m1.named_vars
    # strongly informative levels with real spread -> centred
    rng = np.random.default_rng(3)
    g = rng.integers(0, 6, 20000)
    eff = np.array([-1, -0.5, 0, 0.3, 0.6, 1.0])
    y = (rng.random(20000) < 1 / (1 + np.exp(-eff[g]))).astype(float)
    spec3 = prepare("y ~ 1 + (1|g)", pl.DataFrame({"y": y, "g": g.astype(str)}))
    assert spec3.groups[0].centered
    with pytest.raises(SpecError, match=r"^centered: unknown grouping 'model'; groupings are llm$"):
        prepare("y ~ 1 + (1|llm)", df, centered={"model": True})


def test_centring_rule_uses_each_cells_information():
    """A null term (true sd 0) beside a term that pushes cells towards 0 and 1: the cells'
    logits are noisy there, so the null term's level means spread more than the pooled
    proportion suggests. Judged with each cell's own information the null term is non-centred
    (as a null term should be, up to the moment estimate's own noise); judged with the pooled
    proportion it was centred in most data sets (the SBC divergences of the canonical model)."""
    centred = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        llm = np.repeat(np.arange(8), 6 * 200)
        variant = np.tile(np.repeat(np.arange(6), 200), 8)
        eta = np.linspace(-4, 4, 8)[llm]               # variant has no effect at all
        y = (rng.random(len(llm)) < 1 / (1 + np.exp(-eta))).astype(float)
        df = pl.DataFrame({"y": y, "llm": llm.astype(str), "variant": variant.astype(str)})
        spec = prepare("y ~ 1 + (1|llm) + (1|variant)", df)
        assert spec.groups[0].centered  # the llm effects are large and well measured
        centred += spec.groups[1].centered
    assert centred <= 4, centred


def _four_levels(effects, n_per_level, seed=0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(4), n_per_level)
    y = (rng.random(len(g)) < 1 / (1 + np.exp(-np.asarray(effects)[g]))).astype(float)
    return pl.DataFrame({"y": y, "g": g.astype(str)})


def test_centring_rule_few_levels_weighs_the_tau_interval():
    """Four levels, 3 df: tau is barely estimated, so its 90% interval decides. Levels that
    clearly differ are centred; when the interval reaches tau = 0 (where a centred term
    funnels without bound) the term is non-centred even if the point estimate of tau exceeds
    se (shrinkage B < 0.5, which the point rule would have centred)."""
    clear = prepare("y ~ 1 + (1|g)", _four_levels([-1.0, -0.3, 0.4, 1.0], 5000))
    assert clear.groups[0].centered
    assert "tau/se 90% range" in clear.groups[0].reason and "(3 df)" in clear.groups[0].reason
    overruled = 0
    for seed in range(10):
        g = prepare("y ~ 1 + (1|g)", _four_levels([-0.09, -0.03, 0.03, 0.09], 2000, seed)).groups[0]
        b = float(g.reason.split("B=")[1].split(",")[0])
        lo, hi = (float(x) for x in g.reason.split("range ")[1].split(" ")[0].split("-"))
        assert g.centered == (1 / max(lo, 1e-6) < hi)   # the smaller of the two risks
        if lo == 0:
            assert not g.centered
            overruled += b < 0.5
    assert overruled >= 2


def _family_data(fam, n=120, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    g = rng.choice(list("abcd"), n)
    y = {
        "gaussian": rng.normal(size=n),
        "student_t": rng.standard_t(4, size=n),
        "lognormal": rng.lognormal(size=n),
        "beta": rng.beta(2, 3, size=n),
        "negative_binomial": rng.negative_binomial(3, 0.4, size=n).astype(float),
        "poisson": rng.poisson(3.0, size=n).astype(float),
        "cumulative": rng.integers(1, 6, n),
        "categorical": rng.choice(["refused", "congruent", "incongruent"], n),
        "bernoulli": rng.integers(0, 2, n).astype(float),
        "binomial": rng.integers(0, 6, n).astype(float),
        "beta_binomial": rng.integers(0, 6, n).astype(float),
        "logitnormal_binomial": rng.integers(0, 6, n).astype(float),
    }[fam]
    return pl.DataFrame({"y": y, "x": x, "g": g, "n": np.full(n, 6.0)})


@pytest.mark.parametrize("fam", list(FAMILIES))
def test_every_family_builds_with_finite_logp(fam):
    df = _family_data(fam)
    counts = FAMILIES[fam].needs_trials
    f = "y | trials(n) ~ x + (1|g)" if counts else "y ~ x + (1|g)"
    spec = prepare(f, df, family=fam)
    m = build_model(spec)
    lp = m.point_logps()
    assert all(np.isfinite(v) for v in lp.values()), lp
    if fam == "cumulative":
        assert "Intercept" not in m.named_vars and len(m.coords["threshold"]) == 4
    if fam == "categorical":
        assert m.named_vars_to_dims["r_g"] == ("y__cat", "g")
        assert list(m.coords["y__cat"]) == ["incongruent", "refused"]


def test_family_table_is_data():
    for fam in FAMILIES.values():
        assert callable(fam.likelihood) and fam.link
        for k, v in fam.aux.items():
            parse_prior(v.format(sd_y=1.0, sd_logy=1.0), k)
    assert get_family("ordinal").name == "cumulative"


def test_funnel_risk_and_automatic_target_accept():
    """The chosen parameterisation's funnel risk (se/tau_lo centred, tau_hi/se non-centred)
    sets the automatic target acceptance: well-separated levels keep 0.9; a 2-level term with
    no real difference, whose SD the data cannot pin down, gets 0.99; a user's value stands."""
    from biasstats.inference.sample import auto_target_accept

    clear = prepare("y ~ 1 + (1|g)", _four_levels([-1.0, -0.3, 0.4, 1.0], 5000))
    g = clear.groups[0]
    lo = float(g.reason.split("range ")[1].split("-")[0])
    assert g.centered and g.funnel_risk == pytest.approx(1 / lo, rel=0.05)
    assert g.funnel_risk <= 0.5
    value, why = auto_target_accept(clear)
    assert value == 0.9 and why.startswith("automatic: largest funnel risk ")
    assert "(g, centred;" in why

    v = np.repeat(np.arange(2), 5000)                       # two variants, 60% and 61%
    y = (np.tile(np.arange(5000), 2) < np.where(v == 0, 3000, 3050)).astype(float)
    two = prepare("y ~ 1 + (1|v)", pl.DataFrame({"y": y, "v": v.astype(str)}))
    t = two.groups[0]
    hi = float(t.reason.split("range ")[1].split(" ")[0].split("-")[1])
    assert not t.centered and t.funnel_risk == pytest.approx(hi, rel=0.05) and hi > 1
    assert auto_target_accept(two) == (0.99, auto_target_accept(two)[1])
    assert "(v, non-centred;" in auto_target_accept(two)[1]
    # no group terms: the plain default
    assert auto_target_accept(prepare("y ~ 1", pl.DataFrame({"y": y})))[0] == 0.9
    # ordinal families have no working response: no risk, the default
    assert prepare("y ~ 1 + (1|v)", pl.DataFrame({"y": y, "v": v.astype(str)}),
                   "cumulative").groups[0].funnel_risk is None



def test_latent_uses_mean_is_declared_for_exactly_the_latent_variances_that_read_it():
    """The variance decomposition computes the expected response only for families whose
    latent variance reads it (the logit-normal's quadrature over every pattern and draw
    cost 15 s for nothing)."""
    from biasstats.model.families import FAMILIES

    S = 6
    aux = {"sigma": np.full((S, 1), 0.7), "alpha": np.full((S, 1), 3.0),
           "phi": np.full((S, 1), 5.0), "nu": np.full((S, 1), 4.0)}
    lo, hi = np.full((S, 4), 0.5), np.full((S, 4), 20.0)
    for fam in FAMILIES.values():
        if fam.latent_var is None:
            continue
        a = np.asarray(fam.latent_var(lo, aux), dtype=float)
        b = np.asarray(fam.latent_var(hi, aux), dtype=float)
        assert a.shape == (S,), fam.name
        assert (not np.allclose(a, b)) == fam.latent_uses_mean, fam.name
