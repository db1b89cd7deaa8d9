"""Command line: ``biasstats <command>``.

User errors (a bad spec, a missing column, an unavailable dataset, an output that cannot be
written) print one line, ``error: <message>``, to stderr and exit with code 2 — never a
traceback. A command that fails leaves nothing of its own in the output folder: ``ingest``,
``fit`` and ``simulate`` run as one :func:`biasstats.io.transaction`, ``report`` one per
analysis.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import polars as pl

from biasstats.effects.estimands import check_request, compute_estimands, request_from_spec
from biasstats.errors import BiasstatsError, SpecError
from biasstats.inference.convergence import convergence_gate, thresholds_from
from biasstats.inference.from_spec import fit_spec
from biasstats.ingest import datasets, ingest
from biasstats.io import OutputError, transaction, write_csv_atomic, write_parquet_atomic
from biasstats.names import visible
from biasstats.pipeline import check_before_sampling
from biasstats.run import build_reports
from biasstats.simulate.from_formula import parse_set, simulate_from_spec
from biasstats.spec.outcome import outcome_study
from biasstats.spec.reference import render
from biasstats.spec.schema import MAX_SEED, FitSpec
from biasstats.version import __version__


def _say(*parts, file=None, flush: bool = False, end: str = "\n", keep: str = "\n") -> None:
    """``print`` with control characters written out (:func:`biasstats.names.visible`; the
    characters in ``keep``, the line breaks of multi-line output, stay): a level or column
    name holding an ESC or a BEL never reaches the terminal raw."""
    print(visible(" ".join(str(p) for p in parts), keep=keep), file=file, flush=flush,
          end=end)


def _shown_frame(df):
    """A polars DataFrame for the terminal: text cells with control characters written out
    (before polars lays out the columns, so they stay aligned)."""

    text = [c for c, t in df.schema.items() if t == pl.Utf8]
    return df.with_columns(pl.col(c).map_elements(visible, return_dtype=pl.Utf8)
                           for c in text)


def _diagnosis(prepared) -> None:
    """The design diagnosis (:mod:`biasstats.model.diagnosis`), one line per hard design,
    shown before anything is sampled."""
    for line in prepared.diagnosis:
        _say(f"design: {line}", flush=True)


def _out_folder(out: str | None) -> Path | None:
    """``--out`` must be a folder (or not exist yet): checked before any work is done."""
    if out is None:
        return None
    path = Path(out)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise OutputError(f"--out {out}: {p} is a file; expected a folder")
            break
    return path


def _cmd_ingest(args: argparse.Namespace) -> int:
    out = _out_folder(args.out)
    result = ingest(args.spec)
    out = out or Path("reports") / result.spec.name
    table, ledger = result.write(out)
    _say(result.ledger.render())
    _say(f"wrote {table} ({result.table.height} rows) and {ledger}")
    return 0


def _cmd_fit(args: argparse.Namespace) -> int:
    out = _out_folder(args.out)
    result = ingest(args.spec)
    out = out or Path("reports") / result.spec.name
    # fit first: a fit-stage error must not leave this run's table and ledger behind
    spec = result.spec
    outcome = fit_spec(spec, result.table, out, refit=args.refit, ledger=result.ledger,
                       before_sampling=lambda p: (check_before_sampling(spec, result.adapter, p),
                                                  _diagnosis(p)))
    result.write(out)
    fit = outcome.fit
    _say(result.ledger.render())
    _say(f"model: {fit.formula}  [{fit.family}]")
    _say(f"priors:\n{fit.priors}")
    st = fit.settings
    _say(f"sampler: {st.get('sampler')}"
         + (f" ({st['backend']})" if st.get("backend") and st.get("sampler") == "nutpie" else "")
         + f", {st.get('chains')} chains x {st.get('draws')} draws "
          f"({st.get('tune')} warm-up), {str(st.get('adaptation')).replace('_', '-')} mass matrix, "
          f"target_accept {st.get('target_accept')} ({st.get('target_accept_reason', 'set by user')})")
    for name, how in (st.get("centered") or {}).items():
        _say(f"  ({name}) {how}")
    with_summary = fit.summary()
    _say(with_summary.rename(index=visible).to_string(max_rows=40))
    diag = fit.diagnostics(with_summary)
    _say("diagnostics: " + ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in diag.items()))
    state = "reused cached posterior" if outcome.cached else "wrote"
    _say(f"{state} {outcome.path}")
    tm = fit.timings
    stages = [(k, tm.get(f"{k}_s")) for k in ("sampling", "log_likelihood", "predictive",
                                               "first_attempt")]
    if any(v is not None for _, v in stages):
        _say("time: " + ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in stages
                                   if v is not None)
              + " (sampling includes compiling the model)")

    for a in st.get("attempts") or []:
        verdict = "passed" if a["passed"] else "failed: " + "; ".join(a["failures"])
        _say(f"attempt {a['attempt']} ({a['change']}, target_accept {a['target_accept']}, "
              f"{a['sampling_s']:.0f} s): {verdict}")
    checks = result.spec.content.checks
    gate = convergence_gate(diag, thresholds_from(checks))
    if gate.passed:
        _say("convergence gate: passed")
        return 0
    _say("convergence gate: FAILED: " + "; ".join(gate.failures))
    if checks.allow_failure:
        return 0
    _say("convergence gate failed (set [checks] allow_failure = true to accept the fit)",
          file=sys.stderr)
    return 1


def _cmd_effects(args: argparse.Namespace) -> int:
    result = ingest(args.spec)
    spec = result.spec
    out = Path(args.out) if args.out else Path("reports") / spec.name

    def check(prepared):  # every estimand asked for, before anything is sampled
        check_request(request_from_spec(spec.content.effects, prepared),
                      prepared, key=f"{spec.path}: [effects]")
        _diagnosis(prepared)

    outcome = fit_spec(spec, result.table, out, refit=args.refit, ledger=result.ledger,
                       before_sampling=check, cached_only=not (args.fit or args.refit))
    fit = outcome.fit
    study = outcome_study(spec, result.adapter)
    vocab = study.vocabulary if study is not None else None
    req = request_from_spec(spec.content.effects, fit.spec)
    try:
        est = compute_estimands(fit, req)
    except SpecError as e:
        raise SpecError(f"{spec.path}: {e}") from None
    rows = est.all_rows()
    keep = [c for c in ("estimand", "term", "level", "category", "scale", "mean", "sd", "hdi_low",
                        "hdi_high", "p_positive", "n_obs") if c in rows.columns]
    rows = rows.select(keep)
    with pl.Config(tbl_rows=200, tbl_cols=20, tbl_width_chars=140, float_precision=4,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        _say(f"{fit.formula}  [{fit.family}]  outcome: "
              f"{vocab.outcome if vocab else spec.content.effects.outcome_label or fit.spec.formula.response}")
        _say(_shown_frame(rows))
        if est.ranks.height:
            _say(_shown_frame(est.ranks))
        for note in est.notes:
            _say(f"note: {note}")
    csv = write_csv_atomic(out / "estimands.csv", rows)
    pq = write_parquet_atomic(out / "estimands.parquet", rows)
    _say(f"wrote {csv} and {pq}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    if not 0 <= args.seed <= MAX_SEED:
        raise SpecError(f"--seed {args.seed}: expected an integer from 0 to {MAX_SEED}")
    out = _out_folder(args.out)
    study = simulate_from_spec(args.spec, args.seed, parse_set(args.set))
    out = out or Path("reports") / study.truth["analysis"] / "simulated"
    table, truth = study.write(out)
    _say(f"wrote {table} ({study.table.height} rows) and {truth}")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    reg = datasets.load_registry()
    width = max(len(n) for n in reg)
    _say(f"{'dataset':<{width}}  {'available':<9}  where / how")
    for name in sorted(reg):
        ok, where = datasets.availability(name, registry=reg)
        _say(f"{name:<{width}}  {'yes' if ok else 'no':<9}  {where}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    for name in args.names:
        paths = datasets.fetch(name)
        _say(f"{name}: {len(paths)} file(s) verified, e.g. {paths[0]}")
    return 0


def _cmd_spec(args: argparse.Namespace) -> int:
    _say(render(), end="")
    return 0


def _jobs(value: str) -> int:
    """``--jobs``: a positive integer, or ``auto`` (one per core, at most 4, and at most one
    per 4 GiB of memory: the default [fit] memory budget of one analysis)."""
    if value == "auto":

        budget = FitSpec.model_fields["max_memory_gb"].default
        cores = os.cpu_count() or 1
        try:
            gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
            gib = budget
        return max(1, min(cores, 4, int(gib // budget)))
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {value!r}")
    return n


def _cmd_report(args: argparse.Namespace) -> int:
    total, done = len(args.specs), []

    def show(o):
        done.append(o)
        state = {"built": "built" if o.gate_passed else "GATE FAILED", "unavailable": "UNAVAILABLE"}
        _say(f"[{len(done)}/{total}] {state.get(o.status, o.status):<12} {o.name}: {o.message}",
             flush=True)
        if o.stages:
            _say(f"{'':<{len(str(total)) * 2 + 3}} {'':<12} {o.time_line()}", flush=True)

    _out_folder(args.out)
    outcomes = build_reports(args.specs, args.out, refit=args.refit, on_done=show,
                             jobs=args.jobs)
    _say(f"wrote {Path(args.out) / 'index.html'}")
    blocking = [o.name for o in outcomes if o.blocking]
    if blocking:
        _say(f"convergence gate failed for: {', '.join(blocking)} "
              "(set [checks] allow_failure = true to report anyway)", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="biasstats",
        description="Declarative hierarchical Bayesian analysis of bias in language models.",
    )
    p.add_argument("--version", action="version", version=f"biasstats {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("ingest", help="ingest a spec's data: print the ledger, write the table")
    s.add_argument("spec", help="analysis spec (TOML)")
    s.add_argument("--out", help="output folder (default: reports/<analysis name>)")
    s.set_defaults(run=_cmd_ingest, atomic=True)

    s = sub.add_parser("fit", help="fit a spec's model; write the posterior (NetCDF)")
    s.add_argument("spec", help="analysis spec (TOML)")
    s.add_argument("--out", help="output folder (default: reports/<analysis name>)")
    s.add_argument("--refit", action="store_true", help="ignore a cached posterior")
    s.set_defaults(run=_cmd_fit, atomic=True)

    s = sub.add_parser("effects", help="print a spec's estimands from its cached posterior; "
                                       "write estimands.csv / .parquet")
    s.add_argument("spec", help="analysis spec (TOML)")
    s.add_argument("--out", help="output folder (default: reports/<analysis name>)")
    s.add_argument("--fit", action="store_true",
                   help="fit the model when no cached posterior matches (else an error)")
    s.add_argument("--refit", action="store_true", help="ignore a cached posterior and fit")
    s.set_defaults(run=_cmd_effects)

    s = sub.add_parser("simulate", help="simulate an outcome from a spec's model on its design")
    s.add_argument("spec", help="analysis spec (TOML)")
    s.add_argument("--seed", type=int, required=True, help="random seed (same seed, same files)")
    s.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="fix a parameter (e.g. sd_llm=0.5, r_llm=0.1,-0.1,0); others from prior")
    s.add_argument("--out", help="output folder (default: reports/<analysis name>/simulated)")
    s.set_defaults(run=_cmd_simulate, atomic=True)

    s = sub.add_parser("report", help="build the reports for one or more specs, and the index")
    s.add_argument("specs", nargs="+", metavar="SPEC", help="analysis specs (TOML)")
    s.add_argument("--out", default="reports", help="reports folder (default: reports)")
    s.add_argument("--refit", action="store_true", help="ignore cached posteriors")
    s.add_argument("--jobs", type=_jobs, default=1, metavar="N",
                   help="build N analyses at once, each in its own process; 'auto': one per "
                        "core, at most 4 and one per 4 GiB of memory (default: 1)")
    s.set_defaults(run=_cmd_report)

    s = sub.add_parser("spec", help="print the spec reference: every table and key, the "
                       "families, the canonical columns")
    s.set_defaults(run=_cmd_spec)

    s = sub.add_parser("datasets", help="list registered datasets and whether each is available")
    s.set_defaults(run=_cmd_datasets)

    s = sub.add_parser("fetch", help="download registered datasets (checksum-verified)")
    s.add_argument("names", nargs="+", metavar="NAME")
    s.set_defaults(run=_cmd_fetch)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "atomic", False):
            with transaction():
                return args.run(args)
        return args.run(args)
    except BiasstatsError as e:
        _say(f"error: {e}", file=sys.stderr, keep="")  # one line, whatever a name holds
        return e.exit_code
    except KeyboardInterrupt:
        _say("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
