"""Bench lines of issue 19 item 4 (many small files), one JSON line each:

  files_json   8,000 small JSON files (one object each) in one folder
  files_csv    2,000 small CSV files (two rows each) in one folder

each ingested by ``biasstats ingest`` in its own process: wall time of the whole command
(interpreter start, imports, listing, reading, the ledger, trials.parquet written), its CPU
seconds (user + system: on a shared machine, the part of the wall time that is its own),
the time of the imports and of the command itself (measured inside the process) and the
process's peak RSS (ru_maxrss of that one child, from ``os.wait4``), against the targets of
5 s and 1 GiB. A run over 100,000
files (``--refused``) checks that the default ``[data] max_files`` refuses it quickly.

    python tests/benchmarks/bench_files.py [--dir /tmp/x] [--refused]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET_S, TARGET_GIB = 5.0, 1.0
SPEC = '[data]\nsource = "files"\nmax_files = {max_files}\n[data.columns]\nllm = "model"\n'

CHILD = """
import sys, time
t0 = time.perf_counter()
from biasstats.cli import main
t1 = time.perf_counter()
rc = main(["ingest", sys.argv[1], "--out", sys.argv[2]])
print("__timing__", t1 - t0, time.perf_counter() - t1, flush=True)
sys.exit(rc)
"""


def make(root: Path, kind: str, n: int, max_files: int = 20_000) -> Path:
    """``n`` small files of ``kind`` (json or csv) under ``root/files`` and a spec."""
    folder = root / "files"
    if not folder.exists():
        folder.mkdir(parents=True)
        for i in range(n):
            if kind == "json":
                text = json.dumps({"congruent": i % 2, "model": f"m{i % 8}", "item": f"w{i}",
                                   "meta": {"temperature": 0, "seed": i}})
            else:
                text = f"congruent,model,item\n{i % 2},m{i % 8},w{i}\n{1 - i % 2},m{i % 8},v{i}\n"
            (folder / f"r{i:06d}.{kind}").write_text(text)
    spec = root / "s.toml"
    spec.write_text(SPEC.format(max_files=max_files))
    return spec


def run(spec: Path) -> dict:
    """``biasstats ingest spec`` in a fresh process: wall seconds, the child's own import
    and ingest seconds, its peak RSS (ru_maxrss via wait4: this child only), its exit code
    and last line."""
    out = Path(tempfile.mkdtemp(prefix="bench_files_out_"))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(spec), str(out / "o")], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    timing = [ln.split()[1:] for ln in stdout.splitlines() if ln.startswith("__timing__")]
    imports, ingest = (float(x) for x in timing[0]) if timing else (None, None)
    last = (stderr.strip() or stdout.strip()).splitlines()
    return {"seconds": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "import_s": imports and round(imports, 2),
            "command_s": ingest and round(ingest, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024), "exit_code": proc.returncode,
            "last_line": last[-1][:200] if last else ""}


def line(bench: str, files: int, r: dict) -> None:
    ok = (r["exit_code"] == 0 and r["seconds"] <= TARGET_S
          and r["peak_rss_mib"] <= TARGET_GIB * 1024)
    print(json.dumps({"bench": bench, "files": files, **r, "target_s": TARGET_S,
                      "target_rss_mib": int(TARGET_GIB * 1024), "ok": ok}), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", help="where to write the files (default: a new temp folder)")
    ap.add_argument("--refused", action="store_true",
                    help="also time the refusal of 100,000 files by the default max_files")
    a = ap.parse_args(argv)
    root = Path(a.dir or tempfile.mkdtemp(prefix="bench_files_"))
    for bench, kind, n in (("files_json", "json", 8_000), ("files_csv", "csv", 2_000)):
        line(bench, n, run(make(root / kind, kind, n)))
    if a.refused:
        r = run(make(root / "refused", "json", 100_000))
        print(json.dumps({"bench": "files_refused", "files": 100_000, **r,
                          "ok": r["exit_code"] == 2}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
