"""Refusals as information: a joint model of P(refusal) (a part whose formula models the
``refused`` column on every reply, ``[data] include = ["refused"]``) and the outcome among
answers (a part on the answered replies of the same source), their prompt effects
correlated. Beyond each part's own estimands — P(refusal) and the outcome among answers by
the declared factors — this module gives the **sensitivity of the outcome contrast to the
refusals**: what the contrast between two levels would be had the refused replies answered.

Per level l of the contrast factor, with R_l = P(refusal) (the refusal part's expected
refusal averaged over level l's replies, draw by draw) and m_l the outcome among answers:

* **answers only**: m_b − m_a (the outcome part's contrast);
* **bounds** (worst / best case, Manski): the refused replies all answered 0 or all 1, so
  level l's outcome over all replies lies in [(1 − R_l) m_l, (1 − R_l) m_l + R_l]; the
  contrast b − a lies between its lower bound (b's refusals 0, a's 1) and upper bound (b's
  refusals 1, a's 0) — any assumption about the refusals gives a contrast in this range;
* **model-based**: the refused replies would have answered as the answered replies with the
  same covariates do (missing at random given the prompt and the condition; the correlated
  prompt effects carry what the refusals say about a prompt): the outcome part's expected
  response averaged over all of level l's replies.

Bounds need an outcome between 0 and 1 (a binomial family); otherwise only the model-based
contrast is given. Differences are in percentage points for probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from biasstats.effects.strata import contrast_pairs
from biasstats.inference.predict import hdi
from biasstats.model.design import model_factors

__all__ = ["RefusalSensitivity", "refusal_sensitivity", "REFUSED"]

REFUSED = "refused"  # the canonical column a refusal part models

METHODS = ("answers only", "lower bound", "upper bound", "model-based")


@dataclass
class RefusalSensitivity:
    """``table``: term, level ("b − a"), method (answers only, lower bound, upper bound,
    model-based), scale, mean, sd, hdi_low, hdi_high, hdi_prob; ``parts``: (refusal part,
    outcome part); ``shares``: per level, the replies, the refused ones and P(refusal)."""

    parts: tuple[str, str]
    table: pl.DataFrame
    shares: pl.DataFrame
    notes: list[str] = field(default_factory=list)
    unit: str = "percentage points"

    def rows(self) -> pl.DataFrame:
        """The ``estimands.parquet`` rows: estimand ``refusal_sensitivity``."""
        if self.table.height == 0:
            return pl.DataFrame()
        return self.table.with_columns(
            pl.lit("refusal_sensitivity").alias("estimand"), pl.lit(self.unit).alias("unit"),
            pl.lit(f"{self.parts[1]} (refusals: {self.parts[0]})").alias("parts"))

    def ranges(self) -> list[tuple[str, str, dict]]:
        """(term, contrast, {method: row}) per contrast, for sentences."""
        out = []
        for (term, level), grp in self.table.group_by(["term", "level"], maintain_order=True):
            out.append((term, level, {r["method"]: r for r in grp.iter_rows(named=True)}))
        return out


def _summ(d: np.ndarray, prob: float) -> dict:
    lo, hi = hdi(d[:, None], prob)[0]
    return {"mean": float(d.mean()), "sd": float(d.std(ddof=1)), "hdi_low": float(lo),
            "hdi_high": float(hi), "hdi_prob": prob}


def contrast_factors(outcome_spec, effects) -> list[str]:
    """The outcome part's contrast factors: its ``[effects] contrasts`` (plain factors), else
    its fixed-effect factors."""
    if effects.contrasts is not None:
        return [c for c in effects.contrasts if "|" not in c and ":" not in c]
    return model_factors(outcome_spec)[0]


def refusal_sensitivity(refusal_fit, outcome_fit, replies: pl.DataFrame, factors: list[str],
                        effects, parts: tuple[str, str], prob: float = 0.95
                        ) -> RefusalSensitivity:
    """The sensitivity of the outcome part's contrasts (``factors``, pairs as its
    ``[effects]`` ask) to the refusals, over ``replies`` (every reply the refusal part
    models, ``refused`` 0/1); ``refusal_fit`` and ``outcome_fit`` are the parts' views of
    the joint posterior."""
    fam = outcome_fit.spec.family
    pct = 100.0 if fam.response_scale == "probability" else 1.0
    bounded = fam.binary_outcomes
    p_ref = refusal_fit.epred(replies, new_levels="sample", seed=1)       # (S, replies)
    y_all = outcome_fit.epred(replies, new_levels="sample", seed=2)
    answered = replies[REFUSED].to_numpy() == 0
    rows, shares, notes = [], [], []
    if not bounded:
        notes.append(f"refusal bounds not computed: family '{fam.name}' has no bounded "
                     "outcome (the model-based contrast is)")
    for f in factors:
        if f not in replies.columns:
            notes.append(f"refusal sensitivity by {f}: the refusal part's replies have no "
                         f"column {f}")
            continue
        labels = replies[f].cast(pl.Utf8).to_numpy()
        levels = sorted(set(labels))
        per = {}
        for lv in levels:
            at = labels == lv
            ans = at & answered
            if not ans.any():
                notes.append(f"refusal sensitivity by {f}: level {lv} has no answered reply")
                break
            r = p_ref[:, at].mean(axis=1)
            m = y_all[:, ans].mean(axis=1)
            per[lv] = {"R": r, "m": m, "full": y_all[:, at].mean(axis=1),
                       "low": (1 - r) * m, "high": (1 - r) * m + r}
            shares.append({"term": f, "level": lv, "replies": int(at.sum()),
                           "refused": int((at & ~answered).sum()), **{
                               f"p_refusal_{k}": v for k, v in _summ(r, prob).items()
                               if k in ("mean", "hdi_low", "hdi_high")}})
        else:
            ref = effects.reference.get(f)
            for i, j in contrast_pairs(levels, None if ref is None else str(ref),
                                       effects.pairs):
                b, a = per[levels[i]], per[levels[j]]
                name = f"{levels[i]} − {levels[j]}"
                cands = {"answers only": b["m"] - a["m"], "model-based": b["full"] - a["full"]}
                if bounded:
                    cands["lower bound"] = b["low"] - a["high"]
                    cands["upper bound"] = b["high"] - a["low"]
                for method in METHODS:
                    if method in cands:
                        rows.append({"term": f, "level": name, "method": method,
                                     "scale": "difference", **_summ(cands[method] * pct, prob)})
    return RefusalSensitivity(parts=parts, table=pl.DataFrame(rows) if rows else pl.DataFrame(),
                              shares=pl.DataFrame(shares) if shares else pl.DataFrame(),
                              notes=notes,
                              unit="percentage points" if pct == 100.0 else "outcome units")
