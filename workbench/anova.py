"""F tests of fixed-effect terms with Satterthwaite or Kenward-Roger denominator df.

For a term with columns selected by the q x p matrix L, the Wald F statistic is

    F = (L beta)' (L Phi L')^-1 (L beta) / q,

with Phi the covariance of beta.  Each term is tested on its own columns under the fit's
contrasts: lmerTest's type III table when the term is not contained in a higher-order term, or
when the contrasts are orthogonal (``sum``, ``helmert``, ``poly``).

* **Satterthwaite** (lmerTest's ``contestMD``): Phi = sigma^2 (X'V^-1X)^-1; with
  L Phi L' = P diag(d) P', each direction m has the t-test df
  nu_m = 2 d_m^2 / (g_m' A g_m), g_m the gradient of d_m in the variance parameters
  (theta, sigma) and A twice the inverse Hessian of the deviance (reused from
  :mod:`workbench.reml.inference`); the F df is 2E / (E - q), E = sum nu_m / (nu_m - 2)
  (2 when some nu_m <= 2; nu when all are equal).
* **Kenward-Roger** (Kenward & Roger 1997; pbkrtest's ``vcovAdj`` and ``KRmodcomp``): with
  the marginal covariance Sigma = sum_r s_r G_r linear in the variance parameters s (each
  term's covariance entries and sigma^2), P_r = -X'S^-1 G_r S^-1 X, Q_rs =
  X'S^-1 G_r S^-1 G_s S^-1 X, the information I_rs = tr(S^-1 G_r S^-1 G_s) - 2 tr(Phi Q_rs)
  + tr(Phi P_r Phi P_s), W = 2 I^-1, the adjusted covariance is
  Phi_A = Phi + 2 Phi (sum_rs W_rs (Q_rs - P_r Phi P_s)) Phi; the statistic uses Phi_A and
  pbkrtest's scaling, its df is 4 + (q + 2) / (q rho - 1).  Dense n x n matrices: for data
  sets up to :data:`MAX_DENSE_N` rows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .errors import WorkbenchError

DDF = ("Satterthwaite", "Kenward-Roger")
MAX_DENSE_N = 5000  # the Kenward-Roger computation forms n x n matrices


def term_columns(fit) -> list[tuple[str, list[int]]]:
    """(term label, indices into the fit's fixed effects) per fixed-effect term, in R's order."""
    from .design import evaluate
    from .modelmatrix import Factor, _codes_table, _variable_columns
    from .terms import deparse

    design = fit.design
    frame = evaluate(design.spec, design.data, offset=(design.arguments or {}).get("offset"))
    terms = frame.fixed
    labels = [deparse(v) for v in terms.variables]
    values = {i: (v.take(np.arange(design.n)) if isinstance(v, Factor) else v)
              for i, v in frame.fixed_values.items()}
    is_factor = [isinstance(values.get(i), Factor) for i in range(len(labels))]
    contrasts = (design.arguments or {}).get("contrasts") or {}
    from .contrasts import canonical

    contrasts = {k: canonical(v) for k, v in contrasts.items()}
    out = []
    names = list(design.fixed_names)
    for t, codes in zip(terms.terms, _codes_table(terms, is_factor)):
        an = [""]
        for v in t:
            _, mn = _variable_columns(labels[v], values[v], codes[v], contrasts)
            an = [f"{a}:{b}" if a else b for b in mn for a in an]
        idx = [names.index(c) for c in an if c in names]
        if idx:
            out.append((":".join(labels[v] for v in t), idx))
    return out


def _satterthwaite_ddf(fit, Ls: list[np.ndarray]) -> list[float]:
    from .reml.derivatives import satterthwaite_pieces

    A, V, J = satterthwaite_pieces(fit)
    out = []
    for L in Ls:
        d, P = np.linalg.eigh(L @ V @ L.T)
        nus = []
        for m in range(d.size):
            lm = P[:, m] @ L
            g = np.einsum("i,kij,j->k", lm, J, lm)
            denom = float(g @ A @ g)
            nus.append(2.0 * d[m] ** 2 / denom if denom > 0 else math.inf)
        nus = np.array(nus)
        if nus.size == 1 or np.all(np.abs(nus - nus[0]) < 1e-8):
            out.append(float(nus[0]))
        elif np.any(nus <= 2):
            out.append(2.0)
        else:
            E = float(np.sum(nus / (nus - 2.0)))
            out.append(2.0 * E / (E - nus.size))
    return out


def _sigma_parts(fit) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """(Sigma, [G_r], fixed part) of the marginal covariance, dense, at the estimates."""
    design = fit.design
    n = design.n
    if n > MAX_DENSE_N:
        raise WorkbenchError(f"Kenward-Roger df need dense {n} x {n} matrices; they are "
                             f"implemented for at most {MAX_DENSE_N} rows")
    varcorr = fit.varcorr
    Gs, Sigma = [], np.zeros((n, n))
    # the design's terms in order, each with its unstructured covariance (varcorr rows by label)
    labels = _term_labels(design)
    for t, label in zip(design.terms, labels):
        same = t.codes[:, None] == t.codes[None, :]
        cov = np.zeros((t.q, t.q))
        for r in varcorr:
            if r["grp"] != label:
                continue
            i = t.columns.index(r["var1"])
            j = i if r["var2"] is None else t.columns.index(r["var2"])
            cov[i, j] = cov[j, i] = r["vcov"]
        for i in range(t.q):
            for j in range(i + 1):
                outer = np.outer(t.Z[:, i], t.Z[:, j])
                D = same * (outer if i == j else outer + outer.T)
                Gs.append(D)
                Sigma += cov[i, j] * D
    fixed = np.zeros((n, n))
    if design.known_sd is not None:
        fixed = np.diag(design.known_sd ** 2)
    else:
        R0 = np.diag(1.0 / design.weights) if design.weights is not None else np.eye(n)
        Gs.append(R0)
        Sigma += fit.sigma ** 2 * R0
    if design.known_sd is not None and design.weights is not None:
        fixed = fixed / design.weights[:, None]
    return Sigma + fixed, Gs, fixed


def _term_labels(design) -> list[str]:
    """lme4's group labels of the design's terms (``g``, ``g.1`` for a second term on g)."""
    seen: dict = {}
    out = []
    for t in design.terms:
        k = seen.get(t.group, 0)
        out.append(t.group if k == 0 else f"{t.group}.{k}")
        seen[t.group] = k + 1
    return out


def vcov_kenward_roger(fit):
    """Kenward-Roger's adjusted covariance of the fixed effects (pbkrtest's ``vcovAdj``).

    Returns
    -------
    PhiA : ndarray (p, p)
    Phi : ndarray (p, p)
        The unadjusted covariance.
    P : list of ndarray
    W : ndarray
    """
    X = fit.design.X
    Sigma, Gs, _ = _sigma_parts(fit)
    Si = np.linalg.inv(Sigma)
    SiX = Si @ X
    Phi = np.linalg.inv(X.T @ SiX)
    HH = [G @ Si for G in Gs]
    OO = [H @ X for H in HH]
    P = [-(SiX.T @ O) for O in OO]
    k = len(Gs)
    Q = {}
    IE2 = np.empty((k, k))
    for r in range(k):
        for s in range(r, k):
            Q[r, s] = OO[r].T @ Si @ OO[s]
            Q[s, r] = Q[r, s].T
            IE2[r, s] = IE2[s, r] = (np.sum(HH[r].T * HH[s]) - 2.0 * np.sum(Phi * Q[r, s])
                                     + np.sum((Phi @ P[r]) * (P[s] @ Phi)))
    ev = np.linalg.eigvalsh(IE2)
    W = 2.0 * (np.linalg.inv(IE2) if np.min(np.abs(ev)) > 1e-10 else np.linalg.pinv(IE2))
    U = np.zeros_like(Phi)
    for r in range(k):
        for s in range(k):
            U += W[r, s] * (Q[r, s] - P[r] @ Phi @ P[s])
    PhiA = Phi + 2.0 * Phi @ U @ Phi
    return PhiA, Phi, P, W


def _kr_test(L, beta, PhiA, Phi, P, W):
    """pbkrtest's ``.KR_adjust``: (F, ddf) of H0: L beta = 0."""
    q = np.linalg.matrix_rank(L)
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    TP = Theta @ Phi
    A1 = A2 = 0.0
    k = len(P)
    for i in range(k):
        ui = TP @ P[i] @ Phi
        for j in range(i, k):
            e = 1.0 if i == j else 2.0
            uj = TP @ P[j] @ Phi
            A1 += e * W[i, j] * np.trace(ui) * np.trace(uj)
            A2 += e * W[i, j] * np.sum(ui * uj.T)
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    c1 = g / (3 * q + 2 * (1 - g))
    c2 = (q - g) / (3 * q + 2 * (1 - g))
    c3 = (q + 2 - g) / (3 * q + 2 * (1 - g))
    V0 = 1 + c1 * B
    V1 = 1 - c2 * B
    V2 = 1 - c3 * B
    V0 = 0.0 if abs(V0) < 1e-10 else V0
    ratio = (1 - A2 / q) / V1 if V1 != 0 else 0.0
    rho = ratio ** 2 * V0 / V2 / q
    df2 = 4 + (q + 2) / (q * rho - 1)
    Lb = L @ beta
    F = float(Lb @ np.linalg.solve(L @ PhiA @ L.T, Lb)) / q
    return F, float(df2), int(q)


def anova(fit, ddf: str = "Satterthwaite") -> pd.DataFrame:
    """F tests of the fixed-effect terms (lmerTest's ``anova(fit, ddf=...)``).

    Parameters
    ----------
    fit : Fit
        A REML or ML fit with random effects.
    ddf : {"Satterthwaite", "Kenward-Roger"}
        Denominator degrees of freedom (Kenward-Roger needs a REML fit, as pbkrtest).

    Returns
    -------
    DataFrame
        One row per term (the intercept excepted): ``term``, ``NumDF``, ``DenDF``, ``F``,
        ``p``; ``attrs["ddf"]`` names the method.
    """
    keys = {d.lower().replace("-", "").replace("_", ""): d for d in DDF}
    key = str(ddf).lower().replace("-", "").replace("_", "")
    if key not in keys:
        raise WorkbenchError(f"ddf must be 'Satterthwaite' or 'Kenward-Roger', not {ddf!r}")
    ddf = keys[key]
    fit.reml_state(f"F tests with {ddf} df", need_system=True)
    if not fit.design.terms:
        raise WorkbenchError("anova() needs a model with random effects")
    if ddf == "Kenward-Roger" and fit.method != "reml":
        raise WorkbenchError("Kenward-Roger df need a REML fit (as pbkrtest)")
    names = list(fit.design.fixed_names)
    beta = np.array([fit.beta[n] for n in names])
    p = len(names)
    tests = [(lab, idx) for lab, idx in term_columns(fit) if lab != "(Intercept)"]
    Ls = [np.eye(p)[idx] for _, idx in tests]
    rows = []
    if ddf == "Satterthwaite":
        V = fit.reml_state("F tests").vcov
        dfs = _satterthwaite_ddf(fit, Ls)
        for (lab, idx), L, df in zip(tests, Ls, dfs):
            Lb = L @ beta
            F = float(Lb @ np.linalg.solve(L @ V @ L.T, Lb)) / len(idx)
            rows.append((lab, len(idx), df, F))
    else:
        PhiA, Phi, P, W = vcov_kenward_roger(fit)
        for (lab, idx), L in zip(tests, Ls):
            F, df, q = _kr_test(L, beta, PhiA, Phi, P, W)
            rows.append((lab, q, df, F))
    table = pd.DataFrame(rows, columns=["term", "NumDF", "DenDF", "F"])
    table["p"] = [float(stats.f.sf(F, q, d)) for F, q, d in zip(table["F"], table["NumDF"],
                                                                   table["DenDF"])]
    table.attrs["ddf"] = ddf
    return table


__all__ = ["anova", "vcov_kenward_roger", "term_columns", "DDF"]
