"""biasstats: declarative hierarchical Bayesian analysis of bias in language models.

``biasstats.fit(formula, data=..., family=...)`` fits a model (brms-style); the stages are
``biasstats.ingest``, ``biasstats.spec``, ``biasstats.model``, ``biasstats.fit``,
``biasstats.effects``, ``biasstats.checks`` and ``biasstats.report``.
``biasstats.register_adapter(name, fn)`` makes a function of the user's own Python selectable
as ``[data] adapter = name`` (a spec names adapters, never code).
"""

__version__ = "0.1.0"

from biasstats import fit  # noqa: E402  (callable: biasstats.fit(formula, data=...))
from biasstats.studies import register_adapter  # noqa: E402

__all__ = ["fit", "register_adapter", "__version__"]
