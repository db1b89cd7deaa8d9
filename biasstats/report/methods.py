"""The words of a report: a methods paragraph ready to paste, and findings in plain sentences."""

from __future__ import annotations

import platform

import polars as pl

from biasstats.inference.from_spec import versions
from biasstats.model.families import get_family


def _fmt(x: float, d: int = 2) -> str:
    return f"{x:.{d}f}".replace("-", "−")


def _ta_reason(settings: dict, spec) -> str:
    """How the target acceptance was chosen, in brackets (empty when set by the user);
    ``spec`` is the fit's ModelSpec (its terms' funnel risks decided the automatic value)."""
    if (settings.get("target_accept_reason") or "set by user") == "set by user":
        return ""
    if not spec.groups:
        return " (the default; no group terms)"
    if all(g.funnel_risk is None for g in spec.groups):
        return " (the default)"
    return " (chosen from the largest funnel risk of the group terms' parameterisations)"


def _parameterisation(centring: dict[str, str]) -> str:
    """One sentence naming the centred and non-centred group terms (empty without terms).

    ``centring``: ``ModelSpec.describe_centring()`` (``"centred (reason)"`` per grouping)."""
    if not centring:
        return ""
    parts = []
    for label, flag in (("centred", True), ("non-centred", False)):
        names = [f"(1|{k})" for k, v in centring.items() if v.startswith("centred") == flag]
        if names:
            parts.append(f"{label}: {', '.join(names)}")
    chosen = ("chosen per term from how precisely the data determine its standard deviation"
              if any("set by user" not in v for v in centring.values()) else "set in the spec")
    return f"Group terms were sampled centred or non-centred, {chosen} ({'; '.join(parts)})."


def _attempts(settings: dict) -> str:
    """One sentence on the automatic refit: each attempt, what changed, its gate verdict and
    its sampling time (empty when the first attempt was kept)."""
    tries = settings.get("attempts") or []
    if len(tries) < 2:
        return ""
    parts = []
    for a in tries:
        verdict = ("passed the convergence gate" if a.get("passed")
                   else "failed the convergence gate (" + "; ".join(f.split(";")[0] for f in a.get("failures", []))
                   + ")")
        parts.append(f"attempt {a.get('attempt')} ({a.get('change')}; "
                     f"{a.get('sampling_s', 0):.0f} s of sampling) {verdict}")
    return "The fit was refitted automatically: " + "; ".join(parts) + "."


def methods_paragraph(spec, ingest, fit, gate, effects, sources, estimands: str = "") -> str:
    """Formula, family, priors, sampler, diagnostics, software versions and data checksums."""
    led = ingest.ledger
    v = versions()
    priors = "; ".join(f"{k} ~ {p}" for k, p in fit.priors.items())
    st = fit.settings
    rows = led.rows
    unit = "judgements" if len(led.tallies) > 1 else "rows"
    used = led.tallies[-1].by_status.get("ok", 0)
    s = [
        f"We analysed {led.rows_read:,} trials ({used:,} {unit} with a parsed outcome; "
        f"{rows.by_status.get('refused', 0):,} trials refused, "
        f"{rows.by_status.get('unparseable', 0):,} unparseable or partly parsed, "
        f"{rows.by_status.get('excluded', 0):,} excluded by declared filters; every row is "
        f"accounted for in the ingest ledger).",
        f"We fitted the hierarchical {fit.family} model `{fit.formula}` with a "
        f"{get_family(fit.family).link} link ",
        "in biasstats, where (1|g) terms are group-level intercepts with zero-sum constraints "
        "(each group's effects are deviations from the mean of its levels) and nested terms "
        "(1|a/b) expand to (1|a) + (1|a:b).",
        get_family(fit.family).methods,
        ("Auxiliary parameters with their own formulas (log link, zero-sum group terms): "
         + "; ".join(f"{k} {v.strip()}" for k, v in spec.model.aux.items()) + "."
         if spec.model.aux else ""),
        f"Priors: {priors}.",
        f"The posterior was sampled with {st.get('sampler', spec.fit.sampler)} (NUTS; "
        f"{st.get('chains')} chains, {st.get('tune')} warm-up and {st.get('draws')} retained "
        f"draws each, target acceptance {st.get('target_accept')}{_ta_reason(st, fit.spec)}, "
        f"{st.get('adaptation', 'low_rank').replace('_', '-')} mass-matrix adaptation"
        + (f" regularised by gamma = {st['mass_matrix_gamma']:g}" if st.get("mass_matrix_gamma")
           else "") + ", seed "
        f"{st.get('seed')}).",
        _parameterisation(st.get("centered") or {}),
        _attempts(st),
        f"Convergence: max R-hat {gate.values['max_rhat']:.3f}, minimum bulk ESS "
        f"{gate.values['min_ess_bulk']:.0f}, minimum tail ESS {gate.values['min_ess_tail']:.0f}, "
        f"{gate.values['divergences']} divergent transitions, minimum E-BFMI "
        f"{gate.values['min_bfmi']:.2f} ({'all thresholds met' if gate.passed else 'FAILED: ' + '; '.join(gate.failures)}).",
    ]
    if effects is not None:
        s.append(
            f"Effect sizes are posterior distributions of the average predicted probability of "
            f"a stereotype-congruent answer over the observed design, also reported as bias "
            f"(2p − 1), log-odds and odds; we report posterior means with {int(effects.prob * 100)}% "
            f"highest-density intervals and a region of practical equivalence of ±{effects.rope} "
            f"on the bias scale."
        )
    if estimands:
        s.append(estimands)
    s.append(
        "Software: " + ", ".join(f"{k} {val}" for k, val in v.items())
        + f", Python {platform.python_version()}."
    )
    s.append("Data (SHA-256): " + "; ".join(f"{p.path.name} {p.sha256[:16]}…" for p in sources[:6])
             + (f"; and {len(sources) - 6} more files" if len(sources) > 6 else "") + ".")
    return " ".join(x for x in s if x)


def findings(effects, gate, ingest, estimands: list[str] | None = None) -> list[str]:
    """Plain sentences, most important first. ``effects``: the congruence study's bias
    effects (None for any other outcome); ``estimands``: the estimands' own sentences."""
    out = []
    if not gate.passed:
        out.append("The sampler did not converge by the declared thresholds "
                   f"({'; '.join(gate.failures)}): treat every number below as provisional.")
    out += _bias_findings(effects) if effects is not None else []
    out += estimands or []
    led = ingest.ledger
    failed = led.rows_read - led.rows.by_status.get("ok", 0)
    if failed:
        out.append(
            f"{failed:,} of {led.rows_read:,} trials were not fully usable (refused, unparseable "
            f"or excluded); they are modelled as missing, not scored as unbiased."
            if effects is not None else
            f"{failed:,} of {led.rows_read:,} rows were not usable (refused, unparseable or "
            f"excluded); they are left out of the model, not scored."
        )
    return out


def _bias_findings(effects) -> list[str]:
    """Sentences for a congruence outcome (bias on −1…+1, ROPE verdicts)."""
    out = []
    t = effects.table
    pct = int(effects.prob * 100)

    def get(term, scale="bias"):
        return t.filter((pl.col("term") == term) & (pl.col("scale") == scale))

    ov = get("overall", "probability")
    if ov.height:
        r = ov.row(0, named=True)
        out.append(
            f"Overall, the probability of a stereotype-congruent answer is {_fmt(r['mean'])} "
            f"({pct}% HDI {_fmt(r['hdi_low'])}–{_fmt(r['hdi_high'])}; 0.5 = unbiased); "
            f"P(bias > 0) = {r['p_positive']:.3f}."
        )
    llm = get("llm")
    if llm.height > 1:
        top = llm.sort("mean", descending=True).row(0, named=True)
        low = llm.sort("mean").row(0, named=True)
        out.append(
            f"Across {llm.height} LLMs, bias ranges from {_fmt(low['mean'])} ({low['level']}) to "
            f"{_fmt(top['mean'])} ({top['level']}) on the −1…+1 scale."
        )
        if effects.ranks.height:
            best = effects.ranks.sort("p_best", descending=True).row(0, named=True)
            out.append(f"{best['llm']} is the most biased LLM with posterior probability "
                       f"{best['p_best']:.2f}.")
    for term, noun in (("stereotype", "stereotypes"), ("category", "categories"),
                       ("llm", "LLMs")):
        e = get(term)
        if e.height > 1:
            counts = {v: int((e["verdict"] == v).sum()) for v in
                      ("biased", "practically unbiased", "undecided")}
            strongest = ", ".join(e.sort("mean", descending=True)["level"].head(3).to_list())
            out.append(
                f"Of {e.height} {noun}, {counts['biased']} are biased (HDI outside the ROPE "
                f"±{effects.rope}), {counts['practically unbiased']} practically unbiased and "
                f"{counts['undecided']} undecided; strongest: {strongest}."
            )
    vd = effects.variance
    if vd.height:
        rows = {r["component"]: r for r in vd.iter_rows(named=True)}
        if "variant" in rows:
            r = rows["variant"]
            out.append(
                f"Prompt wording (variant) accounts for {100 * r['share_mean']:.1f}% of the "
                f"latent variance ({pct}% interval {100 * r['share_low']:.1f}–"
                f"{100 * r['share_high']:.1f}%)."
            )
    return out
