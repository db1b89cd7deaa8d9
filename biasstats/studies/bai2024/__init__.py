"""Bai et al. (2024): everything specific to that study, registered with :mod:`biasstats.registry`.

Importing this package registers the raw-text adapters ``bai2024_iat``, ``bai2024_chained``,
``bai2024_absolute``, ``bai2024_implicit_table`` and ``bai2024_decision_table`` and the study's
hooks: the calibrated simulator preset ``bai2024``, the per-trial D-score counts for
``unit = "trial"``, the congruence effects (probability, bias, odds ratio and the D score),
the authors' t-tests with a cluster-robust GLM as a cross-check, and the report's forests,
heatmap and category-grouped figure.

Modules: :mod:`.lexicon` (stimulus words), :mod:`.parse` (reply parser), :mod:`.dscore`
(the authors' D score, trial-level view), :mod:`.adapters`, :mod:`.effects`,
:mod:`.crosscheck`, :mod:`.simulate` (the calibrated preset), :mod:`.dscore_grid`
(calibration helpers), :mod:`.figures`, :mod:`.report`, :mod:`.wording` (its words: verdicts,
findings and methods sentences, registered as the study's vocabulary).
"""

import polars as pl

from biasstats.registry import Scale, Study, Vocabulary, register_study
from biasstats.studies.bai2024 import adapters, wording
from biasstats.studies.bai2024.dscore import d_score, trial_counts, trial_level
from biasstats.studies.bai2024.lexicon import load_lexicons


def _trial_counts(rows: pl.DataFrame) -> pl.DataFrame | None:
    """``unit = "trial"``: the D-score counts a, b, c, d and ``d_score`` of each trial (rows
    with the study's ``group_role`` and ``valence`` columns only)."""
    if not {"group_role", "valence"} <= set(rows.columns):
        return None
    return trial_counts(rows).drop("n_ok", strict=False)


def _effects(fit, table, *, prob, rope):
    # the study's modules load on use, not on registration
    from biasstats.studies.bai2024.effects import compute_effects

    return compute_effects(fit, table, prob=prob, rope=rope)


def _preset(sim):
    # the study's modules load on use, not on registration
    from biasstats.studies.bai2024.simulate import preset

    return preset(sim)


def _preset_size(sim) -> tuple[int, str]:
    # the study's modules load on use, not on registration
    from biasstats.studies.bai2024.simulate import N_LLMS, N_NEG, N_POS, N_STEREOTYPES

    llms = N_LLMS if sim.llms is None else len(sim.llms)
    rows = llms * N_STEREOTYPES * len(sim.variants) * sim.trials * (N_POS + N_NEG)
    return rows, (f"{llms} LLMs x {N_STEREOTYPES} stereotypes x {len(sim.variants)} variants "
                  f"x {sim.trials} trials x {N_POS + N_NEG}")


def _crosscheck(table, effects):
    # the study's modules load on use, not on registration
    from biasstats.studies.bai2024.report import crosscheck

    return crosscheck(table, effects)


def _report_outputs(art, fit, ing, spec, effects):
    # the study's modules load on use, not on registration
    from biasstats.studies.bai2024.report import report_outputs

    return report_outputs(art, fit, ing, spec, effects)


def _reduced_design(**kw):
    # the study's modules load on use, not on registration
    from biasstats.studies.bai2024.simulate import reduced_bai_design

    return reduced_bai_design(**kw)


# Every Bai adapter and the calibrated simulator code the outcome as stereotype congruence.
STUDY = register_study(Study(
    "bai2024",
    congruence_adapters=("bai2024_iat", "bai2024_chained", "bai2024_absolute",
                         "bai2024_implicit_table", "bai2024_decision_table"),
    congruence_presets=("bai2024",),
    presets={"bai2024": _preset},
    preset_sizes={"bai2024": _preset_size},
    trial_aggregations=(_trial_counts,),
    effects=_effects,
    crosschecks=(_crosscheck,),
    report_outputs=(_report_outputs,),
    scales={"bias": Scale("Bias (−1 … +1)", 0.0, False),
            "d_score": Scale("D score (−1 … +1)", 0.0, False, rope_as="bias")},
    designs={"bai2024_reduced": _reduced_design},
    vocabulary=Vocabulary(wording.OUTCOME, answers=wording.ANSWERS,
                          verdicts=wording.VERDICT_WORDS, findings=wording.findings,
                          methods=wording.methods,
                          unusable=wording.UNUSABLE),
))

__all__ = ["STUDY", "adapters", "d_score", "load_lexicons", "trial_counts", "trial_level",
           "wording"]
