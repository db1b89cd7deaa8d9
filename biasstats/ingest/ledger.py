"""The ingest ledger: every row read is accounted for.

A ledger has one *tally* per unit of accounting. The first tally is always ``rows``: the rows
of the source file, each with exactly one status. Adapters that split a row into several
judgements (the IAT word-association adapters: one row per attribute word) add a second tally,
``judgements``. For each tally, the status counts sum to the total and the reason counts sum to
the non-ok count; :meth:`Ledger.check` enforces both, and ingestion calls it before returning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import polars as pl

from biasstats.ingest.schema import BASE_STATUSES, STATUSES

MAX_FILES_SHOWN = 10


def _by_status(counts: dict[str, int]) -> dict[str, int]:
    """Counts per status in :data:`STATUSES` order: the base statuses always, the others
    (``error``, ``superseded``) when some row has them."""
    out = {s: counts.get(s, 0) for s in STATUSES if s in BASE_STATUSES or counts.get(s)}
    for s, n in counts.items():  # an unknown status still counts (conform refuses it later)
        out.setdefault(s, n)
    return out


@dataclass(frozen=True)
class Tally:
    unit: str
    total: int
    by_status: dict[str, int]
    by_reason: dict[str, int]

    @classmethod
    def from_frame(cls, unit: str, frame: pl.DataFrame) -> Tally:
        """Count a frame with ``status`` and ``reason`` columns (one row per unit)."""
        counts = {s: int(n) for s, n in frame.group_by("status").len().iter_rows()}
        by_status = _by_status(counts)
        not_ok = frame.filter(pl.col("status") != "ok")
        by_reason: dict[str, int] = {}
        counts = (
            not_ok.with_columns(
                pl.concat_str(
                    [pl.col("status"), pl.col("reason").fill_null("(no reason given)")],
                    separator=": ",
                ).alias("_key")
            )
            .group_by("_key")
            .len()
            .sort(["len", "_key"], descending=[True, False])
        )
        for key, n in counts.iter_rows():
            by_reason[key] = int(n)
        return cls(unit=unit, total=frame.height, by_status=by_status, by_reason=by_reason)

    @classmethod
    def from_counts(cls, unit: str, counts: pl.DataFrame) -> Tally:
        """Count from a summary with ``status``, ``reason`` and ``rows`` (rows per pair)."""
        expanded = counts.rename({"rows": "_n"})
        by_status = _by_status(
            {s: int(n) for s, n in expanded.group_by("status").agg(pl.col("_n").sum()).iter_rows()}
        )
        keyed = expanded.filter(pl.col("status") != "ok").with_columns(
            pl.concat_str(
                [pl.col("status"), pl.col("reason").fill_null("(no reason given)")], separator=": "
            ).alias("_key")
        ).group_by("_key").agg(pl.col("_n").sum()).sort(["_n", "_key"], descending=[True, False])
        by_reason = {k: int(n) for k, n in keyed.iter_rows()}
        return cls(unit=unit, total=int(expanded["_n"].sum()), by_status=by_status,
                   by_reason=by_reason)

    def problems(self) -> list[str]:
        out = []
        if sum(self.by_status.values()) != self.total:
            out.append(
                f"{self.unit}: status counts sum to {sum(self.by_status.values())}, "
                f"not {self.total}"
            )
        not_ok = self.total - self.by_status.get("ok", 0)
        if sum(self.by_reason.values()) != not_ok:
            out.append(
                f"{self.unit}: reason counts sum to {sum(self.by_reason.values())}, "
                f"not the {not_ok} non-ok {self.unit}"
            )
        return out


@dataclass(frozen=True)
class Ledger:
    """What happened to every row of one source."""

    source: str
    rows_read: int
    tallies: tuple[Tally, ...]
    notes: tuple[str, ...] = field(default=())
    files: dict[str, int] = field(default_factory=dict)  # rows read per source file

    @property
    def rows(self) -> Tally:
        return self.tallies[0]

    def tally(self, unit: str) -> Tally:
        for t in self.tallies:
            if t.unit == unit:
                return t
        raise KeyError(unit)

    def check(self) -> None:
        """Raise ``AssertionError`` unless every row read is accounted for exactly once."""
        problems = []
        if self.rows.unit != "rows":
            problems.append("the first tally must count rows")
        if self.rows.total != self.rows_read:
            problems.append(f"rows tally has {self.rows.total} rows, {self.rows_read} were read")
        for t in self.tallies:
            problems.extend(t.problems())
        if self.files and sum(self.files.values()) != self.rows_read:
            problems.append(
                f"rows per file sum to {sum(self.files.values())}, {self.rows_read} were read"
            )
        if problems:
            raise AssertionError(f"ledger for {self.source} does not balance: " + "; ".join(problems))

    @property
    def balanced(self) -> bool:
        try:
            self.check()
        except AssertionError:
            return False
        return True

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "rows_read": self.rows_read,
            "balanced": self.balanced,
            "tallies": [
                {
                    "unit": t.unit,
                    "total": t.total,
                    "by_status": t.by_status,
                    "by_reason": t.by_reason,
                }
                for t in self.tallies
            ],
            "notes": list(self.notes),
            "files": self.files,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    def counted(self) -> str:
        """What was read, in the ledger's own numbers: ``240 rows`` and, when an adapter split
        the rows, ``, 5040 judgements`` (one source for every line that counts them)."""
        return ", ".join([f"{self.rows_read} rows",
                          *(f"{t.total} {t.unit}" for t in self.tallies[1:])])

    def render(self) -> str:
        """A plain-text table for terminals and logs."""
        lines = [f"ledger: {self.source}", f"  rows read: {self.rows_read}"]
        if len(self.files) > 1:
            lines.append(f"  rows per file ({len(self.files)} files):")
            shown = list(self.files.items())
            for name, n in shown[:MAX_FILES_SHOWN]:
                lines.append(f"    {n:>9}  {name}")
            if len(shown) > MAX_FILES_SHOWN:
                rest = sum(n for _, n in shown[MAX_FILES_SHOWN:])
                lines.append(f"    {rest:>9}  ({len(shown) - MAX_FILES_SHOWN} more files, "
                             f"all listed in ledger.json)")
        for t in self.tallies:
            lines.append(f"  {t.unit}: {t.total}")
            for s in [s for s in STATUSES if s in t.by_status]:
                n = t.by_status[s]
                pct = 100.0 * n / t.total if t.total else 0.0
                lines.append(f"    {s:<12}{n:>9}  {pct:6.2f}%")
            if t.by_reason:
                lines.append("    reasons:")
                for key, n in t.by_reason.items():
                    lines.append(f"      {n:>9}  {key}")
        status = "balanced" if self.balanced else "NOT BALANCED"
        lines.append(f"  check: every row accounted for ... {status}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)


def build_ledger(
    source: str,
    rows: pl.DataFrame,
    judgements: pl.DataFrame | None = None,
    notes: tuple[str, ...] = (),
    files: dict[str, int] | None = None,
) -> Ledger:
    """Build and check a ledger.

    ``rows``: one row per source row with ``status`` and ``reason``.
    ``judgements``: optional, one row per judgement (the canonical table itself, typically).
    ``files``: rows read per source file (they must sum to the rows read).
    """
    tallies = [Tally.from_frame("rows", rows)]
    if judgements is not None:
        tallies.append(Tally.from_frame("judgements", judgements))
    ledger = Ledger(source=source, rows_read=rows.height, tallies=tuple(tallies), notes=notes,
                    files=dict(files or {}))
    ledger.check()
    return ledger
