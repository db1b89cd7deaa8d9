"""Families of 0/1 outcomes: bernoulli and binomial (summed into cells), and the two k-of-n
families whose n outcomes share one probability (beta-binomial, logit-normal binomial).

Besides the families, the maths they share: the binomial and beta-binomial log densities
(the latter from rising-factorial tables per covariate cell), the logit-normal moments by
Gauss-Hermite quadrature, and the working response on the logit scale the centring rule reads.
"""

from __future__ import annotations

import numpy as np

from biasstats.model.families.base import Family, log_choose, per_draw

__all__ = ["FAMILIES", "binomial_loglik", "rising_tables", "beta_binomial_log_pmf",
           "ln_location", "LN_C2", "LN_NODES", "SMALL_CELL_N"]


# ----------------------------------------------------------------------------- binomial
def binomial_loglik(k, n, eta) -> np.ndarray:
    """log Binomial(k | n, logistic(eta)) = log C(n, k) + k log p + (n - k) log(1 - p), with
    log p = -log(1 + exp(-eta)) computed stably (scipy's ``binom.logpmf`` took 8 s for
    7,002 patterns x 4,000 draws); eta (S, m), k and n (m,)."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    return log_choose(n, k) + k * -np.logaddexp(0.0, -eta) + (n - k) * -np.logaddexp(0.0, eta)


def _binomial_logp(value, eta, n):
    """log Binomial(k | n, logistic(eta)) = log C(n, k) + k eta - n softplus(eta): the same
    density as PyMC's ``Binomial(logit_p=eta)``, with one softplus per observation where
    PyMC's writes log p and log(1 - p) as two (plus a logistic for its parameter check): the
    gradient (k - n logistic(eta)) needs one more exp, 3 transcendental calls per cell against
    7, half the time of the sampler's gradient on a bernoulli of 2,000 rows."""
    # heavy libraries load on first use, not on import
    import pytensor.tensor as pt

    log_c = pt.gammaln(n + 1) - pt.gammaln(value + 1) - pt.gammaln(n - value + 1)
    return log_c + value * eta - n * pt.softplus(eta)


def _binomial_dist(eta, n, size):
    # heavy libraries load on first use, not on import
    import pymc as pm

    return pm.Binomial.dist(n=n, logit_p=eta, size=size)


def _binomial(name, eta, aux, y, extra, dims):
    # heavy libraries load on first use, not on import
    import pymc as pm

    n = extra["trials"] if extra["trials"] is not None else np.ones(np.shape(y), dtype=np.int64)
    return pm.CustomDist(name, eta, n, dist=_binomial_dist, logp=_binomial_logp,
                         class_name="BinomialLogit", observed=y, dims=dims)


def _loglik_binomial(y, eta, aux, trials):
    return binomial_loglik(y, np.ones(np.shape(y)) if trials is None else trials, eta)


def _draw_binomial(rng, eta, aux, n):
    # heavy libraries load on first use, not on import
    from scipy.special import expit

    p = expit(np.asarray(eta, dtype=float))
    return rng.binomial(np.broadcast_to(1 if n is None else n, p.shape), p)


def _mean_logistic(eta, aux):
    # heavy libraries load on first use, not on import
    from scipy.special import expit

    return expit(eta)


def _latent_logistic(mu, aux):
    return np.full(np.shape(mu)[0], np.pi ** 2 / 3)


# ----------------------------------------------------------------------------- beta mixtures
def _ab_beta_binomial(eta, aux, tensor: bool = False):
    """(a, b) = (mu phi, (1 - mu) phi), mu = logistic(eta). logistic(-eta), not 1 - mu: near
    the ceiling (every judgement congruent) the subtraction cancels to 0 and the likelihood's
    gradient breaks down."""
    if tensor:
        # heavy libraries load on first use, not on import
        import pytensor.tensor as pt

        phi = pt.as_tensor_variable(aux["phi"])
        return pt.sigmoid(eta) * phi, pt.sigmoid(-eta) * phi
    # heavy libraries load on first use, not on import
    from scipy.special import expit

    phi = np.asarray(aux["phi"])
    return expit(eta) * phi, expit(-eta) * phi


# Gauss-Hermite nodes for the logit-normal moments. 24 nodes: mean error < 3e-5 and variance
# error < 1e-3 (relative) for sigma <= 2.5 over eta in [-7, 7]; 6e-4 / 1e-2 at sigma = 4
# (against adaptive quadrature, tests/model/test_logitnormal.py), far below any interval's width.
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
        # heavy libraries load on first use, not on import
        import pytensor.tensor as pt

        return pt.as_tensor_variable(eta) * pt.sqrt(1.0 + LN_C2 * pt.as_tensor_variable(sigma) ** 2)
    return np.asarray(eta, dtype=float) * np.sqrt(1.0 + LN_C2 * np.asarray(sigma, dtype=float) ** 2)


def _ln_moments(eta, sigma, tensor: bool = False):
    """E[p] and E[p^2] of p = logistic(ln_location(eta, sigma) + sigma z), z ~ N(0, 1), by
    Gauss-Hermite quadrature (one logistic per node: half the gradient cost of also
    evaluating 1 - p as logistic(-x)); each with eta's shape."""
    if tensor:
        # heavy libraries load on first use, not on import
        import pytensor.tensor as pt

        sigma = pt.as_tensor_variable(sigma)
        x = ln_location(eta, sigma, tensor=True)[..., None] + sigma[..., None] * _LN_X
        p = pt.sigmoid(x)
        return pt.dot(p, _LN_W), pt.dot(p * p, _LN_W)
    # heavy libraries load on first use, not on import
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
        # heavy libraries load on first use, not on import
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
        # heavy libraries load on first use, not on import
        import pymc as pm

        a, b = beta_ab(eta, aux, tensor=True)
        return pm.BetaBinomial(name, n=extra["trials"], alpha=a, beta=b, observed=y, dims=dims)
    return likelihood


def _beta_mix_loglik(beta_ab):
    """log BetaBinomial(k | n, a, b) = log C(n, k) + log B(k + a, n - k + b) - log B(a, b)."""
    def loglik(y, eta, aux, trials):
        # heavy libraries load on first use, not on import
        from scipy.special import betaln

        a, b = beta_ab(np.asarray(eta, dtype=float), aux)
        k, n = np.asarray(y, dtype=float), np.asarray(trials, dtype=float)
        return log_choose(n, k) + betaln(k + a, n - k + b) - betaln(a, b)
    return loglik


def rising_tables(a: np.ndarray, b: np.ndarray, J: int):
    """log of the rising factorials a^(k), b^(k), (a+b)^(k) for k = 0..J: (S, C, J+1) each,
    i.e. log Gamma(x + k) - log Gamma(x), by cumulative sums of log(x + j)."""
    j = np.arange(J, dtype=float)
    out = []
    for x in (a, b, a + b):
        t = np.zeros(x.shape + (J + 1,))
        np.cumsum(np.log(x[..., None] + j), axis=-1, out=t[..., 1:])
        out.append(t)
    return out


def beta_binomial_log_pmf(tables, cell, n, k, J: int) -> np.ndarray:
    """(S, m) beta-binomial log pmf of k trials of n in ``cell`` from :func:`rising_tables`:
    log C(n, k) + log a^(k) + log b^(n-k) - log (a+b)^(n)."""
    la, lb, lt = (t.reshape(t.shape[0], -1) for t in tables)
    base = cell * (J + 1)
    return (log_choose(n, k)
            + la[:, base + k] + lb[:, base + n - k] - lt[:, base + n])


def _mean_logitnormal(eta, aux):
    return _ln_moments(eta, aux["sigma"])[0]


def _latent_logitnormal(mu, aux):
    # the reply-level normal effect is an observation-level random effect on the logit scale:
    # residual variance pi^2/3 + sigma^2 (Nakagawa et al. 2017)
    return np.pi ** 2 / 3 + per_draw(np.asarray(aux["sigma"], dtype=float) ** 2)


# ----------------------------------------------------------------------------- working response
def _intraclass(y: np.ndarray, n: np.ndarray, p: float, w: np.ndarray | None = None) -> float:
    """Moment estimate of the intra-group correlation of k-of-n counts (0 … 0.99); ``w``
    counts how many groups each (y, n) stands for.

    Between-group variation from covariates counts as correlation too, so this errs on the
    side of less information (more terms non-centred)."""
    w = np.ones(len(y)) if w is None else np.asarray(w, dtype=float)
    ok = n > 1
    if w[ok].sum() < 2:
        return 0.0
    phat = y[ok] / n[ok]
    s2 = np.sum(w[ok] * n[ok] * (phat - p) ** 2) / (w[ok].sum() - 1)
    nbar = float(np.average(n[ok], weights=w[ok]))
    rho = (s2 / (p * (1 - p)) - 1) / max(nbar - 1, 1e-9)
    return float(np.clip(rho, 0.0, 0.99))


_EXACT_MAX_N = 400
SMALL_CELL_N = 20  # cells up to this many 0/1 outcomes get the exact empirical-logit moments
# (30 put a 3 x 3-level SBC design of 30-outcome cells at centred + 0.9: 15 divergences in
# one of 25 simulations; at 20 outcomes and more the asymptotic information is close enough)


def _empirical_logit_moments(n: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    """Var and slope of the smoothed empirical logit z = log((k + 0.5) / (n - k + 0.5)) of
    k ~ Binomial(n, p), per element of ``n``: Var(z) and dE[z]/d logit(p) = Cov(z, k).

    For small n the empirical logit is bounded: its variance is well below the asymptotic
    1/(n p (1-p)) and a shift on the logit scale moves E[z] by less than the shift (slope
    < 1). Exact sums for n <= 400, the asymptotic values (1/(n p q), 1) above."""
    # heavy libraries load on first use, not on import
    from scipy.stats import binom

    var = np.empty(len(n))
    slope = np.ones(len(n))
    big = n > _EXACT_MAX_N
    var[big] = 1.0 / (n[big] * p * (1 - p))
    for nn in np.unique(n[~big]):
        k = np.arange(int(nn) + 1)
        pk = binom.pmf(k, nn, p)
        z = np.log((k + 0.5) / (nn - k + 0.5))
        ez = np.sum(pk * z)
        sel = n == nn
        var[sel] = np.sum(pk * (z - ez) ** 2)
        slope[sel] = np.sum(pk * (z - ez) * (k - nn * p))
    return var, slope


def _logit_working(y, n, w):
    """(pooled p, smoothed empirical logit, information of each cell at its own smoothed
    proportion: the IRLS weight; a cell near 0 or 1 says little on the logit scale. The
    pooled p instead overstates it for heterogeneous cells, which understates se and
    overstates tau)."""
    n = n.astype(float)
    p = np.clip((w * y).sum() / (w * n).sum(), 0.02, 0.98)
    z = np.log((y + 0.5) / (n - y + 0.5))
    pc = (y + 0.5) / (n + 1.0)
    return p, n, z, w * n * pc * (1 - pc)


def _working_binomial(y, n, w):
    """Working response and information of independent 0/1 outcomes. Small cells (<=
    SMALL_CELL_N outcomes): the empirical logit rescaled by its exact slope at the pooled p,
    with its exact information 1/Var. With the asymptotic information at each cell's own
    proportion, sparse cells (ten 0/1 outcomes per level of an 800-level term) read as having
    no spread at all: their bounded logits vary less than 1/(n p q) says, the noise was
    overstated, tau came out 0 ("funnel risk 0") and the term sampled at target_accept 0.9."""
    p, n, z, info = _logit_working(y, n, w)
    small = n <= SMALL_CELL_N
    if small.any():
        var1, slope = _empirical_logit_moments(n[small], float(p))
        z[small] = z[small] / slope
        info[small] = w[small] * slope ** 2 / var1
    return z, info


def _working_shared_p(y, n, w):
    """As :func:`_working_binomial` for n outcomes that share p: the information deflated
    by the intra-observation correlation."""
    p, n, z, info = _logit_working(y, n, w)
    return z, info / (1 + (n - 1) * _intraclass(y, n, p, w))


# ----------------------------------------------------------------------------- the table
_PROBABILITY = dict(response_scale="probability",
                    contrast_scales=("difference", "ratio", "odds_ratio"),
                    ppc_stat="rate", latent_var=_latent_logistic)
_BINOMIAL = dict(collapse=True, mean=_mean_logistic, draw=_draw_binomial,
                 loglik=_loglik_binomial, working=_working_binomial, **_PROBABILITY)

FAMILIES = [
    Family("bernoulli", "logit", _binomial, response="binary", aliases=("logistic",),
           **_BINOMIAL),
    Family("binomial", "logit", _binomial, response="count_trials", **_BINOMIAL),
    # k of n with extra-binomial variation between the n-groups (e.g. the 16 word
    # judgements of one trial share a trial-level p ~ Beta(mu*phi, (1-mu)*phi)):
    # mean P = mu = logistic(eta), intra-trial correlation 1/(1+phi). Not summed into
    # cells (a sum of beta-binomials is not beta-binomial): identical (covariates, n, k)
    # trials are counted as one weighted pattern instead, which is exact.
    Family("beta_binomial", "logit", _beta_mix_likelihood(_ab_beta_binomial),
           aux={"phi": "Exponential(scale=20)"},
           response="count_trials", patterns=True, mean=_mean_logistic, aliases=("betabinomial",),
           draw=_drawer(_ab_beta_binomial), loglik=_beta_mix_loglik(_ab_beta_binomial),
           beta_ab=_ab_beta_binomial, working=_working_shared_p,
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
           draw=_drawer(_ab_logitnormal), loglik=_beta_mix_loglik(_ab_logitnormal),
           beta_ab=_ab_logitnormal, working=_working_shared_p,
           methods="The n outcomes of one observation share a probability "
                   "p = logistic(eta sqrt(1 + c^2 sigma^2) + u), u ~ Normal(0, sigma), "
                   "c = 16 sqrt(3) / (15 pi) (sigma: the spread of observations on the "
                   "logit scale; the scaling keeps eta close to the logit of the mean "
                   "response, Zeger, Liang & Albert 1988); the likelihood integrates u out "
                   "through the beta distribution with the same mean and variance of p, "
                   "and the mean response is E[p] under the logit-normal.",
           **{**_PROBABILITY, "latent_var": _latent_logitnormal}),
]
