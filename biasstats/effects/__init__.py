"""Effects stage: posterior effect sizes on readable scales. Entry point: :func:`compute_effects`."""

from biasstats.effects.compute import Effects, compute_effects, expected_d

__all__ = ["Effects", "compute_effects", "expected_d"]
