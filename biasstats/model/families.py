"""Response families, declared as data.

Each family is one :class:`Family` table entry: its likelihood (a small function from the
linear predictor and auxiliary parameters to a PyMC distribution), the auxiliary parameters
with their default priors (prior strings, scaled to the data through ``{sd_y}``-style
placeholders resolved in :mod:`biasstats.model.priors`), the link, and what the response
must look like. Adding a family is adding an entry to :data:`FAMILIES`; the model builder
has no per-family control flow beyond reading these fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from biasstats.errors import SpecError

__all__ = ["Family", "FAMILIES", "get_family"]


def log_choose(n, k) -> np.ndarray:
    """log C(n, k), elementwise (floats): the binomial coefficient every binomial and
    beta-binomial log-likelihood here shares."""
    from scipy.special import gammaln

    n, k = np.asarray(n, dtype=float), np.asarray(k, dtype=float)
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def _binomial(name, eta, aux, y, extra, dims):
    import pymc as pm

    return pm.Binomial(name, n=extra["trials"], logit_p=eta, observed=y, dims=dims)


def _ab_beta_binomial(eta, aux, tensor: bool = False):
    """(a, b) = (mu phi, (1 - mu) phi), mu = logistic(eta). logistic(-eta), not 1 - mu: near
    the ceiling (every judgement congruent) the subtraction cancels to 0 and the likelihood's
    gradient breaks down."""
    if tensor:
        import pytensor.tensor as pt

        phi = pt.as_tensor_variable(aux["phi"])
        return pt.sigmoid(eta) * phi, pt.sigmoid(-eta) * phi
    from scipy.special import expit

    phi = np.asarray(aux["phi"])
    return expit(eta) * phi, expit(-eta) * phi


# Gauss-Hermite nodes for the logit-normal moments. 24 nodes: mean error < 3e-5 and variance
# error < 1e-3 (relative) for sigma <= 2.5 over eta in [-7, 7]; 6e-4 / 1e-2 at sigma = 4
# (against adaptive quadrature, tests/test_logitnormal.py), far below any interval's width.
# The quadrature is most of the gradient's cost: 32 nodes took 1.3x the time of 24.
LN_NODES = 24
_LN_X, _LN_W = np.polynomial.hermite_e.hermegauss(LN_NODES)
_LN_W = _LN_W / _LN_W.sum()
# numpy: values per chunk x nodes (memory stays near 64 MB per array)
_LN_CHUNK = 8_000_000
_TINY = 1e-300


# Zeger, Liang & Albert (1988): E[logistic(b + sigma z)] ~= logistic(b / sqrt(1 + C2 sigma^2))
LN_C2 = (16 * np.sqrt(3) / (15 * np.pi)) ** 2


def ln_location(eta, sigma, tensor: bool = False):
    """The reply-level logit location of the logit-normal binomial: eta sqrt(1 + C2 sigma^2),
    so that eta stays close to the logit of the mean response whatever the spread (the
    probit-logistic approximation of Zeger, Liang & Albert 1988: within 0.06 on the logit
    scale for |eta| <= 2 and sigma <= 2.5, coarser in the tails, e.g. 0.47 at eta = 4,
    sigma = 2.5; the reported means use the exact E[p], not eta): a term's effect
    and the spread of its replies do not trade off along a ridge (with eta as the location itself, an LLM's location and its sigma did, and its SD
    mixed with a bulk ESS of 35 in 2,000 draws)."""
    if tensor:
        import pytensor.tensor as pt

        return pt.as_tensor_variable(eta) * pt.sqrt(1.0 + LN_C2 * pt.as_tensor_variable(sigma) ** 2)
    return np.asarray(eta, dtype=float) * np.sqrt(1.0 + LN_C2 * np.asarray(sigma, dtype=float) ** 2)


def _ln_moments(eta, sigma, tensor: bool = False):
    """E[p] and E[p^2] of p = logistic(ln_location(eta, sigma) + sigma z), z ~ N(0, 1), by
    Gauss-Hermite quadrature (one logistic per node: half the gradient cost of also
    evaluating 1 - p as logistic(-x)); each with eta's shape."""
    if tensor:
        import pytensor.tensor as pt

        sigma = pt.as_tensor_variable(sigma)
        x = ln_location(eta, sigma, tensor=True)[..., None] + sigma[..., None] * _LN_X
        p = pt.sigmoid(x)
        return pt.dot(p, _LN_W), pt.dot(p * p, _LN_W)
    from scipy.special import expit

    eta, sigma = np.broadcast_arrays(np.asarray(eta, dtype=float), np.asarray(sigma, dtype=float))
    e, s = ln_location(eta, sigma).ravel(), sigma.ravel()
    out = np.empty((2, e.size))
    step = _LN_CHUNK // LN_NODES
    for i in range(0, e.size, step):
        p = expit(e[i:i + step, None] + s[i:i + step, None] * _LN_X)
        out[:, i:i + step] = p @ _LN_W, (p * p) @ _LN_W
    return tuple(o.reshape(eta.shape) for o in out)


def _ab_logitnormal(eta, aux, tensor: bool = False):
    """(a, b) of the beta with the mean m and variance v of p = logistic(location + sigma z)
    (:func:`ln_location`):
    phi = m (1 - m) / v - 1 = E[p (1 - p)] / v, a = m phi, b = (1 - m) phi.

    Precision: 1 - m and E[p (1 - p)] = m - E[p^2] lose about 1e-16 absolute (relative 1e-12
    at m = 1 - 1e-4); v = E[p^2] - m^2 loses 1e-16 / (sigma (1 - m))^2 relative as sigma -> 0,
    where phi is so large that the likelihood is the binomial's whatever its value. The
    denominator is kept positive (rounding can make v slightly negative at sigma ~ 1e-6), which
    caps phi near 1e10."""
    mu, m2 = _ln_moments(eta, aux["sigma"], tensor=tensor)
    if tensor:
        import pytensor.tensor as pt

        maximum = pt.maximum
    else:
        maximum = np.maximum
    nu = 1.0 - mu
    pq = mu - m2
    phi = (pq + _TINY) / (maximum(m2 - mu * mu, 0.0) + 1e-10 * pq + _TINY)
    return mu * phi, nu * phi


def _drawer(beta_ab):
    """k ~ BetaBinomial(n, a, b) in numpy with (a, b) = beta_ab(eta, aux), vectorised: eta
    (S, m), aux (S, 1) or (S, m) each, n (m,) -> (S, m) draws."""
    def draw(rng, eta, aux, n):
        a, b = beta_ab(np.asarray(eta), aux)
        p = rng.beta(a, b)
        return rng.binomial(np.broadcast_to(n, p.shape), p)
    return draw


def _beta_mix_likelihood(beta_ab):
    """The PyMC likelihood of a k-of-n family whose n share p ~ Beta(beta_ab(eta, aux))."""
    def likelihood(name, eta, aux, y, extra, dims):
        import pymc as pm

        a, b = beta_ab(eta, aux, tensor=True)
        return pm.BetaBinomial(name, n=extra["trials"], alpha=a, beta=b, observed=y, dims=dims)
    return likelihood


def _mean_logitnormal(eta, aux):
    return _ln_moments(eta, aux["sigma"])[0]


def _latent_logitnormal(mu, aux):
    # the reply-level normal effect is an observation-level random effect on the logit scale:
    # residual variance pi^2/3 + sigma^2 (Nakagawa et al. 2017)
    return np.pi ** 2 / 3 + _per_draw(np.asarray(aux["sigma"], dtype=float) ** 2)


def _gaussian(name, eta, aux, y, extra, dims):
    import pymc as pm

    return pm.Normal(name, mu=eta, sigma=aux["sigma"], observed=y, dims=dims)


def _student_t(name, eta, aux, y, extra, dims):
    import pymc as pm

    return pm.StudentT(name, nu=aux["nu"], mu=eta, sigma=aux["sigma"], observed=y, dims=dims)


def _lognormal(name, eta, aux, y, extra, dims):
    import pymc as pm

    return pm.LogNormal(name, mu=eta, sigma=aux["sigma"], observed=y, dims=dims)


def _beta(name, eta, aux, y, extra, dims):
    import pymc as pm

    mu = pm.math.invlogit(eta)
    return pm.Beta(name, alpha=mu * aux["phi"], beta=(1 - mu) * aux["phi"], observed=y, dims=dims)


def _negative_binomial(name, eta, aux, y, extra, dims):
    import pymc as pm

    return pm.NegativeBinomial(name, mu=pm.math.exp(eta), alpha=aux["alpha"], observed=y,
                               dims=dims)


def _poisson(name, eta, aux, y, extra, dims):
    import pymc as pm

    return pm.Poisson(name, mu=pm.math.exp(eta), observed=y, dims=dims)


def _cumulative(name, eta, aux, y, extra, dims):
    import pymc as pm

    return pm.OrderedLogistic(name, eta=eta, cutpoints=aux["cutpoints"], observed=y, dims=dims,
                              compute_p=False)


def _categorical(name, eta, aux, y, extra, dims):
    import pymc as pm
    import pytensor.tensor as pt

    # eta: (n, K-1) against the reference (first) category, whose logit is 0.
    full = pt.concatenate([pt.zeros((eta.shape[0], 1)), eta], axis=1)
    return pm.Categorical(name, logit_p=full, observed=y, dims=dims)


@dataclass(frozen=True)
class Family:
    """A response family as data.

    name        registry key
    link        ``logit`` / ``identity`` / ``log`` / ``cumulative-logit`` / ``multinomial-logit``
    likelihood  ``f(name, eta, aux: dict, y, extra: dict, dims) -> pm observed RV``
    aux         auxiliary parameter -> default prior string; placeholders ``{sd_y}``,
                ``{sd_logy}`` are filled from the data
    response    what y must be: ``binary``, ``count_trials``, ``real``, ``positive``,
                ``unit``, ``count``, ``ordinal``, ``categorical``
    intercept   whether the linear predictor has its own intercept (ordinal: no, the
                cut-points play that role)
    collapse    rows with identical covariates are summed into binomial cells before sampling
    patterns    rows with identical covariates and identical (n, k) are counted as one weighted
                pattern (``k | trials(n)`` families whose likelihood does not sum)
    scale       ``"link"``: priors on the link scale are unit-scale (logit/log);
                ``"y"`` (identity) / ``"logy"`` (lognormal): scaled by the sd of y / log y
    """

    name: str
    link: str
    likelihood: Callable
    aux: dict[str, str] = field(default_factory=dict)
    response: str = "real"
    intercept: bool = True
    collapse: bool = False
    patterns: bool = False
    scale: str = "link"
    vector_aux: tuple[str, ...] = ()  # aux parameters with one entry per response threshold
    # expected response per observation (per trial for the binomial families) from the linear
    # predictor and the aux draws: mean(eta, aux) -> array; None when it is not one number
    # (ordinal, categorical)
    mean: Callable | None = None
    # --- what the later stages need (effects, checks, report read these; no name switches)
    # the scale marginal means are reported on: "probability" (of the outcome, or of each
    # category when ``categories`` is set) or "mean" (in outcome units)
    response_scale: str | None = "mean"
    # the expected response of an ordinal or categorical outcome: the probability of each
    # response category, categories(eta, aux) -> (S, rows, K) (eta (S, rows) for one linear
    # predictor, (S, rows, K-1) for the categorical family's K-1); None for other families
    categories: Callable | None = None
    # contrasts between marginal means: "difference" always; "ratio" (log link, a ratio of
    # means) or "odds_ratio" (logit link on a probability)
    contrast_scales: tuple[str, ...] = ("difference",)
    # the posterior predictive statistic of a grouped check: "rate" (share of successes),
    # "mean" (continuous and counts) or "shares" (category shares)
    ppc_stat: str = "mean"
    # residual variance on the latent (link) scale for a variance decomposition
    # (Nakagawa & Schielzeth 2013, Nakagawa et al. 2017): latent_var(mean_response, aux) ->
    # (S,) draws; None where no such variance is defined (the reason is latent_note)
    latent_var: Callable | None = None
    latent_note: str = ""
    # whether latent_var reads its mean_response argument (count families); the others get
    # zeros, so the expected response is not computed for nothing
    latent_uses_mean: bool = False
    # draw(rng, eta, aux, n) -> responses, in numpy: posterior predictive of weighted patterns
    # without PyTensor's random-variable graph (beta-binomial runs in numba object mode there)
    draw: Callable | None = None
    # k-of-n families whose n outcomes share p ~ Beta(a, b): beta_ab(eta, aux, tensor=False)
    # -> (a, b), on numpy arrays or (tensor=True) PyTensor tensors. Pattern models of such a
    # family use the exact sufficient-statistic likelihood (model.build.count_stats).
    beta_ab: Callable | None = None
    # one sentence for the methods paragraph: what the family assumes ("" for the obvious)
    methods: str = ""

    def unsupported(self, y: np.ndarray, trials: np.ndarray | None = None):
        """(what the response must hold, boolean mask of the rows that do not) — the mask is
        None when every row is fine."""
        y = np.asarray(y, dtype=float)
        bad, off = None, None
        if self.response == "binary":
            bad, off = "0/1 values", ~np.isin(y, (0, 1))
        elif self.response in ("count", "count_trials"):
            bad, off = "non-negative integer counts", (y < 0) | (np.round(y) != y)
        if self.response == "count_trials" and trials is not None and not off.any():
            trials = np.asarray(trials, dtype=float)
            bad = "integer trials at least as large as the counts"
            off = (trials < y) | (np.round(trials) != trials)
        elif self.response == "positive":
            bad, off = "positive values", y <= 0
        elif self.response == "unit":
            bad, off = "values strictly between 0 and 1", (y <= 0) | (y >= 1)
        return (bad, off) if off is not None and off.any() else (None, None)

    def check_rope(self, rope: float | None, key: str = "[effects] rope") -> None:
        """One-line SpecError for a ROPE (a half-width in outcome units) this family's
        estimands cannot use."""
        if rope is None:
            return
        if self.categories is not None:
            raise SpecError(f"{key}: family '{self.name}' has no single outcome scale for a "
                            "ROPE (it reports one probability per response category); remove "
                            "the key")
        if self.response_scale == "probability" and not 0 < rope < 1:
            raise SpecError(f"{key}: {rope} is not a difference of probabilities (give a "
                            "half-width between 0 and 1, e.g. 0.05 = 5 percentage points)")

    def check_response(self, y: np.ndarray, term: str, trials: np.ndarray | None = None) -> None:
        """Raise SpecError (naming the response term) if y cannot come from this family."""
        bad, off = self.unsupported(y, trials)
        if off is not None:
            raise SpecError(f"response '{term}' must hold {bad} for family '{self.name}' "
                            f"({int(off.sum())} of {len(y)} rows do not)")


def _mean_logistic(eta, aux):
    from scipy.special import expit

    return expit(eta)


def _mean_identity(eta, aux):
    return eta


def _mean_exp(eta, aux):
    return np.exp(eta)


def _mean_lognormal(eta, aux):
    return np.exp(eta + aux["sigma"] ** 2 / 2)


def _categories_cumulative(eta, aux):
    """P(y = k) = expit(c_k − eta) − expit(c_{k−1} − eta) (PyMC's OrderedLogistic)."""
    from scipy.special import expit

    c = np.asarray(aux["cutpoints"])                          # (S, 1, K-1)
    cum = expit(c - np.asarray(eta)[..., None])               # (S, rows, K-1): P(y <= k)
    S, n = cum.shape[:2]
    return np.diff(np.concatenate([np.zeros((S, n, 1)), cum, np.ones((S, n, 1))], axis=2),
                   axis=2)


def _categories_softmax(eta, aux):
    """Softmax of (0, eta_1, …, eta_{K-1}): the first category is the reference."""
    from scipy.special import softmax

    eta = np.asarray(eta)
    return softmax(np.concatenate([np.zeros(eta.shape[:2] + (1,)), eta], axis=2), axis=2)


def _latent_logistic(mu, aux):
    return np.full(np.shape(mu)[0], np.pi ** 2 / 3)


def _per_draw(a) -> np.ndarray:
    """(S,) from an auxiliary draw array (S, 1) or (S, cells) (a distributional formula:
    averaged over the cells)."""
    a = np.asarray(a, dtype=float)
    return a.mean(axis=1) if a.ndim == 2 else a.reshape(-1)


def _latent_sigma(mu, aux):
    return _per_draw(np.asarray(aux["sigma"], dtype=float) ** 2)


def _latent_poisson(mu, aux):
    # lognormal approximation ln(1 + 1/lambda) at the mean expected count per draw
    return np.log1p(1.0 / np.asarray(mu).mean(axis=1))


def _latent_negbin(mu, aux):
    # ln(1 + 1/lambda + 1/alpha) (Nakagawa et al. 2017, NB2)
    return np.log1p(1.0 / np.asarray(mu).mean(axis=1) + _per_draw(1.0 / np.asarray(aux["alpha"])))


_PROBABILITY = dict(response_scale="probability",
                    contrast_scales=("difference", "ratio", "odds_ratio"),
                    ppc_stat="rate", latent_var=_latent_logistic)

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in [
        Family("bernoulli", "logit", _binomial, response="binary", collapse=True,
               mean=_mean_logistic, **_PROBABILITY),
        Family("binomial", "logit", _binomial, response="count_trials", collapse=True,
               mean=_mean_logistic, **_PROBABILITY),
        # k of n with extra-binomial variation between the n-groups (e.g. the 16 word
        # judgements of one trial share a trial-level p ~ Beta(mu*phi, (1-mu)*phi)):
        # mean P = mu = logistic(eta), intra-trial correlation 1/(1+phi). Not summed into
        # cells (a sum of beta-binomials is not beta-binomial): identical (covariates, n, k)
        # trials are counted as one weighted pattern instead, which is exact.
        Family("beta_binomial", "logit", _beta_mix_likelihood(_ab_beta_binomial),
               aux={"phi": "Exponential(scale=20)"},
               response="count_trials", patterns=True, mean=_mean_logistic,
               draw=_drawer(_ab_beta_binomial), beta_ab=_ab_beta_binomial,
               methods="The n outcomes of one observation share a probability p ~ "
                       "Beta(mu phi, (1 - mu) phi) with mu = logistic(eta).",
               **{**_PROBABILITY, "latent_note": "the beta-binomial's latent variance also "
                  "depends on phi; the logistic residual π²/3 is used (the binomial part)"}),
        # k of n whose n outcomes share p = logistic(l + u), u ~ Normal(0, sigma): a binomial
        # with an observation-level normal effect (brms: + (1|obs)), so the spread of p
        # follows the mean as the logit-normal's does (a beta-binomial with one phi for every
        # cell does not: it over-disperses cells near 0 or 1 when the data are logit-normal and
        # pulls their means toward 1/2). The location is l = eta sqrt(1 + C2 sigma^2)
        # (ln_location), so the linear predictor eta is about the logit of the mean response,
        # as in every other family here. The likelihood integrates u out through the beta with
        # the same mean and variance of p (both exact, by 24-node Gauss-Hermite); the mean
        # response is the logit-normal's own E[p].
        Family("logitnormal_binomial", "logit", _beta_mix_likelihood(_ab_logitnormal),
               aux={"sigma": "Exponential(scale=1)"},
               response="count_trials", patterns=True, mean=_mean_logitnormal,
               draw=_drawer(_ab_logitnormal), beta_ab=_ab_logitnormal,
               methods="The n outcomes of one observation share a probability "
                       "p = logistic(eta sqrt(1 + c^2 sigma^2) + u), u ~ Normal(0, sigma), "
                       "c = 16 sqrt(3) / (15 pi) (sigma: the spread of observations on the "
                       "logit scale; the scaling keeps eta close to the logit of the mean "
                       "response, Zeger, Liang & Albert 1988); the likelihood integrates u out "
                       "through the beta distribution with the same mean and variance of p, "
                       "and the mean response is E[p] under the logit-normal.",
               **{**_PROBABILITY, "latent_var": _latent_logitnormal}),
        Family("gaussian", "identity", _gaussian, aux={"sigma": "Exponential(scale={sd_y})"},
               scale="y", mean=_mean_identity, latent_var=_latent_sigma),
        Family("student_t", "identity", _student_t,
               aux={"sigma": "Exponential(scale={sd_y})", "nu": "Gamma(2, 0.1)"}, scale="y",
               mean=_mean_identity,  # the location (the mean when nu > 1)
               latent_note="the residual variance of a Student-t is infinite for nu <= 2"),
        Family("lognormal", "identity", _lognormal, aux={"sigma": "Exponential(scale={sd_logy})"},
               response="positive", scale="logy", mean=_mean_lognormal,
               contrast_scales=("difference", "ratio"), latent_var=_latent_sigma),
        Family("beta", "logit", _beta, aux={"phi": "Gamma(2, 0.1)"}, response="unit",
               mean=_mean_logistic,
               latent_note="no latent residual variance is defined for the beta family"),
        Family("negative_binomial", "log", _negative_binomial, aux={"alpha": "Gamma(2, 0.5)"},
               response="count", mean=_mean_exp, contrast_scales=("difference", "ratio"),
               latent_var=_latent_negbin, latent_uses_mean=True),
        Family("poisson", "log", _poisson, response="count", mean=_mean_exp,
               contrast_scales=("difference", "ratio"), latent_var=_latent_poisson,
               latent_uses_mean=True),
        Family("cumulative", "cumulative-logit", _cumulative, aux={"cutpoints": "Normal(0, 2.5)"},
               response="ordinal", intercept=False, vector_aux=("cutpoints",),
               response_scale="probability", categories=_categories_cumulative,
               ppc_stat="shares", latent_var=_latent_logistic),
        Family("categorical", "multinomial-logit", _categorical, response="categorical",
               response_scale="probability", categories=_categories_softmax, ppc_stat="shares",
               latent_note="a categorical model has one latent scale per category"),
    ]
}
ALIASES = {"ordinal": "cumulative", "logistic": "bernoulli", "normal": "gaussian",
            "negbinomial": "negative_binomial", "multinomial": "categorical",
            "studentt": "student_t", "betabinomial": "beta_binomial", "negbin": "negative_binomial"}


def get_family(name: str) -> Family:
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in FAMILIES:
        raise SpecError(f"unknown family '{name}'; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[key]
