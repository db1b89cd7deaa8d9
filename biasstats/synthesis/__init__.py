"""Synthesis across analyses: one declared estimand read from many built analyses (their
``estimand_draws.parquet``), ranked with rank uncertainty and pooled by a random-effects
meta-analysis of their draws (``biasstats summarize``).

It reads what :mod:`biasstats.run` wrote and renders with :mod:`biasstats.report`, beside
``run`` in the layers (neither imports the other). :mod:`~biasstats.synthesis.collect` finds
the analyses and the estimand's draws, :mod:`~biasstats.synthesis.leaderboard` ranks them,
:mod:`~biasstats.synthesis.meta` pools them, :mod:`~biasstats.synthesis.spec` reads a
``[summary]`` spec and :mod:`~biasstats.synthesis.summarize` computes and writes it all.
"""

from biasstats.synthesis.spec import SummaryRequest, load_summary, request_from_flags
from biasstats.synthesis.summarize import Summary, summarize, write_summary

__all__ = ["Summary", "SummaryRequest", "load_summary", "request_from_flags", "summarize",
           "write_summary"]
