"""REML on the variance scale for one grouping factor: information matrices and NOBOUND fits.

Parameters psi = (vech(G), sigma^2): the variances and covariances of the random effects and the
residual variance, as MLwiN and SAS PROC MIXED report them.  Two uses:

* standard errors of the variance components from the expected (Fisher) information of the
  REML likelihood, as MLwiN's RIGLS reports them, or from the observed information;
* fits that do not hold G positive semidefinite (MLwiN; SAS's NOBOUND): only each group's
  V_j = Z_j G Z_j' + sigma^2 I must stay positive definite, so a variance estimate may go
  negative.  Fisher scoring (the algorithm behind IGLS/RIGLS) from the bounded REML fit.

Everything is per group and q-dimensional.  With Z_j = U_j D_j W_j' (from the eigenvectors of
Z_j'Z_j), V_j acts as sigma^2 on the complement of U_j and as M_j = sigma^2 I + D W'GW D on U_j,
so V_j^-k = sigma^-2k (I - U U') + U M_j^-k U'; derivatives of V_j are F_a = D W' E_a W D on
U_j (for an entry of G) and the identity (for sigma^2).  Nothing of size n_j x n_j is formed.
"""

from __future__ import annotations

import math

import numpy as np

from .. import names
from ..errors import NotYetSupportedError, WorkbenchError
from ..structure import build_structure


class VarianceScaleModel:
    """Per-group sufficient statistics of a one-factor design, rotated as in the module doc.

    Parameters
    ----------
    design : Design
        With exactly one grouping factor (all its terms are merged into one block; G is the
        full q x q covariance of that block, correlated or not as the formula says) and an
        estimated residual variance.
    """

    def __init__(self, design):
        st = build_structure(design)
        if len(st.blocks) != 1:
            raise NotYetSupportedError(
                "variance-scale REML (nobound fits, variance-component standard errors) is "
                "implemented for one grouping factor"
            )
        if design.known_sd is not None:
            raise NotYetSupportedError("variance-scale REML with known residual sds is not implemented")
        if design.weights is not None or design.offset is not None:
            raise NotYetSupportedError("variance-scale REML with prior weights or an offset is "
                                       "not implemented")
        blk = st.blocks[0]
        self.structure = st
        self.block = blk
        self.design = design
        q, J = blk.q, blk.nlevels
        self.q, self.J, self.n, self.p = q, J, design.n, design.p
        # free entries of G: those the formula lets be non-zero (a term's lower triangle)
        self.pos = [(r, c) for (r, c) in blk.positions]
        X, y, Z, codes = design.X, design.y, blk.Z, blk.codes
        H = np.moveaxis(blk.cross(Z, Z, symmetric=True), -1, 0)  # (J, q, q)
        ZX = np.moveaxis(blk.cross(Z, X), -1, 0)  # (J, q, p)
        Zy = np.moveaxis(blk.cross(Z, y[:, None])[:, 0], -1, 0)  # (J, q)
        ev, W = np.linalg.eigh(H)
        tol = ev.max(axis=1, keepdims=True) * 1e-10
        D = np.sqrt(np.where(ev > tol, ev, 0.0))
        Dinv = np.where(D > 0, 1.0 / np.where(D > 0, D, 1.0), 0.0)
        Wt = np.swapaxes(W, 1, 2)
        self.W, self.D = W, D
        self.UX = Dinv[:, :, None] * (Wt @ ZX)  # (J, q, p)
        self.Uy = Dinv * np.einsum("jab,jb->ja", Wt, Zy)  # (J, q)
        self.n_j = np.bincount(codes, minlength=J).astype(float)
        self.XX, self.Xy, self.yy = X.T @ X, X.T @ y, float(y @ y)
        # rank of each Z_j: directions with D = 0 do not exist in U_j
        self.rank = (D > 0).sum(axis=1).astype(float)
        # derivatives of V_j on U_j, one per free entry of G
        self.F = []
        for r, c in self.pos:
            E = np.zeros((q, q))
            E[r, c] = E[c, r] = 1.0
            self.F.append(D[:, :, None] * (Wt @ E @ W) * D[:, None, :])
        self.names = self._names()

    # ------------------------------------------------------------------ parameters
    def _names(self) -> list[str]:
        g, cols = self.block.group, self.block.columns
        out = []
        for r, c in self.pos:
            out.append(names.var(g, cols[r]) if r == c else names.cov(g, cols[c], cols[r]))
        return out + [names.RESIDUAL_VAR]

    def unpack(self, psi: np.ndarray) -> tuple[np.ndarray, float]:
        G = np.zeros((self.q, self.q))
        for v, (r, c) in zip(psi[:-1], self.pos):
            G[r, c] = G[c, r] = v
        return G, float(psi[-1])

    def pack(self, G: np.ndarray, s2: float) -> np.ndarray:
        return np.array([G[r, c] for r, c in self.pos] + [s2])

    def _M(self, psi):
        G, s2 = self.unpack(psi)
        Wt = np.swapaxes(self.W, 1, 2)
        core = Wt @ G @ self.W
        M = self.D[:, :, None] * core * self.D[:, None, :] + s2 * np.eye(self.q)
        return M, s2

    def feasible(self, psi: np.ndarray) -> bool:
        """Every V_j positive definite (sigma^2 > 0 and every M_j positive definite)."""
        M, s2 = self._M(psi)
        if not s2 > 0:
            return False
        return bool(np.all(np.linalg.eigvalsh(M)[:, 0] > 0))

    # ------------------------------------------------------------------ likelihood
    def _pieces(self, psi):
        M, s2 = self._M(psi)
        Minv = np.linalg.inv(M)
        UX, Uy = self.UX, self.Uy
        XUUX = np.einsum("jap,jaq->pq", UX, UX)
        XUUy = np.einsum("jap,ja->p", UX, Uy)
        A = (self.XX - XUUX) / s2 + np.einsum("jap,jab,jbq->pq", UX, Minv, UX)
        b = (self.Xy - XUUy) / s2 + np.einsum("jap,jab,jb->p", UX, Minv, Uy)
        beta = np.linalg.solve(A, b)
        Ur = Uy - UX @ beta
        rr = self.yy - 2 * beta @ self.Xy + beta @ self.XX @ beta
        rUUr = float(np.einsum("ja,ja->", Ur, Ur))
        return M, Minv, s2, A, beta, Ur, rr, rUUr

    def criterion(self, psi: np.ndarray) -> float:
        """-2 x REML log-likelihood (lme4's REML criterion at the same point); inf if infeasible."""
        psi = np.asarray(psi, dtype=float)
        if not self.feasible(psi):
            return math.inf
        M, Minv, s2, A, beta, Ur, rr, rUUr = self._pieces(psi)
        ldV = float(((self.n_j - self.q) * math.log(s2)).sum() + np.linalg.slogdet(M)[1].sum())
        quad = (rr - rUUr) / s2 + float(np.einsum("ja,jab,jb->", Ur, Minv, Ur))
        ldA = np.linalg.slogdet(A)[1]
        return ldV + ldA + quad + (self.n - self.p) * math.log(2 * math.pi)

    def score_information(self, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """REML score and expected information at psi, and the GLS fixed effects.

        score_a = -1/2 tr(P V_a) + 1/2 r' V^-1 V_a V^-1 r;  I_ab = 1/2 tr(P V_a P V_b),
        P = V^-1 - V^-1 X (X' V^-1 X)^-1 X' V^-1.
        """
        M, Minv, s2, A, beta, Ur, rr, rUUr = self._pieces(np.asarray(psi, dtype=float))
        Ainv = np.linalg.inv(A)
        UX = self.UX
        nq = self.n_j - self.q
        # per-parameter "sandwich" matrices on U: V^-1 V_a V^-1 -> S_a (J, q, q) plus a
        # complement part c_a / s2^2 on the U-complement (only for sigma^2).
        S = [Minv @ F @ Minv for F in self.F] + [Minv @ Minv]
        comp = [0.0] * len(self.F) + [1.0 / s2**2]
        Fs = self.F + [np.broadcast_to(np.eye(self.q), M.shape)]
        m = len(S)
        trVa = np.array([np.einsum("jab,jba->", Minv, F) for F in self.F] +
                        [float((nq / s2).sum() + np.trace(Minv, axis1=1, axis2=2).sum())])
        XVaVX = []  # X' V^-1 V_a V^-1 X
        XUUX = np.einsum("jap,jaq->pq", UX, UX)
        for Sa, ca in zip(S, comp):
            XVaVX.append(np.einsum("jap,jab,jbq->pq", UX, Sa, UX) + ca * (self.XX - XUUX))
        rVaVr = np.array([float(np.einsum("ja,jab,jb->", Ur, Sa, Ur)) + ca * (rr - rUUr)
                          for Sa, ca in zip(S, comp)])
        trPVa = trVa - np.array([np.trace(Ainv @ B) for B in XVaVX])
        score = -0.5 * trPVa + 0.5 * rVaVr
        info = np.zeros((m, m))
        for a in range(m):
            for b in range(a, m):
                # tr(V^-1 V_a V^-1 V_b)
                t1 = float(np.einsum("jab,jba->", S[a], Fs[b]))
                if a == m - 1 and b == m - 1:
                    t1 += float((nq / s2**2).sum())
                # X' V^-1 V_a V^-1 V_b V^-1 X
                XabX = np.einsum("jap,jab,jbc,jcq->pq", UX, S[a], Fs[b], Minv @ UX, optimize=True)
                if a == m - 1 and b == m - 1:
                    XabX = XabX + (self.XX - XUUX) / s2**3
                t2 = np.trace(Ainv @ XabX)
                t3 = np.trace(Ainv @ XVaVX[a] @ Ainv @ XVaVX[b])
                info[a, b] = info[b, a] = 0.5 * (t1 - 2 * t2 + t3)
        return score, info, beta

    def observed_information(self, psi: np.ndarray, h: float = 1e-5) -> np.ndarray:
        """Observed information: minus the Hessian of the REML log-likelihood (central
        differences of the analytic score)."""
        psi = np.asarray(psi, dtype=float)
        m = psi.size
        H = np.zeros((m, m))
        for a in range(m):
            step = h * max(1.0, abs(psi[a]))
            e = np.zeros(m)
            e[a] = step
            sp_, _, _ = self.score_information(psi + e)
            sm_, _, _ = self.score_information(psi - e)
            H[:, a] = -(sp_ - sm_) / (2 * step)
        return 0.5 * (H + H.T)

    # ------------------------------------------------------------------ estimation
    def fisher_scoring(self, psi0: np.ndarray, tol: float = 1e-10, maxiter: int = 200):
        """Maximise the REML likelihood over feasible psi (G need not be PSD).

        Returns
        -------
        psi, criterion, iterations, converged
        """
        psi = np.asarray(psi0, dtype=float)
        f = self.criterion(psi)
        if not math.isfinite(f):
            raise WorkbenchError("the starting variance parameters give a non-positive-definite V")
        for it in range(1, maxiter + 1):
            score, info, _ = self.score_information(psi)
            try:
                step = np.linalg.solve(info, score)
            except np.linalg.LinAlgError:
                step = np.linalg.lstsq(info, score, rcond=None)[0]
            t = 1.0
            while True:
                cand = psi + t * step
                fc = self.criterion(cand)
                if fc <= f + 1e-12 * abs(f):
                    break
                t /= 2
                if t < 1e-10:
                    return psi, f, it, bool(np.max(np.abs(step)) < 1e-6 * (1 + np.abs(psi).max()))
            done = np.max(np.abs(cand - psi)) <= tol * (1 + np.abs(psi).max()) or abs(f - fc) < 1e-13 * abs(f)
            psi, f = cand, fc
            if done:
                return psi, f, it, True
        return psi, f, maxiter, False


def variance_parameters(fit, information: str = "expected") -> dict:
    """Variance-scale estimates and standard errors of a one-factor REML/ML fit.

    Parameters
    ----------
    fit : Fit
    information : {"expected", "observed"}

    Returns
    -------
    dict
        ``{name: {"estimate": float, "se": float}}`` with names ``var[g:TERM]``,
        ``cov[g:TERM1,TERM2]``, ``var[Residual]``.  The information is that of the REML
        likelihood (ML fits: of the REML likelihood too, as MLwiN's RIGLS).
    """
    state = fit.reml_state("variance-scale standard errors")
    model = state.varscale or VarianceScaleModel(fit.design)
    if state.psi is not None:
        psi = np.asarray(state.psi, dtype=float)
    else:
        lam = model.block.lam(state.theta)
        s2 = fit.sigma**2
        psi = model.pack(s2 * lam @ lam.T, s2)
    return variance_se(model, psi, information)


def variance_se(model: VarianceScaleModel, psi: np.ndarray, information: str = "expected") -> dict:
    """``{name: {"estimate", "se"}}`` at variance parameters psi, the SEs from the inverse of
    the expected or observed REML information (see :func:`variance_parameters`)."""
    if information not in ("expected", "observed"):
        raise WorkbenchError(f"information must be 'expected' or 'observed', not '{information}'")
    if information == "expected":
        _, info, _ = model.score_information(psi)
    else:
        info = model.observed_information(psi)
    try:
        cov = np.linalg.inv(info)
        se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    except np.linalg.LinAlgError:
        se = np.full(psi.size, np.nan)
    return {k: {"estimate": float(v), "se": float(s)} for k, v, s in zip(model.names, psi, se)}


def fit_from_psi(model: VarianceScaleModel, psi: np.ndarray, label: str | None = None,
                 level: float = 0.95, *, converged: bool = True, diagnostics: dict | None = None,
                 optimizer=None, var_params: dict | None = None):
    """A REML :class:`~workbench.record.Fit` at variance parameters psi (G may be indefinite).

    Variances below zero get ``sdcor`` NaN (there is no sd), as do correlations involving them;
    ``singular`` is True when G is not positive definite.  BLUPs are G Z_j' V_j^-1 r_j; their
    conditional sds are those of G - G Z_j' V_j^-1 Z_j G where that is non-negative.  The
    keyword arguments are the rest of the record (optimizer verdict and record, variance-scale
    SEs).  The state has no theta or factored system (psi may lie outside lme4's space).
    """
    from ..record import RemlState, build_fit, wald_fixed_effects

    psi = np.asarray(psi, dtype=float)
    value = model.criterion(psi)
    M, Minv, s2, A, beta, Ur, rr, rUUr = model._pieces(psi)
    G, _ = model.unpack(psi)
    design, blk = model.design, model.block
    vcov = np.linalg.inv(A)
    varcorr = blk.varcorr_rows(G)
    varcorr.append({"grp": "Residual", "var1": None, "var2": None, "vcov": float(s2),
                    "sdcor": math.sqrt(s2), "sdcor_ci": None})
    # b_j = G W D M^-1 U'r ; Var(b_j | y) = G - G W D M^-1 D W' G
    WD = model.W * model.D[:, None, :]
    GWD = G @ WD  # (J, q, q)
    b = np.einsum("jab,jbc,jc->ja", GWD, Minv, Ur)
    cv = G - GWD @ Minv @ np.swapaxes(GWD, 1, 2)
    dv = np.diagonal(cv, axis1=1, axis2=2)
    csd = np.where(dv >= 0, np.sqrt(np.abs(dv)), np.nan)
    ranef = [{"group": blk.group, "term": term, "level": lev, "value": float(v), "cond_sd": float(s)}
             for k, term in enumerate(blk.columns)
             for lev, v, s in zip(blk.levels, b[:, k], csd[:, k])]
    beta_d, se_d, ci_d = wald_fixed_effects(design.fixed_names, beta, vcov, level)
    state = RemlState(vcov=vcov, reml=True, optimizer=optimizer, varscale=model, psi=psi,
                      var_params=var_params)
    return build_fit(method="reml", design=design, structure=model.structure,
                     criterion=float(value), beta=beta_d, beta_se=se_d, beta_ci=ci_d,
                     sigma=math.sqrt(s2), varcorr=varcorr, ranef=ranef, converged=converged,
                     singular=bool(np.linalg.eigvalsh(G)[0] <= 0), diagnostics=diagnostics,
                     interval="wald", label=label, state=state)
