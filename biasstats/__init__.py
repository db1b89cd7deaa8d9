"""biasstats: declarative hierarchical Bayesian analysis of bias in language models."""

__version__ = "0.1.0"
