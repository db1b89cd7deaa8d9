"""What every family is: the :class:`Family` record, the response kinds and the links.

A family owns its behaviour: the PyMC likelihood, the numpy log-likelihood and random draw,
the expected response, the scales its default priors and its centring rule read from the data,
the placeholder response of a design without one, the response and ROPE checks, and the link
(its inverse, the transform of a level's slope, the name of its latent scale). The rest of
biasstats reads these fields and calls these methods; it never asks which family it has.

The response kinds (:data:`RESPONSES`) and links (:data:`LINKS`) are records too: a family
names one of each, and its flags (``needs_trials``, ``has_categories``, ``binary_outcomes``,
...) are read off them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from biasstats.errors import SpecError

__all__ = ["Family", "Link", "LINKS", "Response", "RESPONSES", "log_choose", "per_draw"]


def log_choose(n, k) -> np.ndarray:
    """log C(n, k), elementwise (floats): the binomial coefficient every binomial and
    beta-binomial log-likelihood here shares."""
    # heavy libraries load on first use, not on import
    from scipy.special import gammaln

    n, k = np.asarray(n, dtype=float), np.asarray(k, dtype=float)
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def per_draw(a) -> np.ndarray:
    """(S,) from an auxiliary draw array (S, 1) or (S, cells) (a distributional formula:
    averaged over the cells)."""
    a = np.asarray(a, dtype=float)
    return a.mean(axis=1) if a.ndim == 2 else a.reshape(-1)


# ----------------------------------------------------------------------------- response kinds
def _count_off(y):
    return (y < 0) | (np.round(y) != y)


def _alternating(n: int) -> np.ndarray:
    """-1, 1, -1, ...: a placeholder response with a unit spread (a constant one would make
    the data-scaled priors degenerate)."""
    return np.where(np.arange(n) % 2 == 0, -1.0, 1.0)


@dataclass(frozen=True)
class Response:
    """What a family's response must look like.

    what            the words of a response check's error ("" when any number will do)
    off             off(y) -> boolean mask of the values this kind cannot hold (None: any)
    integer         the response is stored as integers (counts, 0/1, category codes)
    needs_trials    ``k | trials(n) ~ ...``: k of n
    binary_outcomes the response counts 0/1 outcomes (k of n; n = 1 for a 0/1 column): its
                    mean is their probability
    single          every observation is one 0/1 outcome (n = 1)
    categories      the response is a category (ordered or not), coded 0 … K-1
    counts          a count without trials (0, 1, 2, …): a rootogram compares its frequencies
    placeholder     placeholder(n) -> a response for a design that has none (it only scales
                    the data-based priors)
    """

    name: str
    what: str = ""
    off: Callable | None = None
    integer: bool = False
    needs_trials: bool = False
    binary_outcomes: bool = False
    single: bool = False
    categories: bool = False
    counts: bool = False
    placeholder: Callable = field(default=lambda n: np.zeros(n))


RESPONSES: dict[str, Response] = {r.name: r for r in [
    Response("binary", "0/1 values", lambda y: ~np.isin(y, (0, 1)), integer=True,
             binary_outcomes=True, single=True),
    Response("count_trials", "non-negative integer counts", _count_off, integer=True,
             needs_trials=True, binary_outcomes=True),
    Response("real", placeholder=_alternating),
    Response("positive", "positive values", lambda y: y <= 0,
             placeholder=lambda n: np.exp(_alternating(n))),
    Response("unit", "values strictly between 0 and 1", lambda y: (y <= 0) | (y >= 1),
             placeholder=lambda n: 0.5 + 0.25 * _alternating(n)),
    Response("count", "non-negative integer counts", _count_off, integer=True, counts=True),
    Response("ordinal", integer=True, categories=True),
    Response("categorical", integer=True, categories=True),
]}


# ----------------------------------------------------------------------------- links
def _identity(v):
    return v


def _expit(v):
    # heavy libraries load on first use, not on import
    from scipy.special import expit

    return expit(v)


@dataclass(frozen=True)
class Link:
    """A link function.

    inverse      eta -> the mean of a one-predictor family's response on its own scale (None
                 for the multi-category links)
    slope_scale  the scale a level's slope is reported on (``difference``, ``ratio`` of
                 means, ``odds_ratio``) and slope_transform, the map from the link scale
    latent       the latent scale's name in a variance decomposition's caption
    log_mean     the link is the log of the mean (default priors centre on log mean(y))
    """

    name: str
    inverse: Callable | None
    slope_scale: str = "difference"
    slope_transform: Callable = _identity
    latent: str = ""
    log_mean: bool = False


LINKS: dict[str, Link] = {lk.name: lk for lk in [
    Link("logit", _expit, "odds_ratio", np.exp, "logit"),
    Link("identity", _identity, latent="outcome"),
    Link("log", np.exp, "ratio", np.exp, "log", log_mean=True),
    # the odds of a higher category
    Link("cumulative-logit", None, "odds_ratio", np.exp, "cumulative-logit"),
    Link("multinomial-logit", None, latent="multinomial-logit"),
]}


# ----------------------------------------------------------------------------- the family
def _no_working(y, n, w):
    return None  # ordinal / categorical: the centring rule's information rule only


@dataclass(frozen=True)
class Family:
    """A response family: its data, its maths and the flags the later stages read.

    name        registry key
    link        a key of :data:`LINKS`: ``logit`` / ``identity`` / ``log`` /
                ``cumulative-logit`` / ``multinomial-logit``
    likelihood  ``f(name, eta, aux: dict, y, extra: dict, dims) -> pm observed RV``
    aux         auxiliary parameter -> default prior string; placeholders ``{sd_y}``,
                ``{sd_logy}`` are filled from the data
    response    a key of :data:`RESPONSES`: ``binary``, ``count_trials``, ``real``,
                ``positive``, ``unit``, ``count``, ``ordinal``, ``categorical``
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
    # the scale marginal means are reported on: "probability" (of the outcome, or of each
    # category when ``categories`` is set) or "mean" (in outcome units)
    response_scale: str | None = "mean"
    # the expected response of an ordinal or categorical outcome: the probability of each
    # response category, categories(eta, aux) -> (S, rows, K) (eta (S, rows) for one linear
    # predictor, (S, rows, K-1) for the categorical family's K-1); None for other families
    categories: Callable | None = None
    # one linear predictor per response category but the first (varying intercepts only)
    multinomial: bool = False
    # contrasts between marginal means: "difference" always; "ratio" (log link, a ratio of
    # means) or "odds_ratio" (logit link on a probability)
    contrast_scales: tuple[str, ...] = ("difference",)
    # the posterior predictive statistic of a grouped check, in words: "rate" (share of
    # successes: binary_outcomes), "mean" (continuous and counts) or "shares" (the share of
    # each category: has_categories)
    ppc_stat: str = "mean"
    # residual variance on the latent (link) scale for a variance decomposition
    # (Nakagawa & Schielzeth 2013, Nakagawa et al. 2017): latent_var(mean_response, aux) ->
    # (S,) draws; None where no such variance is defined (the reason is latent_note)
    latent_var: Callable | None = None
    latent_note: str = ""
    # whether latent_var reads its mean_response argument (count families); the others get
    # zeros, so the expected response is not computed for nothing
    latent_uses_mean: bool = False
    # draw(rng, eta, aux, n) -> responses, in numpy: eta (S, m) (or (m,)), aux values
    # broadcastable to it ((S, 1), (S, m) or numbers), n the trials of k-of-n families
    draw: Callable | None = None
    # loglik(y, eta, aux, trials) -> elementwise log density (pmf) of y, in numpy
    loglik: Callable | None = None
    # k-of-n families whose n outcomes share p ~ Beta(a, b): beta_ab(eta, aux, tensor=False)
    # -> (a, b), on numpy arrays or (tensor=True) PyTensor tensors. Pattern models of such a
    # family use the exact sufficient-statistic likelihood (model.sufficient.count_stats).
    beta_ab: Callable | None = None
    # working(y, trials, weights) -> (working response on the link scale, its Fisher
    # information per observation), what the centring rule reads; None: no working response
    working: Callable = _no_working
    # one sentence for the methods paragraph: what the family assumes ("" for the obvious)
    methods: str = ""
    # other names a spec may give it (``[model] family = "negbin"``)
    aliases: tuple[str, ...] = ()

    # ---- what the response is (read off its kind)
    @property
    def kind(self) -> Response:
        return RESPONSES[self.response]

    @property
    def needs_trials(self) -> bool:
        """``k | trials(n) ~ ...``."""
        return self.kind.needs_trials

    @property
    def binary_outcomes(self) -> bool:
        """The response counts 0/1 outcomes and the mean response is their probability
        (bernoulli and the k-of-n families)."""
        return self.kind.binary_outcomes

    @property
    def single_outcome(self) -> bool:
        """Every observation is one 0/1 outcome."""
        return self.kind.single

    @property
    def has_categories(self) -> bool:
        """The response is one of K categories (ordered or not)."""
        return self.kind.categories

    @property
    def ordered(self) -> bool:
        """Ordered categories (one linear predictor and cut-points)."""
        return self.kind.categories and not self.multinomial

    @property
    def integer_response(self) -> bool:
        return self.kind.integer

    @property
    def counts(self) -> bool:
        """A count response without trials: its posterior predictive check includes the
        frequency of each count (a rootogram)."""
        return self.kind.counts

    def n_linpred(self, response_levels) -> int:
        """Linear predictors per observation: one, or K - 1 for a multinomial family."""
        return len(response_levels) - 1 if self.multinomial else 1

    def default_trials(self, n: int) -> np.ndarray | None:
        """The trials of ``n`` uncollapsed rows without a trials column (1 for 0/1 rows)."""
        return np.ones(n, dtype=np.int64) if self.single_outcome else None

    def placeholder(self, n: int) -> np.ndarray:
        """A response for ``n`` design rows that have none (it only scales the data-based
        priors); SpecError for a family that needs the response to know its categories."""
        if self.has_categories:
            raise SpecError(f"family '{self.name}' needs the response column to know the "
                            "response categories")
        return self.kind.placeholder(n)

    # ---- the link
    @property
    def link_fn(self) -> Link:
        return LINKS[self.link]

    def inverse_link(self, eta):
        return self.link_fn.inverse(eta)

    @property
    def slope_scale(self) -> tuple[str, Callable]:
        """(scale name, transform from the link scale) of a level's slope."""
        return self.link_fn.slope_scale, self.link_fn.slope_transform

    @property
    def latent_scale(self) -> str:
        return self.link_fn.latent

    # ---- the data's scales (default priors)
    def prior_location(self, y: np.ndarray) -> tuple[float, float]:
        """(location, scale) of the response on the link scale, for default priors."""
        y = y.astype(float)
        if self.scale == "y":
            return float(np.mean(y)), float(np.std(y)) or 1.0
        if self.scale == "logy":
            ly = np.log(y)
            return float(np.mean(ly)), float(np.std(ly)) or 1.0
        if self.link_fn.log_mean:
            return float(np.log(max(np.mean(y), 1e-3))), 1.0
        return 0.0, 1.0

    def aux_priors(self, y: np.ndarray) -> dict[str, str]:
        """The auxiliaries' default prior strings with their data placeholders filled."""
        sd_y = float(np.std(y)) or 1.0
        sd_logy = float(np.std(np.log(y))) if self.scale == "logy" else 1.0
        return {k: txt.format(sd_y=round(sd_y, 4), sd_logy=round(sd_logy or 1.0, 4))
                for k, txt in self.aux.items()}

    # ---- checks
    def unsupported(self, y: np.ndarray, trials: np.ndarray | None = None):
        """(what the response must hold, boolean mask of the rows that do not) — the mask is
        None when every row is fine."""
        y = np.asarray(y, dtype=float)
        kind = self.kind
        bad, off = (kind.what, kind.off(y)) if kind.off is not None else (None, None)
        if kind.needs_trials and trials is not None and not off.any():
            trials = np.asarray(trials, dtype=float)
            bad = "integer trials at least as large as the counts"
            off = (trials < y) | (np.round(trials) != trials)
        return (bad, off) if off is not None and off.any() else (None, None)

    def check_response(self, y: np.ndarray, term: str, trials: np.ndarray | None = None) -> None:
        """Raise SpecError (naming the response term) if y cannot come from this family."""
        bad, off = self.unsupported(y, trials)
        if off is not None:
            raise SpecError(f"response '{term}' must hold {bad} for family '{self.name}' "
                            f"({int(off.sum())} of {len(y)} rows do not)")

    def check_trials(self, response: str, trials: str | None) -> None:
        """SpecError unless the formula gives trials exactly when the family needs them."""
        if self.needs_trials and not trials:
            raise SpecError(f"family 'binomial' needs a response like '{response} | trials(n)'")
        if trials and not self.needs_trials:
            raise SpecError(f"response '{response} | trials({trials})' needs family 'binomial'")

    def check_rope(self, rope: float | None, key: str = "[effects] rope") -> None:
        """One-line SpecError for a ROPE (a half-width in outcome units) this family's
        estimands cannot use."""
        if rope is None:
            return
        if self.categories is not None:
            raise SpecError(f"{key}: family '{self.name}' has no single outcome scale for a "
                            "ROPE (it reports one probability per response category); remove "
                            "the key")
        if self.binary_outcomes and not 0 < rope < 1:
            raise SpecError(f"{key}: {rope} is not a difference of probabilities (give a "
                            "half-width between 0 and 1, e.g. 0.05 = 5 percentage points)")
