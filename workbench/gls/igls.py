"""Iterated GLS (Goldstein 1986) and restricted iterated GLS (Goldstein 1989).

The marginal model is y_j ~ N(X_j beta, V_j) per group j of the outermost grouping factor
(the one every other factor is nested in), with V_j = sum_f Z_fj G_f Z_fj' + sigma^2 I =
sum_k psi_k D_kj, linear in the variance parameters psi (the free entries of each factor's G_f,
then sigma^2; D_kj = (z_a z_a') o S_f for a variance, (z_a z_b' + z_b z_a') o S_f for a
covariance, S_f the indicator of two rows sharing a level of factor f; I for sigma^2).  IGLS alternates two GLS steps:

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


def _outer_block(st) -> int:
    """The factor every other one nests in (each of their levels inside one of its levels),
    the one with most levels if several do; the groups whose V_j are blocks of V."""
    fits = []
    for o, ob in enumerate(st.blocks):
        ok = True
        for b in st.blocks:
            pairs = np.unique(np.column_stack([b.codes, ob.codes]), axis=0)
            if pairs.shape[0] != np.unique(b.codes).size:
                ok = False
                break
        if ok:
            fits.append(o)
    if not fits:
        raise NotYetSupportedError(
            "iterated GLS needs nested grouping factors (one factor in which every other is "
            f"nested); {', '.join(b.group for b in st.blocks)} are crossed")
    return max(fits, key=lambda o: st.blocks[o].nlevels)


class _Groups:
    """The rows of each outer group: y_j, X_j, each factor's Z and level codes, and the D_kj."""

    def __init__(self, design: Design, st, outer: int, layout):
        codes = st.blocks[outer].codes
        order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes, minlength=st.blocks[outer].nlevels)
        cuts = np.cumsum(counts)[:-1]

        def split(a):
            return np.split(a[order], cuts)

        self.y = split(design.y_work)
        self.X = split(design.X)
        self.Z = [split(b.Z) for b in st.blocks]          # [block][group]
        self.codes = [split(b.codes) for b in st.blocks]  # [block][group]
        self.n, self.p = design.n, design.X.shape[1]
        self.D = [self._D(j, layout) for j in range(len(self.y))]

    def _D(self, j, layout):
        """The T x T matrices D_k of group j: each factor's G entries, then I (sigma^2)."""
        out = []
        for f, pos in layout:
            Z, c = self.Z[f][j], self.codes[f][j]
            same = c[:, None] == c[None, :]
            for r, cc in pos:
                zz = np.outer(Z[:, r], Z[:, cc]) * same
                out.append(zz if r == cc else zz + zz.T)
        out.append(np.eye(len(self.y[j])))
        return out


def _Gs(psi, layout, st):
    """Each factor's G from psi."""
    Gs, k = [], 0
    for f, pos in layout:
        q = st.blocks[f].q
        G = np.zeros((q, q))
        for r, c in pos:
            G[r, c] = G[c, r] = psi[k]
            k += 1
        Gs.append(G)
    return Gs


def _state(gr: _Groups, psi, reml: bool):
    """GLS at psi: beta, C = (X'V^-1X)^-1, the criterion, V_j^-1 and the residuals."""
    Winv, logdet = [], 0.0
    XWX = np.zeros((gr.p, gr.p))
    XWy = np.zeros(gr.p)
    for y, X, D in zip(gr.y, gr.X, gr.D):
        V = sum(v * d for v, d in zip(psi, D))
        L = np.linalg.cholesky(V)  # LinAlgError: V_j not positive definite
        logdet += 2.0 * np.sum(np.log(np.diag(L)))
        Li = np.linalg.inv(L)
        W = Li.T @ Li
        Winv.append(W)
        XWX += X.T @ W @ X
        XWy += X.T @ W @ y
    C = np.linalg.inv(XWX)
    beta = C @ XWy
    res = [y - X @ beta for y, X in zip(gr.y, gr.X)]
    rWr = sum(float(r @ W @ r) for r, W in zip(res, Winv))
    crit = logdet + rWr + gr.n * math.log(2 * math.pi)
    if reml:
        crit += np.linalg.slogdet(XWX)[1] - gr.p * math.log(2 * math.pi)
    return beta, C, float(crit), Winv, res


def _variance_step(gr: _Groups, Winv, res, C, reml: bool):
    """GLS of the residual cross-products on the D_k (step 2); returns the new psi."""
    k = len(gr.D[0])
    info = np.zeros((k, k))
    rhs = np.zeros(k)
    for X, D, W, r in zip(gr.X, gr.D, Winv, res):
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


def _var_names(st, layout):
    out = []
    for f, pos in layout:
        blk = st.blocks[f]
        for r, c in pos:
            g = names.base_group(_term_label(blk, r))
            cols = blk.columns
            out.append(names.var(g, cols[r]) if r == c else names.cov(g, cols[c], cols[r]))
    return out + [names.RESIDUAL_VAR]


def _term_label(blk, col: int) -> str:
    for label, sl in blk.terms:
        if sl.start <= col < sl.stop:
            return label
    return blk.group


def fit_igls(design: Design, reml: bool = False, level: float = 0.95, tol: float = 1e-10,
             maxiter: int = 500, label: str | None = None) -> Fit:
    """Fit by IGLS (``reml=False``, converges to ML) or RIGLS (``reml=True``, to REML).

    Parameters
    ----------
    design : Design
        Random-effects terms (intercepts, slopes, correlated or not) on one grouping factor or
        on nested ones (every factor nested in one of them); no prior weights, known sds.
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
        Crossed grouping factors, weights or known residual sds.
    """
    from ..record import GlsState

    what = "rigls" if reml else "igls"
    if not design.terms:
        raise NotYetSupportedError(f"method '{what}' needs a random-effects term such as '(1 | g)'")
    if design.weights is not None or design.known_sd is not None:
        raise NotYetSupportedError(f"method '{what}' takes no prior weights or known residual sds")
    if design.n - design.p < 1:
        raise DataError(f"{design.p} fixed effects for {design.n} observations leave no "
                        "residual degrees of freedom")
    t0 = time.perf_counter()
    st = build_structure(design)
    layout = [(f, [(int(r), int(c)) for r, c in blk.positions]) for f, blk in enumerate(st.blocks)]
    gr = _Groups(design, st, _outer_block(st), layout)
    vnames = _var_names(st, layout)
    fnames = list(design.fixed_names)
    # start: OLS (G = 0, sigma^2 the OLS residual variance)
    beta0 = np.linalg.lstsq(design.X, design.y_work, rcond=None)[0]
    r0 = design.y_work - design.X @ beta0
    psi = np.zeros(len(vnames))
    psi[-1] = float(r0 @ r0) / design.n
    trace = []
    converged = False
    beta, C, crit, Winv, res = _state(gr, psi, reml)

    def record(i):
        trace.append({"iteration": i, "variance": dict(zip(vnames, psi.tolist())),
                      "beta": dict(zip(fnames, beta.tolist())), "criterion": crit})

    for it in range(maxiter):
        record(it)
        step = _variance_step(gr, Winv, res, C, reml) - psi
        for _ in range(30):  # halve the step while some V_j is not positive definite
            try:
                state = _state(gr, psi + step, reml)
                break
            except np.linalg.LinAlgError:
                step = step / 2
        else:
            raise DataError(f"{what}: the variance step leaves the region where every V_j is "
                            "positive definite")
        psi = psi + step
        beta, C, crit, Winv, res = state
        if np.max(np.abs(step)) <= tol * max(np.max(np.abs(psi)), 1e-300):
            converged = True
            break
    record(len(trace))
    if not converged:
        warnings.warn(f"{what} did not converge in {maxiter} iterations", IglsWarning,
                      stacklevel=2)
    s2 = float(psi[-1])
    Gs = _Gs(psi, layout, st)
    outside = False
    for G in Gs:
        eig = np.linalg.eigvalsh(G)
        outside |= bool(eig.min() < -1e-12 * max(1.0, abs(eig).max()))
    if outside:
        warnings.warn(f"{what} converged to a random-effects covariance that is not positive "
                      "semidefinite (a negative variance, as MLwiN's unconstrained estimates); "
                      f"the bounded fit is method='{'reml' if reml else 'ml'}'", IglsWarning,
                      stacklevel=2)
    singular = bool(outside or any(np.any(np.diag(G) <= 1e-10 * s2) for G in Gs))
    b, se, ci = wald_fixed_effects(fnames, beta, C, level)
    varcorr = [row for blk, G in zip(st.blocks, Gs) for row in blk.varcorr_rows(G)]
    varcorr.append({"grp": "Residual", "var1": None, "var2": None, "vcov": s2,
                    "sdcor": math.sqrt(s2), "sdcor_ci": None})
    ranef = _blups(gr, st, Gs, Winv, res)
    theta = None
    if not outside:
        # lme4's theta: the Cholesky factor of G / sigma^2 at each factor's free positions
        theta = np.zeros(st.ntheta)
        for (f, pos), G in zip(layout, Gs):
            q = G.shape[0]
            w, U = np.linalg.eigh(G / s2)
            Lam = np.linalg.cholesky(U @ np.diag(np.clip(w, 0, None)) @ U.T
                                     + 1e-300 * np.eye(q))
            theta[st.blocks[f].theta_index] = [Lam[r, c] for r, c in pos]
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


def _blups(gr: _Groups, st, Gs, Winv, res) -> list[dict]:
    """BLUPs G Z_l' V^-1 r and conditional sds sqrt(diag(G - G Z_l' V^-1 Z_l G)) per level l,
    in the engine's order (factor, term, level)."""
    ranef = []
    for f, (blk, G) in enumerate(zip(st.blocks, Gs)):
        bl = np.zeros((blk.nlevels, blk.q))
        cv = np.zeros((blk.nlevels, blk.q))
        for Z, c, W, r in zip(gr.Z[f], gr.codes[f], Winv, res):
            for lev in np.unique(c):
                Zl = Z * (c == lev)[:, None]
                GZW = G @ Zl.T @ W
                bl[lev] = GZW @ r
                cv[lev] = np.diag(G - GZW @ Zl @ G)
        csd = np.sqrt(np.clip(cv, 0.0, None))
        for k, term in enumerate(blk.columns):
            ranef.extend({"group": blk.group, "term": term, "level": lev,
                          "value": float(bl[j, k]), "cond_sd": float(csd[j, k])}
                         for j, lev in enumerate(blk.levels))
    return ranef


__all__ = ["fit_igls", "IglsWarning"]
