"""Short text and HTML displays of fits and comparisons (Jupyter's ``_repr_html_``).

A fit displays as lme4's summary does: a header (formula, method, observations, groups,
criterion, convergence), the fixed effects with their intervals labelled by kind, and the
random-effects standard deviations and correlations; a comparison as its side-by-side table.
Every text is HTML-escaped.
"""

from __future__ import annotations

import html
import math

import pandas as pd


def _num(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    return f"{x:.{digits}g}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _criterion(fit) -> str:
    if fit.criterion is None:
        return ""
    what = "REML criterion" if fit.method == "reml" else "deviance"
    return f"{what} {fit.criterion:.2f}"


def fit_repr(fit) -> str:
    """One line: method, formula, observations, groups, criterion, convergence."""
    groups = ", ".join(f"{g}: {k}" for g, k in fit.ngroups.items())
    parts = [f"n={fit.nobs}"] + ([groups] if groups else [])
    crit = _criterion(fit)
    if crit:
        parts.append(crit)
    if fit.method != "bayes":
        parts.append("converged" if fit.converged else "NOT converged")
    label = f" '{fit.label}'" if fit.label else ""
    return f"<Fit {fit.method}{label}: {fit.formula}; {'; '.join(parts)}>"


def fit_html(fit) -> str:
    """A compact HTML summary of a fit (no per-level rows: size independent of the levels)."""
    groups = ", ".join(f"{html.escape(g)} ({k} levels)" for g, k in fit.ngroups.items())
    kind = {"wald": "Wald"}.get(fit.interval, fit.interval)
    head = [f"<b>{html.escape(fit.method.upper())} fit</b>: <code>{html.escape(fit.formula)}</code>",
            f"{fit.nobs} observations" + (f"; groups: {groups}" if groups else "")]
    crit = _criterion(fit)
    if crit:
        head.append(html.escape(crit) + ("" if fit.converged else "; <b>not converged</b>")
                    + ("; singular" if fit.singular else ""))
    fixed = [[k, _num(b), _num(fit.beta_se.get(k)), _num((fit.beta_ci.get(k) or [None])[0]),
              _num((fit.beta_ci.get(k) or [None, None])[1])] for k, b in fit.beta.items()]
    rand = [[r["grp"], r["var1"] or "", r["var2"] or "", _num(r["sdcor"])] for r in fit.varcorr]
    se = "posterior sd" if fit.method == "bayes" else "std. error"
    parts = ["<div class='workbench-fit'>", "<br>".join(head),
             f"<p>Fixed effects ({html.escape(kind)} intervals)</p>",
             _table(["term", "estimate", se, "lower", "upper"], fixed)]
    if rand:
        parts += ["<p>Random effects (sd; correlation when var2 is given)</p>",
                  _table(["group", "var1", "var2", "sd / cor"], rand)]
    parts.append("</div>")
    return "".join(parts)


def comparison_html(comparison, digits: int = 3) -> str:
    """The comparison's side-by-side table as HTML."""
    wide: pd.DataFrame = comparison.side_by_side(digits)
    rows = [[str(v) for v in r] for r in wide.itertuples(index=False)]
    return ("<div class='workbench-comparison'><p>Estimates [interval] by method: "
            + html.escape(", ".join(comparison.methods)) + "</p>"
            + _table(list(map(str, wide.columns)), rows) + "</div>")


__all__ = ["fit_repr", "fit_html", "comparison_html"]
