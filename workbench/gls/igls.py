"""Iterated GLS (Goldstein 1986) and restricted iterated GLS (Goldstein 1989).

The marginal model of one grouping factor is y_j ~ N(X_j beta, V_j) per group j, with
V_j = Z_j G Z_j' + sigma^2 I = sum_k psi_k D_kj, linear in the variance parameters psi (the free
entries of G, then sigma^2; D_kj = z_a z_a' for a variance, z_a z_b' + z_b z_a' for a covariance,
I for sigma^2).  IGLS alternates two GLS steps:

1. fixed part: beta = (sum X_j' V_j^-1 X_j)^-1 sum X_j' V_j^-1 y_j at the current psi;
2. random part: the residual cross-products r_j r_j' (r_j = y_j - X_j beta) have expectation
   sum_k psi_k D_kj, a linear model for vec(r_j r_j') with covariance 2 V_j (x) V_j, so psi is
   GLS on them::

       sum_j [tr(V_j^-1 D_kj V_j^-1 D_lj)]_kl psi = sum_j [r_j' V_j^-1 D_kj V_j^-1 r_j]_k.

RIGLS replaces r_j r_j' by r_j r_j' + X_j C X_j' with C = (sum X_j' V_j^-1 X_j)^-1, removing the
bias E[r r'] = V - X C X' that the estimated beta leaves.  At a fixed point step 2 reads
tr(V^-1 D_k) = r' V^-1 D_k V^-1 r (the ML score equation) for IGLS and
tr(P D_k) = r' V^-1 D_k V^-1 r, P = V^-1 - V^-1 X C X' V^-1 (the REML one) for RIGLS: IGLS is
Fisher scoring for ML and converges to the ML fit, RIGLS to the REML fit.  Every quantity is a
sum over groups of T_j x T_j blocks: no n x n matrix is formed.

The criterion of each iterate is lme4's: ML deviance sum log|V_j| + r'V^-1 r + n log 2 pi; REML
adds log|X'V^-1 X| - p log 2 pi.
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from ..design import Design
from ..errors import NotYetSupportedError, DataError
from ..record import Fit, build_fit, wald_fixed_effects
from ..structure import build_structure
from .. import names


class IglsWarning(UserWarning):
    """IGLS/RIGLS stopped before converging, or converged outside the parameter space."""


class _Groups:
    """The rows of each group: y_j, X_j, Z_j."""

    def __init__(self, design: Design, block):
        order = np.argsort(block.codes, kind="stable")
        counts = np.bincount(block.codes, minlength=block.nlevels)
        cuts = np.cumsum(counts)[:-1]
        y, X, Z = design.y_work[order], design.X[order], block.Z[order]
        self.y = np.split(y, cuts)
        self.X = np.split(X, cuts)
        self.Z = np.split(Z, cuts)
        self.n, self.p = design.n, design.X.shape[1]


def _psi_layout(block):
    """The free (row, col) entries of G, lower triangle, in lme4's theta order."""
    return [(int(r), int(c)) for r, c in block.positions]


def _G(psi, pos, q):
    G = np.zeros((q, q))
    for (r, c), v in zip(pos, psi):
        G[r, c] = G[c, r] = v
    return G


def _D(Z, pos):
    """The T x T matrices D_k of one group, G entries first, then I (sigma^2)."""
    out = []
    for r, c in pos:
        zz = np.outer(Z[:, r], Z[:, c])
        out.append(zz if r == c else zz + zz.T)
    out.append(np.eye(Z.shape[0]))
    return out


def _state(gr: _Groups, psi, pos, q, reml: bool):
    """GLS at psi: beta, C = (X'V^-1X)^-1, the criterion, and the per-group pieces."""
    G = _G(psi[:-1], pos, q)
    s2 = psi[-1]
    Winv, Ds, logdet = [], [], 0.0
    XWX = np.zeros((gr.p, gr.p))
    XWy = np.zeros(gr.p)
    for y, X, Z in zip(gr.y, gr.X, gr.Z):
        V = Z @ G @ Z.T + s2 * np.eye(len(y))
        L = np.linalg.cholesky(V)  # LinAlgError: V_j not positive definite
        logdet += 2.0 * np.sum(np.log(np.diag(L)))
        Li = np.linalg.inv(L)
        W = Li.T @ Li
        Winv.append(W)
        XWX += X.T @ W @ X
        XWy += X.T @ W @ y
    C = np.linalg.inv(XWX)
    beta = C @ XWy
    rWr = 0.0
    res = []
    for y, X, W in zip(gr.y, gr.X, Winv):
        r = y - X @ beta
        res.append(r)
        rWr += r @ W @ r
    crit = logdet + rWr + gr.n * math.log(2 * math.pi)
    if reml:
        crit += np.linalg.slogdet(XWX)[1] - gr.p * math.log(2 * math.pi)
    return beta, C, float(crit), Winv, res, G


def _variance_step(gr: _Groups, pos, Winv, res, C, reml: bool):
    """GLS of the residual cross-products on the D_k (step 2); returns the new psi."""
    k = len(pos) + 1
    info = np.zeros((k, k))
    rhs = np.zeros(k)
    for X, Z, W, r in zip(gr.X, gr.Z, Winv, res):
        D = _D(Z, pos)
        WD = [W @ d for d in D]
        Wr = W @ r
        for a in range(k):
            rhs[a] += Wr @ D[a] @ Wr
            for b in range(a, k):
                info[a, b] += np.sum(WD[a] * WD[b].T)
        if reml:
            WX = W @ X
            M = WX @ C @ WX.T  # V^-1 X C X' V^-1 (this group's diagonal block)
            for a in range(k):
                rhs[a] += np.sum(M * D[a])
    info = np.triu(info) + np.triu(info, 1).T
    return np.linalg.solve(info, rhs)


def _var_names(block, pos):
    g, cols = block.group, block.columns
    out = [names.var(g, cols[r]) if r == c else names.cov(g, cols[c], cols[r]) for r, c in pos]
    return out + [names.RESIDUAL_VAR]


def fit_igls(design: Design, reml: bool = False, level: float = 0.95, tol: float = 1e-10,
             maxiter: int = 500, label: str | None = None) -> Fit:
    """Fit by IGLS (``reml=False``, converges to ML) or RIGLS (``reml=True``, to REML).

    Parameters
    ----------
    design : Design
        Random-effects terms on one grouping factor (intercepts, slopes, correlated or not);
        no prior weights, known sds.
    reml : bool
        RIGLS (True) or IGLS.
    level : float
        Coverage of the Wald intervals.
    tol : float
        Converged when no variance parameter changes by more than ``tol`` relative to the
        largest one between two iterations.
    maxiter : int
    label : str, optional

    Returns
    -------
    Fit
        ``method="igls"`` or ``"rigls"``; criterion as lme4's (ML deviance or REML criterion);
        the fixed effects' covariance C = (X'V^-1 X)^-1; BLUPs b_j = G Z_j' V_j^-1 r_j with
        conditional variances G - G Z_j' V_j^-1 Z_j G; ``diagnostics["iterations"]`` the trace:
        per iteration the variance parameters (``var[g:T]``, ``cov[g:T1,T2]``,
        ``var[Residual]``), the fixed effects and the criterion at them.

    Raises
    ------
    NotYetSupportedError
        Several grouping factors, weights or known residual sds.
    """
    from ..record import GlsState

    what = "rigls" if reml else "igls"
    if not design.terms:
        raise NotYetSupportedError(f"method '{what}' needs a random-effects term such as '(1 | g)'")
    st = build_structure(design)
    if len(st.blocks) != 1:
        raise NotYetSupportedError(
            f"method '{what}' is implemented for one grouping factor; this model has "
            f"{len(st.blocks)} ({', '.join(b.group for b in st.blocks)})")
    if design.weights is not None or design.known_sd is not None:
        raise NotYetSupportedError(f"method '{what}' takes no prior weights or known residual sds")
    if design.n - design.p < 1:
        raise DataError(f"{design.p} fixed effects for {design.n} observations leave no "
                        "residual degrees of freedom")
    t0 = time.perf_counter()
    block = st.blocks[0]
    q = block.q
    pos = _psi_layout(block)
    gr = _Groups(design, block)
    vnames = _var_names(block, pos)
    fnames = list(design.fixed_names)
    # start: OLS (G = 0, sigma^2 the OLS residual variance)
    beta0 = np.linalg.lstsq(design.X, design.y_work, rcond=None)[0]
    r0 = design.y_work - design.X @ beta0
    psi = np.zeros(len(pos) + 1)
    psi[-1] = float(r0 @ r0) / design.n
    trace = []
    converged = False
    beta, C, crit, Winv, res, G = _state(gr, psi, pos, q, reml)
    for it in range(1, maxiter + 1):
        trace.append({"iteration": it - 1, "variance": dict(zip(vnames, psi.tolist())),
                      "beta": dict(zip(fnames, beta.tolist())), "criterion": crit})
        new = _variance_step(gr, pos, Winv, res, C, reml)
        step = new - psi
        for _ in range(30):  # halve the step while some V_j is not positive definite
            try:
                state = _state(gr, psi + step, pos, q, reml)
                break
            except np.linalg.LinAlgError:
                step = step / 2
        else:
            raise DataError(f"{what}: the variance step leaves the region where every V_j is "
                            "positive definite")
        psi = psi + step
        beta, C, crit, Winv, res, G = state
        if np.max(np.abs(step)) <= tol * max(np.max(np.abs(psi)), 1e-300):
            converged = True
            break
    trace.append({"iteration": len(trace), "variance": dict(zip(vnames, psi.tolist())),
                  "beta": dict(zip(fnames, beta.tolist())), "criterion": crit})
    if not converged:
        warnings.warn(f"{what} did not converge in {maxiter} iterations", IglsWarning,
                      stacklevel=2)
    s2 = float(psi[-1])
    eig = np.linalg.eigvalsh(G) if q else np.zeros(0)
    outside = bool(eig.size and eig.min() < -1e-12 * max(1.0, abs(eig).max()))
    if outside:
        warnings.warn(f"{what} converged to a random-effects covariance that is not positive "
                      "semidefinite (a negative variance, as MLwiN's unconstrained estimates); "
                      f"the bounded fit is method='{'reml' if reml else 'ml'}'", IglsWarning,
                      stacklevel=2)
    singular = bool(outside or np.any(np.diag(G) <= 1e-10 * s2))
    b, se, ci = wald_fixed_effects(fnames, beta, C, level)
    varcorr = block.varcorr_rows(G)
    varcorr.append({"grp": "Residual", "var1": None, "var2": None, "vcov": s2,
                    "sdcor": math.sqrt(s2), "sdcor_ci": None})
    bl = np.empty((block.nlevels, q))
    cv = np.empty((block.nlevels, q))
    for j, (Z, W, r) in enumerate(zip(gr.Z, Winv, res)):
        GZW = G @ Z.T @ W
        bl[j] = GZW @ r
        cv[j] = np.diag(G - GZW @ Z @ G)
    csd = np.sqrt(np.clip(cv, 0.0, None))
    ranef = [{"group": block.group, "term": t, "level": lev, "value": float(bl[j, k]),
              "cond_sd": float(csd[j, k])}
             for k, t in enumerate(block.columns) for j, lev in enumerate(block.levels)]
    theta = None
    if not outside:
        # lme4's theta: the Cholesky factor of G / sigma^2 at the free positions
        w, U = np.linalg.eigh(G / s2)
        Lam = np.linalg.cholesky(U @ np.diag(np.clip(w, 0, None)) @ U.T + 1e-300 * np.eye(q)) \
            if q else np.zeros((0, 0))
        theta = np.array([Lam[r, c] for r, c in pos])
    state = GlsState(vcov=C, estimator=what, variance=psi.copy(), theta=theta, iterations=trace)
    diagnostics = {"iterations": trace, "optimizer": {
        "method": f"{what.upper()} (Goldstein {'1989' if reml else '1986'})",
        "iterations": len(trace) - 1, "converged": converged, "message": None if converged
        else f"no convergence in {maxiter} iterations"},
        "seconds": time.perf_counter() - t0}
    if theta is not None:
        diagnostics["theta"] = theta.tolist()
    return build_fit(method=what, design=design, structure=st, beta=b, beta_se=se, beta_ci=ci,
                     sigma=math.sqrt(s2), varcorr=varcorr, ranef=ranef, converged=converged,
                     singular=singular, state=state, criterion=crit, diagnostics=diagnostics,
                     label=label)


__all__ = ["fit_igls", "IglsWarning"]
