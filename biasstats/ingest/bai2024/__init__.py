"""Bai et al. (2024) raw-text adapters: LLM word-association replies -> word judgements.

Importing this package registers the adapters ``bai2024_iat``, ``bai2024_chained``,
``bai2024_absolute``, ``bai2024_implicit_table`` and ``bai2024_decision_table``.
Modules: :mod:`.lexicon` (stimulus words), :mod:`.parse` (reply parser), :mod:`.dscore`
(the authors' D score, trial-level view), :mod:`.adapters`.
"""

from biasstats.ingest.bai2024 import adapters
from biasstats.ingest.bai2024.dscore import d_score, trial_counts, trial_level
from biasstats.ingest.bai2024.lexicon import load_lexicons
from biasstats.studies import Study, register_study

# Every Bai adapter and the calibrated simulator code the outcome as stereotype congruence.
register_study(Study(
    "bai2024",
    congruence_adapters=("bai2024_iat", "bai2024_chained", "bai2024_absolute",
                         "bai2024_implicit_table", "bai2024_decision_table"),
    congruence_presets=("bai2024",),
))

__all__ = ["adapters", "d_score", "load_lexicons", "trial_counts", "trial_level"]
