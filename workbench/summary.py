"""A readable summary of a fit, in the spirit of lme4's ``print(summary(fit))``.

:func:`format_fit` is what :meth:`workbench.record.Fit.summary` and ``workbench fit`` print.  It
reads only the fit record (and, for the scaled residuals, the design kept on the fit), so it works
for every method:

* REML/ML: criterion, logLik, AIC, BIC, scaled residuals, the random-effects table (Groups,
  Name, Variance, Std.Dev., Corr), numbers of observations and groups, the fixed-effects table
  with intervals, and notes on singular fits, convergence and dropped rows or columns;
* bayes: posterior means and sds, 95% credible intervals, the priors used, sampler diagnostics
  and their warnings (R-hat > 1.01, bulk ESS < 400, divergences).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .names import varcorr_param_name

RHAT_MAX = 1.01
ESS_MIN = 400

_INTERVAL_NAMES = {
    "wald": "Wald",
    "profile": "profile",
    "bootstrap": "bootstrap percentile",
    "credible": "equal-tailed credible",
}


def _interval_kind(fit) -> str:
    """The interval kind with the likelihood it comes from: ``"profile 95% intervals on the ML
    deviance, as lme4 (the REML fit refitted by ML)"``."""
    kind = _INTERVAL_NAMES.get(fit.interval, fit.interval)
    own = {"reml": "REML", "ml": "ML"}.get(fit.method)
    if fit.interval == "profile":
        tail = " (the REML fit refitted by ML, as lme4's confint)" if fit.method == "reml" else ""
        return f"{kind} 95% intervals on the ML deviance{tail}"
    if fit.interval == "wald" and own:
        return f"{kind} 95% intervals, {own} standard errors"
    if fit.interval == "bootstrap" and own:
        return f"{kind} 95% intervals, {own} refits"
    return f"{kind} 95% intervals"


# ---------------------------------------------------------------------------- formatting
def _is_missing(x) -> bool:
    return x is None or (isinstance(x, (float, np.floating)) and not math.isfinite(float(x)))


def format_column(values: Sequence, digits: int = 4, max_decimals: int = 6) -> list[str]:
    """Format numbers with a common number of decimals (the smallest gets ``digits`` digits)."""
    finite = [abs(float(v)) for v in values if not _is_missing(v)]
    nonzero = [v for v in finite if v > 0]
    if not finite:
        return ["NA" if not (v is None) else "" for v in values]
    big = max(finite)
    small = min(nonzero) if nonzero else 1.0
    if big >= 1e7 or small < 10.0 ** -(max_decimals - 1):
        return ["" if v is None else "NA" if _is_missing(v) else f"{float(v):.{digits - 1}e}"
                for v in values]
    dec = digits - 1 - math.floor(math.log10(small))
    dec = min(max(dec, 0), max_decimals)
    return ["" if v is None else "NA" if _is_missing(v) else f"{float(v):.{dec}f}" for v in values]


def format_scaled(values: Sequence, scale_values: Sequence, digits: int = 4,
                   max_decimals: int = 8) -> list[str]:
    """Format numbers to the precision of their standard errors (lme4's ``printCoefmat`` idea).

    The decimals are those that give the smallest positive value of ``scale_values`` ``digits``
    significant digits; falls back to :func:`format_column` when no scale is usable.
    """
    scales = [abs(float(s)) for s in scale_values if not _is_missing(s) and float(s) > 0]
    finite = [abs(float(v)) for v in values if not _is_missing(v)]
    if not scales or not finite or max(finite) >= 1e7:
        return format_column(values, digits)
    dec = digits - 1 - math.floor(math.log10(min(scales)))
    if dec > max_decimals:
        return format_column(values, digits)
    dec = max(dec, 0)
    return ["" if v is None else "NA" if _is_missing(v) else f"{float(v):.{dec}f}" for v in values]


def _table(headers: Sequence[str], columns: Sequence[Sequence[str]], right: Sequence[bool],
           indent: str = " ") -> list[str]:
    """Lay out string columns under headers; ``right[i]`` right-aligns column ``i``."""
    widths = [max([len(h)] + [len(c) for c in col]) for h, col in zip(headers, columns)]
    nrow = len(columns[0]) if columns else 0

    def line(cells):
        parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)]
        return (indent + " ".join(parts)).rstrip()

    out = [line(headers)]
    out.extend(line([col[i] for col in columns]) for i in range(nrow))
    return out


def _interval_headers(level: float = 0.95) -> tuple[str, str]:
    lo = 100 * (1 - level) / 2
    return f"{lo:g} %", f"{100 - lo:g} %"


# ---------------------------------------------------------------------------- pieces
_GLS_TITLES = {"fgls": "Linear mixed model fit by feasible GLS",
               "igls": "Linear mixed model fit by iterated GLS (IGLS, maximum likelihood)",
               "rigls": "Linear mixed model fit by restricted iterated GLS (RIGLS, REML)"}


def _header(fit) -> list[str]:
    if fit.method == "bayes":
        title = "Bayesian linear mixed model fit by PyMC"
        d = fit.diagnostics or {}
        bits = [f"{k} {d[k]}" for k in ("sampler", "parameterization") if d.get(k)]
        if bits:
            title += " (" + ", ".join(bits) + ")"
    elif fit.method == "ml":
        title = "Linear mixed model fit by maximum likelihood"
    elif fit.method in _GLS_TITLES:
        title = _GLS_TITLES[fit.method]
        est = (fit.diagnostics or {}).get("fgls", {}).get("estimator")
        if est:
            title += f" ({est})"
    else:
        title = "Linear mixed model fit by REML"
    if not fit.ngroups:  # no random-effects term
        title = title.replace("Linear mixed model", "Linear model")
    if fit.label and fit.label != fit.method:
        title += f"  [{fit.label}]"
    lines = [title, f"Formula: {fit.formula}"]
    for entry, head in (("corstruct", "Correlation structure"),
                        ("varstruct", "Variance function")):
        cst = (fit.diagnostics or {}).get(entry)
        if cst:  # nlme-style residual structure (workbench.gls.corstruct)
            ivs = cst.get("intervals") or {}
            ref = f", reference {cst['reference']}" if "reference" in cst else ""
            if len(ivs) == 1:
                (k, (lo, hi)), = ivs.items()
                lines.append(f"{head}: {cst['form']}{ref}, {k} = {cst[k]:.4g} "
                             f"(95% interval {lo:.4g}, {hi:.4g})")
                continue
            lines.append(f"{head}: {cst['form']}{ref}; estimates (95% intervals):")
            lines.extend(f"  {k} = {cst[k]:.4g} ({lo:.4g}, {hi:.4g})"
                         for k, (lo, hi) in ivs.items())
    design = fit.design
    if design is not None:
        if design.n_dropped:
            k = design.n_dropped
            lines.append(f"Rows dropped for missing values: {k}")
        if design.dropped_columns:
            lines.append("Fixed effects dropped (rank-deficient design): "
                         + ", ".join(design.dropped_columns))
    return lines


def _n_params(fit) -> int:
    ncov = sum(1 for r in fit.varcorr if r["grp"] != "Residual")
    nres = sum(len((fit.diagnostics or {}).get(e, {}).get("intervals") or {})
               for e in ("corstruct", "varstruct"))  # a residual structure's parameters
    return len(fit.beta) + ncov + nres + (1 if fit.sigma is not None else 0)


def _criteria(fit) -> list[str]:
    if fit.criterion is None:
        return []
    k = _n_params(fit)
    n = fit.nobs
    dev = float(fit.criterion)
    aic = dev + 2 * k
    bic = dev + k * math.log(n)
    loglik = fit.loglik if fit.loglik is not None else -dev / 2
    lines = []
    if fit.method in ("reml", "rigls"):
        lines.append(f"REML criterion at convergence: {dev:.4f}")
        heads = ["AIC", "BIC", "logLik", "df.resid"]
        vals = [f"{aic:.1f}", f"{bic:.1f}", f"{loglik:.1f}", f"{n - k}"]
        note = "  (AIC, BIC and logLik on the REML scale; compare REML fits only with the same fixed effects)"
    else:
        heads = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
        vals = [f"{aic:.1f}", f"{bic:.1f}", f"{loglik:.1f}", f"{dev:.1f}", f"{n - k}"]
        note = None
    lines += _table(heads, [[v] for v in vals], [True] * len(heads), indent="  ")
    if note:
        lines.append(note)
    return lines


def _ranef_arrays(fit, design) -> np.ndarray | None:
    """Fitted values X beta + Z b from the record's beta and ranef rows (None if unavailable)."""
    if design is None or tuple(design.fixed_names) != tuple(fit.beta):
        return None
    beta = np.array([fit.beta[k] for k in design.fixed_names], dtype=float)
    fitted = design.X @ beta if design.X.shape[1] else np.zeros(design.n)
    values = {(r["group"], r["term"], str(r["level"])): r["value"] for r in fit.ranef}
    for t in design.terms:
        for k, col in enumerate(t.columns):
            b = np.array([values.get((t.group, col, lev), math.nan) for lev in t.levels], dtype=float)
            if not np.all(np.isfinite(b)):
                return None
            fitted = fitted + t.Z[:, k] * b[t.codes]
    return fitted


def _scaled_residuals(fit) -> list[str]:
    design = fit.design
    if fit.method == "bayes" or design is None:
        return []
    fitted = _ranef_arrays(fit, design)
    if fitted is None:
        return []
    if design.known_sd is not None:
        scale = np.asarray(design.known_sd, dtype=float)
    elif fit.sigma:
        scale = float(fit.sigma)
    else:
        return []
    res = (design.y_work - fitted) / scale  # lme4's Pearson residuals: offset out, sqrt(w) in
    if design.weights is not None:
        res = res * np.sqrt(design.weights)
    q = np.quantile(res, [0, 0.25, 0.5, 0.75, 1.0])
    heads = ["Min", "1Q", "Median", "3Q", "Max"]
    cells = [f"{v:.4f}" for v in q]
    return ["Scaled residuals:"] + _table(heads, [[c] for c in cells], [True] * 5)


def _group_blocks(varcorr: list[dict]) -> list[tuple[str, list[dict], dict]]:
    """Split varcorr rows into (grp, sd rows, {(var1, var2): row}) blocks, in order."""
    blocks: list[tuple[str, list[dict], dict]] = []
    for r in varcorr:
        if not blocks or blocks[-1][0] != r["grp"]:
            blocks.append((r["grp"], [], {}))
        if r.get("var2") is None:
            blocks[-1][1].append(r)
        else:
            blocks[-1][2][(r["var1"], r["var2"])] = r
    return blocks


def _random_effects(fit) -> list[str]:
    blocks = _group_blocks(fit.varcorr)
    maxq = max((len(sds) for _, sds, _ in blocks), default=1)
    ncor = max(maxq - 1, 0)
    groups, names, var, sd, cors = [], [], [], [], [[] for _ in range(ncor)]
    for grp, sds, cormap in blocks:
        for i, r in enumerate(sds):
            groups.append(grp if i == 0 else "")
            names.append("" if r.get("var1") is None else str(r["var1"]))
            var.append(r.get("vcov"))
            sd.append(r.get("sdcor"))
            for j in range(ncor):
                c = None
                if j < i:
                    row = cormap.get((sds[j]["var1"], r["var1"])) or cormap.get((r["var1"], sds[j]["var1"]))
                    c = row["sdcor"] if row is not None else None
                cors[j].append("" if c is None else "NA" if _is_missing(c) else f"{float(c):.2f}")
    bayes = fit.method == "bayes"
    heads = ["Groups", "Name", "Variance", "Std.Dev."]
    if bayes:
        heads = ["Groups", "Name", "Var.mean", "SD.mean"]
    cols = [groups, names, format_column(var), format_column(sd)]
    right = [False, False, True, True]
    for j in range(ncor):
        heads.append("Corr" if j == 0 else "")
        cols.append(cors[j])
        right.append(True)
    title = "Random effects:" if not bayes else "Random effects (posterior means):"
    lines = [title] + _table(heads, cols, right)
    if fit.sigma is None and not any(r["grp"] == "Residual" for r in fit.varcorr):
        lines.append(" Residual: known standard deviations, one per observation (not estimated)")
    ng = "; ".join(f"{g}, {n}" for g, n in fit.ngroups.items())
    lines.append(f"Number of obs: {fit.nobs}" + (f", groups:  {ng}" if ng else ""))
    return lines


def _varcorr_intervals(fit) -> list[str]:
    rows = [r for r in fit.varcorr if r.get("sdcor_ci")]
    if not rows:
        return []

    lo_h, hi_h = _interval_headers()
    kind = _interval_kind(fit)
    names = [varcorr_param_name(r) for r in rows]
    ses = [r.get("sdcor_se") for r in rows]
    est, lows, highs, se_cells = [], [], [], []
    for r, s in zip(rows, ses):
        lo, hi = r["sdcor_ci"]
        # Each row to the precision of its own spread: its sd, else its interval width / 3.92.
        scale = s if not _is_missing(s) else (
            (float(hi) - float(lo)) / 3.92 if not (_is_missing(lo) or _is_missing(hi)) else None)
        cells = format_scaled([r["sdcor"], s, lo, hi], [scale], digits=2 if fit.method == "bayes" else 3)
        est.append(cells[0])
        se_cells.append(cells[1])
        lows.append(cells[2])
        highs.append(cells[3])
    heads = ["", "Mean" if fit.method == "bayes" else "Estimate"]
    cols = [names, est]
    right = [False, True]
    if any(not _is_missing(s) for s in ses):
        heads.append("SD" if fit.method == "bayes" else "Std. Error")
        cols.append(se_cells)
        right.append(True)
    heads += [lo_h, hi_h]
    cols += [lows, highs]
    right += [True, True]
    return [f"Standard deviations and correlations ({kind}):"] + _table(heads, cols, right)


def _fixed_effects(fit) -> list[str]:
    names = list(fit.beta)
    if not names:
        return ["Fixed effects: none"]
    est = [fit.beta[k] for k in names]
    se = [fit.beta_se.get(k) for k in names]
    ci = [fit.beta_ci.get(k) or [None, None] for k in names]
    lo_h, hi_h = _interval_headers()
    kind = _interval_kind(fit)
    if fit.method == "bayes":
        heads = ["", "Mean", "SD", lo_h, hi_h]
        # Posterior sds carry Monte Carlo error: two significant digits of the sd are plenty.
        cols = [names, format_scaled(est, se, digits=2), format_scaled(se, se, digits=2)]
        title = f"Fixed effects (posterior; {kind}):"
    else:
        tval = [b / s if not _is_missing(s) and s > 0 else math.nan for b, s in zip(est, se)]
        heads = ["", "Estimate", "Std. Error", "t value", lo_h, hi_h]
        cols = [names, format_scaled(est, se), format_scaled(se, se),
                [f"{t:.3f}" if math.isfinite(t) else "NA" for t in tval]]
        title = f"Fixed effects ({kind}):"
    d = 2 if fit.method == "bayes" else 4
    cols += [format_scaled([c[0] for c in ci], se, digits=d),
             format_scaled([c[1] for c in ci], se, digits=d)]
    return [title] + _table(heads, cols, [False] + [True] * (len(heads) - 1))


def _reml_notes(fit) -> list[str]:
    lines = []
    opt = (fit.diagnostics or {}).get("optimizer") or {}
    if opt:
        bits = [str(opt.get("method", "?"))]
        if opt.get("evaluations") is not None:
            bits.append(f"{opt['evaluations']} criterion evaluations")
        if opt.get("message"):
            bits.append(str(opt["message"]))
        lines.append("Optimizer: " + ", ".join(bits))
    if not fit.converged:
        msg = opt.get("message") if opt else None
        lines.append("warning: the optimizer did not converge" + (f" ({msg})" if msg else "")
                     + "; the estimates may not be the optimum")
    if fit.singular:
        lines.append("note: boundary (singular) fit: a variance is estimated at zero or a "
                     "correlation at +-1 (as lme4's isSingular)")
    return lines


# ---------------------------------------------------------------------------- bayes
def find_priors(fit) -> dict | None:
    """The priors a Bayesian fit used, ``{key: "Dist(args)"}`` (``diagnostics["priors"]``)."""
    return (fit.diagnostics or {}).get("priors") or None


def bayes_warnings(fit) -> list[str]:
    """Sampler warnings: the fitter's ``diagnostics["warnings"]``, else derived from the numbers.

    Derived warnings follow the CLI's thresholds: R-hat > 1.01, bulk ESS < 400, any divergence.
    """
    d = fit.diagnostics or {}
    if "warnings" in d and d["warnings"] is not None:
        w = d["warnings"]
        return [str(w)] if isinstance(w, str) else [str(x) for x in w]
    out = []
    rhat = d.get("max_rhat")
    if not _is_missing(rhat) and float(rhat) > RHAT_MAX:
        out.append(f"max R-hat {float(rhat):.3f} > {RHAT_MAX}: the chains have not mixed")
    ess = d.get("min_ess_bulk")
    if not _is_missing(ess) and float(ess) < ESS_MIN:
        out.append(f"min bulk ESS {float(ess):.0f} < {ESS_MIN}: draw more samples")
    div = d.get("divergences")
    if not _is_missing(div) and int(div) > 0:
        out.append(f"{int(div)} divergent transitions: the posterior may be biased")
    return out


def _format_prior(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _bayes_sections(fit) -> tuple[list[str], list[str]]:
    d = fit.diagnostics or {}
    top = []
    run = [f"{k} {d[k]}" for k in ("chains", "draws", "tune", "seed") if d.get(k) is not None]
    if run:
        top.append("Sampling: " + ", ".join(run))
    priors = find_priors(fit)
    if priors:
        top.append("Priors:")
        keys = [str(k) for k in priors]
        w = max(len(k) for k in keys)
        top += [f"  {k.ljust(w)}  {_format_prior(v)}" for k, v in zip(keys, priors.values())]
    bottom = []
    parts = []
    if not _is_missing(d.get("max_rhat")):
        parts.append(f"max R-hat {float(d['max_rhat']):.3f}")
    if not _is_missing(d.get("min_ess_bulk")):
        parts.append(f"min bulk ESS {float(d['min_ess_bulk']):.0f}")
    if not _is_missing(d.get("min_ess_tail")):
        parts.append(f"min tail ESS {float(d['min_ess_tail']):.0f}")
    if d.get("divergences") is not None:
        parts.append(f"divergences {int(d['divergences'])}")
    for key, label in (("compile_seconds", "compile"), ("sampling_seconds", "sampling")):
        if not _is_missing(d.get(key)):
            parts.append(f"{label} {float(d[key]):.1f} s")
    if parts:
        bottom.append("Diagnostics: " + ", ".join(parts))
    bottom += [f"warning: {w}" for w in bayes_warnings(fit)]
    return top, bottom


# ---------------------------------------------------------------------------- entry point
def format_fit(fit) -> str:
    """A readable, lme4-like summary of a :class:`~workbench.record.Fit`.

    Parameters
    ----------
    fit : Fit
        A REML, ML or Bayesian fit.

    Returns
    -------
    str
        Several lines of text, ending without a newline.
    """
    sections: list[list[str]] = [_header(fit)]
    if fit.method == "bayes":
        top, bottom = _bayes_sections(fit)
        if top:
            sections.append(top)
        sections.append(_random_effects(fit))
        iv = _varcorr_intervals(fit)
        if iv:
            sections.append(iv)
        sections.append(_fixed_effects(fit))
        if bottom:
            sections.append(bottom)
    else:
        sections.append(_criteria(fit))
        sections.append(_scaled_residuals(fit))
        sections.append(_random_effects(fit))
        iv = _varcorr_intervals(fit)
        if iv:
            sections.append(iv)
        sections.append(_fixed_effects(fit))
        sections.append(_reml_notes(fit))
    return "\n\n".join("\n".join(s) for s in sections if s)


__all__ = ["format_fit", "format_column", "format_scaled", "bayes_warnings", "find_priors"]
