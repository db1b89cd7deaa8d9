"""The posterior draws behind every estimand row, kept with what each column of them is.

:class:`DrawStore` is the ``Estimands.draws`` dict (``key -> (level names, (S, K) draws)``,
as before) that also remembers, for every key, the row of ``Estimands.all_rows()`` each
column belongs to (estimand, term, level, scale, stratum, category), so the draws can be
written as one long table (:func:`draws_table`: ``estimand_draws.parquet``, what a synthesis
across analyses reads) without parsing keys, whose terms and level names may hold ``:``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["DRAWS_FILE", "DRAW_COLUMNS", "DrawStore", "draws_table"]

DRAWS_FILE = "estimand_draws.parquet"  # in an analysis folder, beside estimands.parquet
# the identity of a draw: the columns of Estimands.all_rows() that name its row
DRAW_COLUMNS = ("estimand", "term", "level", "scale", "stratum", "category")


class DrawStore(dict):
    """``key -> (levels, draws (S, K))``; :meth:`put` also records each column's row."""

    def __init__(self) -> None:
        super().__init__()
        self.identity: dict[str, tuple[str, dict]] = {}

    def put(self, key: str, levels, draws: np.ndarray, *, along: str = "level",
            **ident) -> None:
        """Keep ``draws`` (S, K) under ``key``; column k is the row whose ``along`` field
        ("level", or "stratum" for a within-strata contrast) is ``levels[k]`` and whose other
        fields are ``ident`` (estimand, term, scale, stratum, category, level; ``unit``: the
        row's own unit where its scale does not say it, as for a derived estimand)."""
        self[key] = (list(levels), draws)
        self.identity[key] = (along, {k: v for k, v in ident.items() if v is not None})

    def merge(self, other: DrawStore, rename, **changes) -> None:
        """Take ``other``'s draws under ``rename(key)``, their identity updated by
        ``changes``."""
        for key, (levels, d) in other.items():
            along, ident = other.identity[key]
            self.put(rename(key), levels, d, along=along, **{**ident, **changes})


def draws_table(draws: DrawStore, units: dict[str, str] | None = None,
                dtype=pl.Float64) -> pl.DataFrame:
    """One row per (estimand row, draw): the :data:`DRAW_COLUMNS`, ``unit`` (from ``units``,
    scale -> unit), ``draw`` (0 … S−1, chains stacked) and ``value``."""
    parts = []
    for key, (levels, d) in draws.items():
        along, ident = draws.identity[key]
        d = np.asarray(d, dtype=float)
        S, K = d.shape
        cols = {c: pl.Series(c, [ident.get(c)] * (S * K), dtype=pl.Utf8)
                for c in DRAW_COLUMNS if c != along}
        cols[along] = pl.Series(along, np.repeat(np.asarray(levels, dtype=object).astype(str),
                                                 S), dtype=pl.Utf8)
        parts.append(pl.DataFrame({
            **{c: cols[c] for c in DRAW_COLUMNS},
            # a row's own unit (a derived estimand's), else its scale's (``units``)
            "own_unit": pl.Series("own_unit", [ident.get("unit")] * (S * K), dtype=pl.Utf8),
            "draw": np.tile(np.arange(S, dtype=np.int32), K),
            "value": d.T.reshape(-1)}))
    if not parts:
        return pl.DataFrame(schema={**{c: pl.Utf8 for c in DRAW_COLUMNS}, "unit": pl.Utf8,
                                    "draw": pl.Int32, "value": dtype})
    out = pl.concat(parts, how="vertical")
    unit = pl.coalesce(pl.col("own_unit"), pl.col("scale").replace_strict(
        units or {}, default="", return_dtype=pl.Utf8))
    return out.with_columns(unit.alias("unit"), pl.col("value").cast(dtype)).select(
        *DRAW_COLUMNS, "unit", "draw", "value")
