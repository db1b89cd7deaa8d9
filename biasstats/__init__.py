"""biasstats: declarative hierarchical Bayesian analysis of bias in language models.

The public face, brms-style:

* ``biasstats.fit(formula, data=..., family=...)`` fits a model and returns a :class:`Fit`;
* ``biasstats.estimands(fit, by=..., contrasts=...)``: marginal means, contrasts, slopes and
  ranks of a fit, computed draw by draw;
* ``biasstats.load_spec(path)`` reads and checks an analysis spec (TOML);
* ``biasstats.run_analysis(spec, out_root)`` runs one analysis: ingest, fit, estimands,
  checks and its report;
* ``biasstats.register_adapter(name, fn)`` makes a function of the user's own Python
  selectable as ``[data] adapter = name`` (a spec names adapters, never code).

The stages, bottom up: ``registry`` < ``model`` < ``spec`` < ``ingest`` < ``inference`` <
``effects`` | ``simulate`` < ``checks`` < ``pipeline`` < ``report`` < ``run`` < ``cli``
(ARCHITECTURE.md). ``import biasstats`` does not import PyMC.
"""

from biasstats.inference import Fit, fit
from biasstats.registry import register_adapter
from biasstats.spec import load_spec
from biasstats.version import __version__

__all__ = ["Fit", "__version__", "estimands", "fit", "load_spec", "register_adapter",
           "run_analysis"]


def __getattr__(name: str):
    # the effects and report stages (arviz-stats, matplotlib, jinja2) load on first use
    if name == "run_analysis":
        # the report stage (matplotlib, jinja2) loads on first use
        from biasstats.run import run_analysis

        return run_analysis
    if name == "estimands":
        # the effects stage (arviz-stats) loads on first use
        from biasstats.effects.estimands import estimands

        return estimands
    raise AttributeError(f"module 'biasstats' has no attribute {name!r}")
