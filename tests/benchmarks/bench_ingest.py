"""Ingest at scale: simulated rows across many CSV files -> design cells (streamed).

Writes ``--files`` CSV files (``runs/<llm>/<stereotype>_<k>.csv``, columns prompt, variant,
answer, completion; ~2 % refusals), ingests them with a spec alone (glob + path_pattern +
refusal_pattern + a filter) to the design cells (ok rows per llm x stereotype x variant:
k congruent of n) with :func:`biasstats.ingest.ingest_cells` (one streaming polars query)
and prints seconds and peak RSS, beside the same rows in one file (``--full`` adds
:func:`~biasstats.ingest.ingest`, which holds the whole row table).

    python tests/benchmarks/bench_ingest.py [--rows 10000000] [--files 100] [--dir /tmp/x]

Each measurement runs in a fresh process so peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

LLMS = ["gpt4o", "claude3", "llama3", "gemini", "mistral"]
STEREOTYPES = ["race", "gender", "age", "religion"]
VARIANTS = ["replication", "instruction1", "instruction2", "synonym"]

SPEC = """
[data]
source = "{source}"
{pattern}
refusal_pattern = "^I cannot"
filters = ["variant <> 'synonym'"]
[data.columns]
congruent = "answer"
raw = "completion"
"""


def write_files(root: Path, rows: int, files: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    per = rows // files
    for i in range(files):
        llm, st = LLMS[i % len(LLMS)], STEREOTYPES[(i // len(LLMS)) % len(STEREOTYPES)]
        path = root / "runs" / llm / f"{st}_{i:03d}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        refused = rng.random(per) < 0.02
        pl.DataFrame({
            "prompt": np.arange(per) % 500,
            "variant": np.array(VARIANTS)[rng.integers(0, 4, per)],
            "answer": rng.integers(0, 2, per),
            "refused": refused,
        }).select(
            "prompt", "variant",
            pl.when(pl.col("refused")).then(None).otherwise(pl.col("answer")).alias("answer"),
            pl.when(pl.col("refused")).then(pl.lit("I cannot answer")).otherwise(pl.lit("ok"))
            .alias("completion"),
        ).write_csv(path)
    one = root / "one" / "all.csv"
    one.parent.mkdir(parents=True, exist_ok=True)
    frames = [pl.read_csv(p, infer_schema=False).with_columns(
        pl.lit(p.parent.name).alias("llm"), pl.lit(p.stem.rsplit("_", 1)[0]).alias("stereotype"))
        for p in sorted((root / "runs").rglob("*.csv"))]
    pl.concat(frames).write_csv(one)


def _peak_mib() -> float:
    """This process's peak RSS in MiB: VmHWM (Linux; reset by exec, unlike ru_maxrss, which a
    child started by fork + exec inherits from a parent that has just written the files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)


def measure(spec: Path, full: bool) -> dict:
    """Child process: source -> cells (streamed, or via the full row table with ``full``);
    returns seconds, rows, cells and peak RSS."""
    from biasstats.ingest import ingest, ingest_cells

    t0 = time.perf_counter()
    if full:
        res = ingest(spec)
        cells = res.table.lazy().filter(pl.col("status") == "ok").group_by(
            "llm", "stereotype", "variant").agg(pl.col("congruent").sum().alias("k"),
                                                pl.len().alias("n")).collect()
        ledger = res.ledger
    else:
        out = ingest_cells(spec)
        cells, ledger = out.cells, out.ledger
    secs = time.perf_counter() - t0
    peak = _peak_mib()
    return {"seconds": round(secs, 2), "rows": ledger.rows_read, "cells": cells.height,
            "files": len(ledger.files), "peak_mib": round(peak),
            "refused": ledger.rows.by_status["refused"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--files", type=int, default=100)
    ap.add_argument("--dir")
    ap.add_argument("--child")
    ap.add_argument("--full", action="store_true",
                    help="also time ingest() (the whole row table in memory) for the files")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child), args.full)))
        return
    root = Path(args.dir or tempfile.mkdtemp(prefix="bench_ingest_"))
    if not (root / "runs").exists():
        t0 = time.perf_counter()
        write_files(root, args.rows, args.files)
        print(f"wrote {args.rows:,} rows in {args.files} files to {root} ({time.perf_counter() - t0:.1f} s)")
    (root / "many.toml").write_text(SPEC.format(source="runs/*/*.csv",
                                                pattern='path_pattern = "{llm}/{stereotype}_{part}.csv"'))
    (root / "one.toml").write_text(SPEC.format(source="one/all.csv", pattern=""))
    runs = [("many", False), ("one", False)] + ([("many", True)] if args.full else [])
    for name, full in runs:
        cmd = [sys.executable, __file__, "--child", str(root / f"{name}.toml")]
        out = subprocess.run(cmd + (["--full"] if full else []), capture_output=True, text=True,
                             check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        label = f"{r['files']} files" if name == "many" else "1 file"
        how = "full table" if full else "streamed"
        print(f"ingest -> cells ({how}), {label:>9}: {r['rows']:,} rows, {r['cells']} cells, "
              f"{r['refused']:,} refused, {r['seconds']} s, peak RSS {r['peak_mib']} MiB")


if __name__ == "__main__":
    main()
