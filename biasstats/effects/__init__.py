"""Effects stage: posterior estimands on the outcome's own scales
(:func:`biasstats.effects.estimands.compute_estimands`) and the latent-scale variance
decomposition. A study's congruence effects (e.g. the Bai et al. bias and D-score scales) come
from its registry entry (:func:`biasstats.registry.congruence_effects`)."""

from biasstats.effects.estimands import estimands
from biasstats.effects.variance import variance_decomposition

__all__ = ["estimands", "variance_decomposition"]
