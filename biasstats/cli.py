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

from biasstats.design import Target, analysis_posterior, make_plan, parse_vary, run_design
from biasstats.effects.estimands import check_request, compute_estimands, request_from_spec
from biasstats.errors import BiasstatsError, SpecError
from biasstats.inference.convergence import convergence_gate, thresholds_from
from biasstats.inference.from_spec import fit_spec
from biasstats.ingest import datasets, ingest
from biasstats.io import (
    STORAGE_FULL,
    OutputError,
    storage_error,
    transaction,
    write_csv_atomic,
    write_parquet_atomic,
)
from biasstats.names import visible
from biasstats.pipeline import check_before_sampling
from biasstats.run import build_reports
from biasstats.run.design import write_design
from biasstats.run.many import quiet_library_notices
from biasstats.run.outcome import write_estimand_draws
from biasstats.simulate.from_formula import parse_set, simulate_from_spec
from biasstats.spec import load_spec
from biasstats.spec.declared import declared_estimands
from biasstats.spec.outcome import outcome_study
from biasstats.spec.reference import render
from biasstats.spec.schema import MAX_DRAWS, MAX_SEED, FitSpec
from biasstats.synthesis import load_summary, request_from_flags, summarize, write_summary
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
    result = ingest(_single(args.spec, "biasstats ingest"))
    out = out or Path("reports") / result.spec.name
    table, ledger = result.write(out)
    _say(result.ledger.render())
    _say(f"wrote {table} ({result.table.height} rows) and {ledger}")
    return 0


def _single(path, command: str):
    """The spec at ``path``, refused in one line if it is a joint spec (``command`` needs
    one model)."""
    spec = load_spec(path)
    spec.single(command)
    return spec


def _cmd_fit(args: argparse.Namespace) -> int:
    out = _out_folder(args.out)
    result = ingest(_single(args.spec, "biasstats fit"))
    out = out or Path("reports") / result.spec.name
    # fit first: a fit-stage error must not leave this run's table and ledger behind
    spec = result.spec
    outcome = fit_spec(spec, result.table, out, refit=args.refit, ledger=result.ledger,
                       before_sampling=lambda p: (check_before_sampling(spec, result.adapter, p),
                                                  _diagnosis(p)),
                       on_attempt=lambda line: _say(f"refit: {line}", file=sys.stderr))
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
    stages = [(k.replace("_", " "), tm.get(f"{k}_s")) for k in ("sampling", "log_likelihood",
                                                                  "predictive")]
    stages.append(("earlier attempts", tm.get("first_attempt_s")))  # before the one kept
    if any(v is not None for _, v in stages):
        _say("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages
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
    result = ingest(_single(args.spec, "biasstats effects"))
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
    rows = _in_declared_order(est.all_rows(), declared_estimands(spec))
    with pl.Config(tbl_rows=400, tbl_cols=20, tbl_width_chars=200, float_precision=3,
                   fmt_str_lengths=60, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        _say(f"{fit.formula}  [{fit.family}]  outcome: "
              f"{vocab.outcome if vocab else spec.content.effects.outcome_label or fit.spec.formula.response}")
        for title, part in _estimand_sections(rows):
            _say(f"\n{title}")
            _say(_shown_frame(part))
        if est.ranks.height:
            _say("\nranks")
            _say(_shown_frame(est.ranks))
        for note in est.notes:
            _say(f"note: {note}")
    csv = write_csv_atomic(Path(args.csv) if args.csv else out / "estimands.csv", rows)
    pq = write_parquet_atomic(Path(args.parquet) if args.parquet else out / "estimands.parquet",
                              rows)
    dr = write_estimand_draws(out, est, spec, fit, study)
    _say(f"wrote {csv}, {pq} and {dr} (the draws behind them)")
    return 0


_SECTIONS = (("mean", "marginal means"), ("contrast", "contrasts"), ("slope", "slopes"),
             ("impact", "impact ratios"), ("derived", "derived estimands"))
_SHOWN = ("term", "stratum", "level", "category", "impact", "scale", "mean", "hdi",
          "p_positive", "null", "verdict", "unit", "n_obs", "p_best", "p_worst", "selection")


_KIND_OF = {"by": "mean", "contrasts": "contrast", "slopes": "slope", "level_slopes": "slope",
            "impact": "impact", "derived": "derived"}


def _in_declared_order(rows: pl.DataFrame, declared) -> pl.DataFrame:
    """``rows`` (``Estimands.all_rows()``) with the kinds and terms ``[effects]`` declares
    first, in the spec's order (``declared``: ``[(key, term), ...]``), the rest after in
    their own order."""
    if not rows.height or not declared:
        return rows
    kinds = list(dict.fromkeys([*(_KIND_OF[k] for k, _ in declared if k in _KIND_OF),
                                *(k for k, _ in _SECTIONS)]))
    terms = list(dict.fromkeys(t for _, t in declared))
    rank_k = pl.col("estimand").replace_strict(kinds, list(range(len(kinds))),
                                               default=len(kinds), return_dtype=pl.Int64)
    rank_t = pl.col("term").replace_strict(terms, list(range(len(terms))),
                                           default=len(terms), return_dtype=pl.Int64)
    return rows.with_columns(rank_k.alias("__k"), rank_t.alias("__t")).sort(
        "__k", "__t", maintain_order=True).drop("__k", "__t")


def _estimand_sections(rows: pl.DataFrame):
    """(title, table) per kind of estimand, in declared order: the columns a reader needs
    (the HDI as one "[low, high]" cell; a column empty in every row of the kind left out)."""
    if not rows.height:
        return
    rows = rows.with_columns(pl.format("[{}, {}]", pl.col("hdi_low").round(3),
                                       pl.col("hdi_high").round(3)).alias("hdi"))
    titles = dict(_SECTIONS)
    for kind in dict.fromkeys([*rows["estimand"].to_list(), *titles]):
        title = titles.get(kind, kind)
        part = rows.filter(pl.col("estimand") == kind)
        if not part.height:
            continue
        if kind == "derived":  # the name is the term, its level the stratum
            part = part.drop("stratum", "scale", strict=False).rename({"level": "stratum"})
        cols = [c for c in _SHOWN if c in part.columns and part[c].null_count() < part.height
                and not (part[c].dtype == pl.Utf8 and (part[c].fill_null("") == "").all())]
        part = part.select(cols).with_columns(pl.col(pl.Utf8).fill_null(""))
        yield title, part.with_columns(pl.col("n_obs").round(0).cast(pl.Int64)) \
            if "n_obs" in cols else part


def _cmd_simulate(args: argparse.Namespace) -> int:
    if not 0 <= args.seed <= MAX_SEED:
        raise SpecError(f"--seed {args.seed}: expected an integer from 0 to {MAX_SEED}")
    out = _out_folder(args.out)
    study = simulate_from_spec(args.spec, args.seed, parse_set(args.set))
    out = out or Path("reports") / study.truth["analysis"] / "simulated"
    table, truth = study.write(out)
    _say(f"wrote {table} ({study.table.height} rows) and {truth}")
    return 0


def _design_options(args: argparse.Namespace) -> Target | None:
    """``design``'s numeric options, checked before the spec is read: one line each."""
    if args.sims < 2:
        raise SpecError(f"--sims {args.sims}: expected an integer of at least 2")
    if not 50 <= args.draws <= MAX_DRAWS:
        raise SpecError(f"--draws {args.draws}: expected an integer from 50 to {MAX_DRAWS}")
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        raise SpecError(f"--seed {args.seed}: expected an integer from 0 to {MAX_SEED}")
    if args.prob is not None and not 0 < args.prob < 1:
        raise SpecError(f"--prob {args.prob:g}: expected a probability between 0 and 1")
    if args.power is not None:
        if not 0 < args.power < 1:
            raise SpecError(f"--power {args.power:g}: expected a probability between 0 and 1")
        return Target("power", args.power)
    if args.width is not None:
        if not (args.width > 0 and args.width < float("inf")):
            raise SpecError(f"--width {args.width:g}: expected a positive number (in the "
                            "estimand's units)")
        return Target("width", args.width)
    return None


def _cmd_design(args: argparse.Namespace) -> int:
    vary = parse_vary(args.vary)
    target = _design_options(args)
    out = _out_folder(args.out)
    result = ingest(args.spec)
    spec = result.spec
    fitted = Path(args.fitted) if args.fitted else Path("reports") / spec.name
    plan = make_plan(spec, result.table, vary, estimand=args.estimand, prob=args.prob,
                     target=target, adapter=result.adapter)
    if args.prior:
        fit, note = None, "--prior: parameters drawn from the prior"
    else:
        fit, note = analysis_posterior(spec, result.table, fitted, result.ledger)
    out = out or fitted / "design"
    seed = spec.fit.seed if args.seed is None else args.seed
    total, done = len(plan.designs) * args.sims, [0]
    rope = f", ROPE ±{plan.rope:g}" if plan.rope is not None else ""
    _say(f"design analysis of {plan.estimand} ({int(round(plan.prob * 100))}% HDI{rope}): "
         f"{len(plan.designs)} design size(s) x {args.sims} simulated studies; {note}",
         flush=True)

    def progress(i, s, row):
        done[0] += 1
        verdict = ("excludes 0" if row["excludes_zero"] else "includes 0") + (
            f", {row['verdict']}" if "verdict" in row else "")
        _say(f"[{done[0]}/{total}] {plan.designs[i].text} sim {s + 1}/{args.sims}: "
             f"width {row['width']:.3g}, {verdict}, "
             f"{'covers' if row['covers'] else 'misses'} the truth ({row['seconds']:.1f} s)",
             flush=True)

    res = run_design(plan, fit, sims=args.sims, draws=args.draws, seed=seed,
                     source_note=note, progress=progress)
    paths = write_design(res, out)
    show = [c for c in (*res.factors, "rows", "stratum", "level", "category", "width_median",
                        res.power_column, f"{res.power_column}_mcse", "coverage",
                        "divergent_sims") if c in res.table.columns]
    with pl.Config(tbl_rows=200, tbl_cols=20, tbl_width_chars=160, float_precision=3,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        _say(_shown_frame(res.table.select(show)))
    _say(res.recommendation())
    _say(f"wrote {paths['csv']}, {paths['tex']}, {paths['sims']}, {paths['json']} and "
         f"{out / 'assurance'}.{{pdf,svg,png}}")
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
    total, done = [len(args.specs)], []

    def show(o):
        done.append(o)
        state = {"built": "built" if o.gate_passed else "GATE FAILED", "unavailable": "UNAVAILABLE"}
        _say(f"[{len(done)}/{total[0]}] {state.get(o.status, o.status):<12} {o.name}: {o.message}",
             flush=True)
        if o.stages:
            _say(f"{'':<{len(str(total[0])) * 2 + 3}} {'':<12} {o.time_line()}", flush=True)

    _out_folder(args.out)
    outcomes = build_reports(args.specs, args.out, refit=args.refit, on_done=show,
                             jobs=args.jobs, scheduler=args.scheduler,
                             on_start=lambda n: total.__setitem__(0, n))
    _say(f"wrote {Path(args.out) / 'index.html'}")
    blocking = [o.name for o in outcomes if o.blocking]
    if blocking:
        _say(f"convergence gate failed for: {', '.join(blocking)} "
              "(set [checks] allow_failure = true to report anyway)", file=sys.stderr)
        return 1
    return 0


def _cmd_summarize(args: argparse.Namespace) -> int:
    specs = [s for s in args.sources if str(s).endswith(".toml")]
    if specs:
        flags = {"--estimand": args.estimand, "--level": args.level, "--scale": args.scale,
                 "--stratum": args.stratum, "--category": args.category,
                 "--tau-prior": args.tau_prior,
                 "--rank": None if args.rank == "highest" else args.rank,
                 "--hdi-prob": None if args.hdi_prob == 0.95 else args.hdi_prob}
        given = [k for k, v in flags.items() if v is not None]
        if len(args.sources) > 1 or given:
            raise SpecError(f"{specs[0]}: a [summary] spec names its analyses and estimand "
                            f"itself; give it alone (with --out at most), not with "
                            f"{', '.join(given) or 'other sources'}")
        req = load_summary(specs[0])
    else:
        req = request_from_flags(args.sources, args.estimand, level=args.level,
                                 scale=args.scale, stratum=args.stratum,
                                 category=args.category, order=args.rank,
                                 prob=args.hdi_prob, tau_prior=args.tau_prior)
    out = _out_folder(args.out)
    s = summarize(req)
    if out is None:  # beside the analyses: <reports root>/<summary name>
        out = s.analyses[0].folder.parent / req.name
    page = write_summary(s, out)
    with pl.Config(tbl_rows=50, tbl_cols=12, tbl_width_chars=140, float_precision=3,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        _say(_shown_frame(s.board.table.select(
            "analysis", "mean", "hdi_low", "hdi_high", "p_best", "rank_median", "rank_low",
            "rank_high")))
        _say(_shown_frame(s.meta.table.drop("hdi_prob")))
    _say(f"wrote {page}")
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
    s.add_argument("--csv", metavar="FILE",
                   help="write the estimands here (default: <out>/estimands.csv)")
    s.add_argument("--parquet", metavar="FILE",
                   help="write the estimands here (default: <out>/estimands.parquet)")
    s.set_defaults(run=_cmd_effects)

    s = sub.add_parser("simulate", help="simulate an outcome from a spec's model on its design")
    s.add_argument("spec", help="analysis spec (TOML)")
    s.add_argument("--seed", type=int, required=True, help="random seed (same seed, same files)")
    s.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="fix a parameter (e.g. sd_llm=0.5, r_llm=0.1,-0.1,0); others from prior")
    s.add_argument("--out", help="output folder (default: reports/<analysis name>/simulated)")
    s.set_defaults(run=_cmd_simulate, atomic=True)

    s = sub.add_parser("design", help="design analysis: simulate studies of each design size, "
                       "refit, and report interval widths, power and coverage")
    s.add_argument("spec", help="analysis spec (TOML)")
    s.add_argument("--vary", action="append", required=True, metavar="FACTOR=N1,N2,...",
                   help="sizes to compare: levels of a grouping factor (prompt=8,16), or "
                        "'trials' = rows per design cell (trials=5,10,20); repeat for a grid")
    s.add_argument("--estimand", metavar="TERM",
                   help="the contrast to plan for, as in [effects] contrasts ('cond' or "
                        "'cond | test'; default: the spec's first contrast)")
    s.add_argument("--sims", type=int, default=50, help="simulated studies per size (default 50)")
    s.add_argument("--draws", type=int, default=500,
                   help="draws per chain of each refit, after as many warm-up steps; 2 chains "
                        "(default 500)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--power", type=float, metavar="P",
                   help="target: the smallest design whose interval excludes 0 (or reaches a "
                        "ROPE decision) in at least this share of studies, by the share's 95%% "
                        "Wilson lower bound")
    g.add_argument("--width", type=float, metavar="W",
                   help="target: the smallest design whose median interval width is at most W, "
                        "by the upper end of the median's 95%% interval")
    s.add_argument("--prob", type=float, help="HDI probability (default: [effects] hdi_prob)")
    s.add_argument("--seed", type=int, help="random seed (default: [fit] seed)")
    s.add_argument("--prior", action="store_true",
                   help="draw parameters from the prior even when a fitted posterior exists")
    s.add_argument("--fitted", metavar="FOLDER",
                   help="the analysis folder holding its posterior (default: reports/<name>)")
    s.add_argument("--out", help="output folder (default: reports/<analysis name>/design)")
    s.set_defaults(run=_cmd_design, atomic=True)

    s = sub.add_parser("report", help="build the reports for one or more specs, and the index")
    s.add_argument("specs", nargs="+", metavar="SPEC", help="analysis specs (TOML)")
    s.add_argument("--out", default="reports", help="reports folder (default: reports)")
    s.add_argument("--refit", action="store_true", help="ignore cached posteriors")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--jobs", type=_jobs, default=1, metavar="N",
                   help="build N analyses at once, each in its own process; 'auto': one per "
                        "core, at most 4 and one per 4 GiB of memory (default: 1)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the analyses as tasks on a Dask cluster: tcp://HOST:PORT, or "
                        "'local' ('local:N') for 2 (N) worker processes on this machine; "
                        "needs biasstats[dask] and the same paths on every worker")
    s.set_defaults(run=_cmd_report)

    s = sub.add_parser("summarize", help="one estimand across built analyses: a leaderboard "
                       "with rank uncertainty and a random-effects meta-analysis")
    s.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="analysis folders, reports folders or globs; or one [summary] spec "
                        "(TOML)")
    s.add_argument("--estimand", help="<estimand>:<term>, e.g. contrast:condition, mean:overall")
    s.add_argument("--level", help="the level (or contrast, e.g. 'b − a') when the term has "
                                   "several")
    s.add_argument("--scale", help="the scale (default: difference for a contrast)")
    s.add_argument("--stratum", help="the stratum of a within-strata estimand ('a | s')")
    s.add_argument("--category", help="the response category (ordinal / categorical)")
    s.add_argument("--rank", default="highest", choices=("highest", "lowest"),
                   help="what rank 1 is (default: highest)")
    s.add_argument("--hdi-prob", type=float, default=0.95, help="interval probability "
                                                                "(default: 0.95)")
    s.add_argument("--tau-prior", type=float, help="Half-Normal scale of the between-analysis "
                   "SD, in the estimand's units (default: twice the draws' total spread)")
    s.add_argument("--out", help="output folder (default: <reports folder>/summary)")
    s.set_defaults(run=_cmd_summarize, atomic=True)

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
    quiet_library_notices()
    try:
        if getattr(args, "atomic", False):
            with transaction():
                return args.run(args)
        return args.run(args)
    except BiasstatsError as e:
        _say(f"error: {e}", file=sys.stderr, keep="")  # one line, whatever a name holds
        return e.exit_code
    except OSError as e:  # a full disk met by a library (a cache, a temporary file)
        if e.errno not in STORAGE_FULL:
            raise
        err = storage_error(e, "a cache or temporary file")
        _say(f"error: {err}", file=sys.stderr, keep="")
        return err.exit_code
    except KeyboardInterrupt:
        _say("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
