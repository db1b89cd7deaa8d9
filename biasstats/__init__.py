"""biasstats: declarative hierarchical Bayesian analysis of bias in language models.

``biasstats.fit(formula, data=..., family=...)`` fits a model (brms-style); the stages are
``biasstats.ingest``, ``biasstats.spec``, ``biasstats.model``, ``biasstats.fit``,
``biasstats.effects``, ``biasstats.checks`` and ``biasstats.report``.
"""

__version__ = "0.1.0"

from biasstats import fit  # noqa: E402  (callable: biasstats.fit(formula, data=...))

__all__ = ["fit", "__version__"]
