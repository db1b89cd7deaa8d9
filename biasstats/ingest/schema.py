"""The canonical trial table: the one schema every ingest produces.

One row per *judgement* (for the IAT adapters: one attribute word of one trial; for a tidy
one-row-per-trial dataset: one trial). Columns, in order:

==============  =======  ==================================================================
column          dtype    meaning
==============  =======  ==================================================================
source_row      Int64    0-based row index in the source file (audit trail back to the raw)
llm             Utf8     the language model
category        Utf8     social category (race, gender, religion, health, ...)
stereotype      Utf8     stereotype / dataset within the category
variant         Utf8     prompt variant (replication, instruction1, synonym, ...)
trial           Int64    trial id, unique within (llm, stereotype, variant)
item            Utf8     the judged item (attribute word, question id); null if one per trial
congruent       Float64  outcome: 1 = stereotype-congruent, 0 = incongruent, null if not ok
status          Utf8     one of STATUSES (ok, refused, unparseable, excluded, error, superseded)
reason          Utf8     why a row is not ``ok`` (null when ok)
raw             Utf8     the raw response text kept for audit
refused         Int64    1 when the row's status is refused, 0 when ok, null otherwise (from
                         ``status``: a model of refusals, ``refused ~ ...`` with ``[data]
                         include = ["refused"]``, reads it)
==============  =======  ==================================================================

Adapters may add further columns after these (``valence``, ``group``, ``group_role``,
``decision_bias``, ``d_score``, ...). Generic (spec-declared) ingestion keeps every source,
path, parse and derived column after them (``source_file``: the file each row came from;
``position``: an exploded element's index), may map any outcome column onto ``congruent`` or
keep its own outcome names; the columns above are always present. ``biasstats spec`` prints
what each canonical column means to the model and the report.
"""

from __future__ import annotations

import polars as pl

STATUSES: tuple[str, ...] = ("ok", "refused", "unparseable", "excluded", "error", "superseded")
# Always listed in a ledger; the others only when some row has them. ``error``: an evaluation
# log's sample that errored (its message is the reason); ``superseded``: a row of an
# evaluation log that a later attempt of the same run replaced. Neither reaches the model.
BASE_STATUSES: tuple[str, ...] = STATUSES[:4]
# Rows that are no trial of the study: set aside by the spec (excluded) or by the log reader
# (errored, superseded). A trial-level model counts the others (ok, refused, unparseable).
NOT_TRIALS: tuple[str, ...] = ("excluded", "error", "superseded")

# Set by a reader (evaluation logs): a row's status and reason before any rule runs; they
# take precedence over every later classification and are dropped once it is done.
LOG_STATUS, LOG_REASON = "_log_status", "_log_reason"

# A design cell: ``trial`` numbers the trials within one (llm, stereotype, variant).
CELL_KEYS: tuple[str, ...] = ("llm", "stereotype", "variant")

# Audit columns added by the reader, not part of a source's own columns.
AUDIT_COLUMNS: tuple[str, ...] = ("source_row", "source_file")

CANONICAL: dict[str, pl.DataType] = {
    "source_row": pl.Int64,
    "llm": pl.Utf8,
    "category": pl.Utf8,
    "stereotype": pl.Utf8,
    "variant": pl.Utf8,
    "trial": pl.Int64,
    "item": pl.Utf8,
    "congruent": pl.Float64,
    "status": pl.Utf8,
    "reason": pl.Utf8,
    "raw": pl.Utf8,
    "refused": pl.Int64,
}


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """Return ``df`` with every canonical column present (null-filled), cast, and first;
    ``refused`` is computed from ``status``.

    Extra columns are kept after the canonical ones. ``status`` values are checked.
    """
    exprs = []
    for name, dtype in CANONICAL.items():
        if name == "refused":  # always read off the status (a source column is replaced)
            exprs.append(pl.when(pl.col("status") == "refused").then(1)
                         .when(pl.col("status") == "ok").then(0)
                         .otherwise(None).cast(dtype).alias(name))
        elif name in df.columns:
            exprs.append(pl.col(name).cast(dtype))
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    extra = [c for c in df.columns if c not in CANONICAL]
    out = df.select(exprs + [pl.col(c) for c in extra])
    bad = set(out["status"].unique().to_list()) - set(STATUSES)
    if bad:
        raise ValueError(f"internal: unknown status values {sorted(map(str, bad))}")
    return out


def number_trials(df: pl.DataFrame, per_source_row: bool = False) -> pl.DataFrame:
    """Add ``trial`` (Int64): the row's 0-based position within its :data:`CELL_KEYS` cell
    (the keys present; ``source_row`` when none is). A ``trial`` column already there is kept.
    ``per_source_row``: rows of one source row (an exploded list) share one trial number."""
    columns = df.collect_schema().names()
    if "trial" in columns:
        return df
    keys = [k for k in CELL_KEYS if k in columns]
    if not keys:
        return df.with_columns(pl.col("source_row").alias("trial"))
    if per_source_row:
        trial = pl.col("source_row").rank("dense").over(keys).cast(pl.Int64) - 1
        return df.with_columns(trial.alias("trial"))
    return df.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).over(keys).alias("trial"))


def list_columns(columns, limit: int | None = None) -> str:
    """The source's own column names (audit columns left out), comma-separated, for error
    messages; with ``limit``, at most that many, then ``", ..."``."""
    shown = [c for c in columns if c not in AUDIT_COLUMNS]
    if limit is None or len(shown) <= limit:
        return ", ".join(shown)
    return ", ".join(shown[:limit]) + ", ..."
