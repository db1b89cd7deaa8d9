"""The impact table of a within-strata term (``[effects] impact``): ratios to a declared
reference level, to the best level, the adverse-impact ratio, P(best) / P(worst) and whether
the data settle which levels are the best and the worst — worded so that a ratio between a
pair chosen from noisy estimates is not read as a fixed comparison."""

from __future__ import annotations

import polars as pl

from biasstats.effects.strata import SELECTION_SURE
from biasstats.names import safe_name
from biasstats.report import figures as figs
from biasstats.report.tables import hdi_label

__all__ = ["impact_outputs"]

MAX_PANELS = 12  # strata drawn as small multiples, one panel each
MAX_FOREST = 40  # strata in the adverse-impact forest
MAX_NAMED = 8    # strata named in a caption


def _listing(strata: list[str]) -> str:
    more = len(strata) - MAX_NAMED
    return ", ".join(strata[:MAX_NAMED]) + (f", … and {more} more" if more > 0 else "")


def _num(v: float, d: int = 3) -> str:
    return f"{v:.{d}f}".replace("-", "−")


def _impact_table(df: pl.DataFrame) -> pl.DataFrame:
    """The impact rows of one term: stratum, level (``"B / A"`` against the reference; a
    level against the best; ``min / max``), which ratio, its mean and HDI, P(< 0.8),
    P(best) / P(worst), and for the adverse-impact ratio which pair it is and whether the
    data settle that choice (``uncertain``: P(the chosen best is the best) or P(the chosen
    worst is the worst) below :data:`~biasstats.effects.strata.SELECTION_SURE`)."""
    hdi = hdi_label(df)
    pair = [f"{w} / {b}" if w is not None else None for w, b in
            zip(df["worst"] if "worst" in df.columns else [None] * df.height,
                df["best"] if "best" in df.columns else [None] * df.height, strict=True)]
    out = {"Stratum": df["stratum"], "Level": df["level"], "Estimand": df["estimand"],
           "Mean": df["mean"],
           hdi: [f"[{_num(lo)}, {_num(hi)}]" for lo, hi in
                 zip(df["hdi_low"], df["hdi_high"], strict=True)],
           "P(< 0.8)": df["p_below_four_fifths"],
           "P(best)": df["p_best"], "P(worst)": df["p_worst"], "Pair": pair}
    if "selection" in df.columns:
        out["Selection"] = df["selection"]
    return pl.DataFrame(out)


def impact_outputs(art, df: pl.DataFrame, term: str, f: str, s: str, wording, pct: int,
                   section: str) -> None:
    """The impact table of one term, its honest caption and the adverse-impact forest."""
    air = df.filter(pl.col("estimand") == "adverse-impact ratio")
    unsure = air.filter(pl.col("selection") == "uncertain")["stratum"].to_list() \
        if "selection" in air.columns else []
    ref = df.filter(pl.col("estimand") == "ratio to reference")
    lead = (f"each level of {f}'s {wording.noun} over the reference level "
            f"{ref['reference'][0]}'s (a fixed comparison), " if ref.height else "")
    flag = (f" Where the data do not settle which levels are the highest and lowest "
            f"(Selection \"uncertain\": P(best) or P(worst) of the chosen pair below "
            f"{SELECTION_SURE:g}; {_listing(unsure)}), the ratios to the best and "
            "the adverse-impact ratio compare a pair chosen from noisy estimates and their "
            "intervals may be too narrow; read them with P(best) and P(worst)"
            + (", and prefer the ratios to the reference." if ref.height else ".")
            if unsure else "")
    art.table(f"impact_{safe_name(term)}", _impact_table(df),
              f"Within each level of {s}: {lead}each level's over the level with the highest "
              f"posterior mean (ratio to best), and the adverse-impact ratio (the lowest "
              f"posterior mean over the highest; Pair), with {pct}% HDI, the posterior "
              "probability that the ratio is below 0.8 (the four-fifths rule) and that each "
              "level is the highest (P(best)) or the lowest (P(worst)) of its stratum; for "
              "the adverse-impact ratio, P(best) and P(worst) are those of the chosen pair."
              + flag, section=section, digits=3)
    if 1 <= air.height <= MAX_FOREST:
        art.figure(f"impact_{safe_name(term)}",
                   lambda a=air, t=term: figs.forest(
                       a.with_columns(pl.col("stratum").alias("level"),
                                      pl.lit("ratio").alias("scale")), t, "ratio",
                       label="Adverse-impact ratio"),
                   f"Adverse-impact ratio (lowest {f} rate over the highest) per {s}: "
                   f"posterior mean and {pct}% HDI; 0.8 is the four-fifths threshold."
                   + (f" The lowest and highest levels are uncertain in {_listing(unsure)}."
                      if unsure else ""), section=section)
    if ref.height and 1 <= ref["stratum"].n_unique() <= MAX_PANELS:
        art.figure(f"impact_reference_{safe_name(term)}",
                   lambda r=ref: figs.strata_panels(r, xlabel="Ratio to the reference",
                                                    ref=1.0, log=True),
                   f"Each level of {f}'s {wording.noun} over {ref['reference'][0]}'s, one "
                   f"panel per {s}: posterior mean and {pct}% HDI (1 = the same rate).",
                   section=section)
