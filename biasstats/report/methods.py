"""The words of a report: a methods paragraph ready to paste, and findings in plain sentences.

Generic: a study's sentences on its own effects (its :class:`biasstats.registry.Vocabulary`)
are handed in by :func:`biasstats.report.analysis.render`."""

from __future__ import annotations

import platform

from biasstats.inference.from_spec import versions
from biasstats.model.families import get_family


def _ta_reason(settings: dict, spec) -> str:
    """How the target acceptance was chosen, in brackets (empty when set by the user);
    ``spec`` is the fit's ModelSpec (its terms' funnel risks decided the automatic value)."""
    why = settings.get("target_accept_reason") or "set by user"
    if why == "set by user":
        return ""
    if why.startswith("raised"):
        return f" ({why})"
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
    kept = [a for a in tries if a.get("kept")]
    last = ""
    if kept and not kept[0].get("passed") and kept[0] is not tries[-1]:
        last = (f" No attempt passed; the draws reported are attempt {kept[0].get('attempt')}'s, "
                "the least far from the gate.")
    return "The fit was refitted automatically: " + "; ".join(parts) + "." + last


def methods_paragraph(spec, ingest, fit, gate, sources, *, effects: str = "",
                      estimands: str = "") -> str:
    """Formula, family, priors, sampler, diagnostics, software versions and data checksums;
    ``effects``: the methods sentence of a study's own effects (its vocabulary's), then
    ``estimands``: the estimands' sentence."""
    led = ingest.ledger
    v = versions()
    priors = "; ".join(f"{k} ~ {p}" for k, p in fit.priors.items())
    st = fit.settings
    tally = led.tallies[-1]  # the unit the outcomes are counted in: every count from it
    unit = "judgements" if len(led.tallies) > 1 else "rows"
    n = tally.by_status
    s = [
        f"We analysed {led.rows_read:,} trials ({n.get('ok', 0):,} {unit} with a parsed "
        f"outcome; {n.get('refused', 0):,} {unit} refused, "
        f"{n.get('unparseable', 0):,} unparseable or partly parsed, "
        f"{n.get('excluded', 0):,} excluded by declared filters; every row is "
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
        f"The posterior was sampled with {st.get('sampler', spec.fit.sampler)} (NUTS"
        + (f", log density and gradient compiled with {st['backend']}"
           if st.get("backend") and st.get("sampler", spec.fit.sampler) == "nutpie" else "")
        + "; "
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
    if effects:
        s.append(effects)
    if estimands:
        s.append(estimands)
    s.append(
        "Software: " + ", ".join(f"{k} {val}" for k, val in v.items())
        + f", Python {platform.python_version()}."
    )
    s.append("Data (SHA-256): " + "; ".join(f"{p.path.name} {p.sha256[:16]}…" for p in sources[:6])
             + (f"; and {len(sources) - 6} more files" if len(sources) > 6 else "") + ".")
    return " ".join(x for x in s if x)


def findings(gate, ingest, estimands: list[str] | None = None, *,
             lead: list[str] | None = None, unusable: str | None = None) -> list[str]:
    """Plain sentences, most important first: the convergence warning, ``lead`` (a study's
    sentences on its own effects), ``estimands`` (the estimands' own sentences), then the rows
    not used (``unusable``: a study's sentence for them, formatted with ``failed`` and
    ``read``; default: the generic one)."""
    out = []
    if not gate.passed:
        out.append("The sampler did not converge by the declared thresholds "
                   f"({'; '.join(gate.failures)}): treat every number below as provisional.")
    out += lead or []
    out += estimands or []
    led = ingest.ledger
    failed = led.rows_read - led.rows.by_status.get("ok", 0)
    if failed:
        out.append(
            unusable.format(failed=failed, read=led.rows_read) if unusable is not None else
            f"{failed:,} of {led.rows_read:,} rows were not usable (refused, unparseable or "
            f"excluded); they are left out of the model, not scored."
        )
    return out
