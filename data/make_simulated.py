"""Regenerate the small simulated studies the shipped analyses read (known truth beside them).

    python data/make_simulated.py

Writes ``sim_tokens.csv`` (reasoning tokens by association condition, negative binomial with
prompt variation) and ``sim_ranking.csv`` (a résumé-ranking audit: one row per shown
candidate, ``top1`` = ranked first) and ``sim_ratings.csv`` (CV ratings 1–4 by 6 LLMs x 4
scaffolds x 3 CVs x 7 name variants x 10 iterations, cumulative logit with five crossed
small-SD terms and one degenerate LLM x scaffold cell), ``sim_qa.csv`` (a BBQ-shaped QA
benchmark: answers biased / anti / unknown by 4 categories x ambiguous / disambiguated
contexts, 6 question templates each; ``biasstats.simulate.qa_design``),
``sim_tokens_strata.csv`` (reasoning tokens by condition within 2 models x 3 tests, prompts
named by their whole text) and ``sim_ranking_audit.csv`` (a ranking audit in 2 LLMs x 3
jobs), each with ``<name>_truth.json``: the true values of the estimands the analyses report,
for this design (``biasstats.simulate.designs``, ``biasstats.simulate.strata_designs``), which
the ``[[replication]]`` blocks of the last two print as "published". For the joint
analyses (``biasstats.simulate.joint``): ``sim_joint_implicit.csv`` and
``sim_joint_decision.csv`` (two 0/1 outcomes on 40 cells whose logit-scale effects correlate
0.6) and ``sim_refusals.csv`` (replies to 30 prompts in two conditions: refused or answered,
the answer 0/1; refusal and answer effects of the prompts correlate 0.5), with
``sim_joint_truth.json`` and ``sim_refusals_truth.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from biasstats.simulate import designs, joint, qa_design, strata_designs

HERE = Path(__file__).resolve().parent


def main() -> None:
    for name, (table, truth) in {
        "sim_tokens": designs.token_counts(seed=20240204),
        "sim_ranking": designs.ranking_audit(seed=1, requests=1000),
        "sim_ratings": designs.cv_ratings(seed=20260126),
        "sim_qa": qa_design.qa_bias(seed=20220315),  # BBQ-shaped QA: biased/anti/unknown
        "sim_tokens_strata": strata_designs.token_strata(seed=20260301),
        "sim_ranking_audit": strata_designs.ranking_strata(seed=20260302),
    }.items():
        table.write_csv(HERE / f"{name}.csv")
        (HERE / f"{name}_truth.json").write_text(
            json.dumps({k: (float(v) if not isinstance(v, str) else v) for k, v in truth.items()},
                       indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {name}.csv ({table.height} rows) and {name}_truth.json")
    implicit, decision, truth = joint.correlated_cells(seed=20240601, cells=40, rho=0.6)
    implicit.write_csv(HERE / "sim_joint_implicit.csv")
    decision.write_csv(HERE / "sim_joint_decision.csv")
    _write_truth("sim_joint", truth.to_dict())
    replies, truth = joint.refusal_study(seed=20240602)
    replies.write_csv(HERE / "sim_refusals.csv")
    _write_truth("sim_refusals", truth)


def _write_truth(name: str, truth: dict) -> None:
    (HERE / f"{name}_truth.json").write_text(json.dumps(truth, indent=2) + "\n",
                                            encoding="utf-8")
    print(f"wrote the {name} data and {name}_truth.json")


if __name__ == "__main__":
    main()
