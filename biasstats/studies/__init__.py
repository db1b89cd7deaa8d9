"""The built-in studies: each subpackage is one study's science (adapters, simulator presets,
effects, cross-checks, report outputs), registered in :mod:`biasstats.registry` when the
registry loads it. Nothing outside a study's own package imports it."""
