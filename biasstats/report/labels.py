"""Short keys for long level names: a level that is a whole prompt text (or any name longer
than :data:`MAX_LABEL` characters, or on several lines) is shown in figures, tables and
sentences as a key made from its factor's name ("P1", "P2", ... for ``prompt``), and a key
table maps each key to the full label. Data outputs (``estimands.csv``, ``trials.parquet``)
keep the full labels."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import polars as pl

__all__ = ["MAX_LABEL", "LabelKeys", "is_long", "label_keys", "shortened"]

MAX_LABEL = 24  # characters a level name may have before it is shown as a key
_TEXT_COLUMNS = ("level", "stratum", "parameter", "term_level")


def is_long(label: str) -> bool:
    """Too long to print whole: more than :data:`MAX_LABEL` characters or several lines."""
    return len(label) > MAX_LABEL or "\n" in label or "\r" in label


def _prefix(factor: str, taken: set[str]) -> str:
    """An upper-case prefix from the factor's name ("prompt" -> "P"), one per factor."""
    letters = re.sub(r"[^A-Za-z0-9]", "", factor).upper() or "L"
    for n in range(1, len(letters) + 1):
        if letters[:n] not in taken:
            return letters[:n]
    k = 2
    while f"{letters}{k}_" in taken:
        k += 1
    return f"{letters}{k}_"


@dataclass(frozen=True)
class LabelKeys:
    """Long labels and their keys: ``keys[label] = (factor, key)``."""

    keys: dict[str, tuple[str, str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.keys)

    def short(self, text):
        """``text`` with every long label in it replaced by its key (a contrast "long A −
        long B" reads "P1 − P2"; a stratum "m1:long" reads "m1:P3"); non-text unchanged."""
        if not self.keys or not isinstance(text, str):
            return text
        for label in self._order:
            if label in text:
                text = text.replace(label, self.keys[label][1])
        return text

    @property
    def _order(self) -> list[str]:  # longest first: a label inside another is replaced last
        return sorted(self.keys, key=len, reverse=True)

    def frame(self, df: pl.DataFrame | None, columns=_TEXT_COLUMNS):
        """``df`` with its text ``columns`` (those it has) shortened; None stays None."""
        if df is None or not self.keys or not isinstance(df, pl.DataFrame):
            return df
        cols = [c for c in columns if c in df.columns and df[c].dtype == pl.Utf8]
        return df.with_columns(pl.col(c).map_elements(self.short, return_dtype=pl.Utf8)
                               for c in cols) if cols else df

    def table(self) -> pl.DataFrame:
        """Factor, Key and the full Label, in key order."""
        rows = sorted(((f, k, lab) for lab, (f, k) in self.keys.items()),
                      key=lambda r: (r[0], len(r[1]), r[1]))
        return pl.DataFrame(rows, schema=["Factor", "Key", "Label"], orient="row")


def label_keys(cells: pl.DataFrame, factors) -> LabelKeys:
    """Keys for the long levels of each of ``factors`` (columns of ``cells``): the long
    labels of a factor, sorted, get ``<prefix>1``, ``<prefix>2``, ... (a level that is not
    long keeps its name)."""
    keys: dict[str, tuple[str, str]] = {}
    taken: set[str] = set()
    text = [f for f in dict.fromkeys(factors) if f in cells.columns
            and cells[f].dtype in (pl.Utf8, pl.Categorical, pl.Enum)]
    levels = {f: {str(v) for v in cells[f].unique().drop_nulls().to_list()} for f in text}
    names = {lab for f in text for lab in levels[f] if not is_long(lab)}  # never a key
    for factor in text:
        long = sorted(lab for lab in levels[factor] if is_long(lab) and lab not in keys)
        if not long:
            continue
        prefix = _prefix(factor, taken)
        while any(f"{prefix}{i}" in names for i in range(1, len(long) + 1)):
            taken.add(prefix)
            prefix = _prefix(factor, taken)
        taken.add(prefix)
        for i, lab in enumerate(long, 1):
            keys[lab] = (factor, f"{prefix}{i}")
    return LabelKeys(keys)


def shortened(est, keys: LabelKeys):
    """An :class:`~biasstats.effects.estimands.Estimands` whose tables show keys for long
    labels (its draws keep the full names); ``est`` itself when nothing is long."""
    if est is None or not keys:
        return est
    return replace(est, means=keys.frame(est.means), contrasts=keys.frame(est.contrasts),
                   slopes=keys.frame(est.slopes), ranks=keys.frame(est.ranks),
                   heterogeneity=keys.frame(est.heterogeneity), impact=keys.frame(est.impact))
