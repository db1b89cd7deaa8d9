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
the ``[[replication]]`` blocks of the last two print as "published".
"""

from __future__ import annotations

import json
from pathlib import Path

from biasstats.simulate import designs, qa_design, strata_designs

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


if __name__ == "__main__":
    main()
