"""Paper-ready figures from plain tables (polars or pandas DataFrames, numpy arrays).

Every function returns a :class:`matplotlib.figure.Figure` (not registered with pyplot) drawn
in the biasstats style (:mod:`biasstats.report.style`); save it with
:func:`biasstats.report.style.save_figure`. Nothing here fits a model: the inputs are the
effects, ranks, variance-decomposition, predictive-check and cross-check tables described in
:mod:`biasstats.report` (one row per level, posterior summaries as columns).

One module per figure (``plot_forest``, ``plot_heatmap``, ...), all drawn with the public kit
:mod:`biasstats.report.figures.kit` (sizes, intervals, level axes, legends, reference lines,
ROPE bands, scale lookups), which a study's own figures use too. This package is their public
face: ``from biasstats.report import figures as figs; figs.heatmap(...)``.
"""

from biasstats.report.figures.kit import SCALES
from biasstats.report.figures.plot_assurance import assurance
from biasstats.report.figures.plot_categories import category_panels
from biasstats.report.figures.plot_crosscheck import crosscheck
from biasstats.report.figures.plot_derived import derived_panels
from biasstats.report.figures.plot_forest import forest
from biasstats.report.figures.plot_heatmap import heatmap
from biasstats.report.figures.plot_joint import joint_cells
from biasstats.report.figures.plot_leaderboard import leaderboard
from biasstats.report.figures.plot_pit import pit_ecdf
from biasstats.report.figures.plot_ppc import ppc_grouped
from biasstats.report.figures.plot_ranks import ranks
from biasstats.report.figures.plot_replication import published_forest
from biasstats.report.figures.plot_rootogram import rootogram
from biasstats.report.figures.plot_strata import strata_panels
from biasstats.report.figures.plot_variance import variance_decomposition

__all__ = [
    "SCALES",
    "assurance",
    "category_panels",
    "crosscheck",
    "derived_panels",
    "forest",
    "heatmap",
    "leaderboard",
    "joint_cells",
    "pit_ecdf",
    "ppc_grouped",
    "published_forest",
    "ranks",
    "rootogram",
    "strata_panels",
    "variance_decomposition",
]
