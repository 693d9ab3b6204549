"""Profiles of the variance components on lme4's sigma scale (sds, correlations, sigma)."""

from __future__ import annotations

import math

import numpy as np

from ... import names as pnames
from ..criterion import deviance_at
from .minimize import minimize_profile
from .shared import INFEASIBLE, Profiler


def _psd_chol(R: np.ndarray) -> np.ndarray | None:
    """Lower Cholesky factor of a correlation matrix that may be singular; None if indefinite."""
    q = R.shape[0]
    L = np.zeros_like(R)
    for j in range(q):
        d = R[j, j] - L[j, :j] @ L[j, :j]
        if d < -1e-10:
            return None
        d = math.sqrt(max(d, 0.0))
        L[j, j] = d
        for i in range(j + 1, q):
            if d > 0:
                L[i, j] = (R[i, j] - L[i, :j] @ L[j, :j]) / d
            else:
                if abs(R[i, j] - L[i, :j] @ L[j, :j]) > 1e-8:
                    return None
                L[i, j] = 0.0
    return L


class SigmaScale:
    """The sigma-scale parameters of a model (lme4's ``.sig01``, ..., ``.sigma``).

    Per random-effects term: its standard deviations, then its correlations (upper triangle,
    row by row), in the order of the fit's ``varcorr`` rows; then ``sigma`` unless residual
    sds are known.  Names are the tidy ones (``sd[g:x]``, ``cor[g:x,z]``, ``sigma``).

    Parameters
    ----------
    system : BlockedSystem
    """

    def __init__(self, system):
        self.system = system
        st = system.structure
        self.structure = st
        self.known = system.design.known_sd is not None
        names, kinds, terms = [], [], []
        for b, blk in enumerate(st.blocks):
            for label, sl in blk.terms:
                g = pnames.base_group(label)
                cols = blk.columns[sl]
                sd_idx = []
                for c in cols:
                    sd_idx.append(len(names))
                    names.append(pnames.sd(g, c))
                    kinds.append("sd")
                cor_idx = {}
                for i in range(len(cols)):
                    for j in range(i + 1, len(cols)):
                        cor_idx[(i, j)] = len(names)
                        names.append(pnames.cor(g, cols[i], cols[j]))
                        kinds.append("cor")
                terms.append((b, sl, np.asarray(sd_idx), cor_idx))
        if not self.known:
            names.append("sigma")
            kinds.append("sigma")
        self.names = names
        self.kinds = kinds
        self.terms = terms
        self.size = len(names)

    def sigma_of(self, s: np.ndarray) -> float:
        return 1.0 if self.known else float(s[-1])

    def to_theta(self, s: np.ndarray) -> np.ndarray | None:
        """theta for sigma-scale values ``s`` (None for an indefinite correlation matrix)."""
        sigma = self.sigma_of(s)
        lams = [np.zeros((blk.q, blk.q)) for blk in self.structure.blocks]
        for b, sl, sd_idx, cor_idx in self.terms:
            q = sd_idx.size
            R = np.eye(q)
            for (i, j), k in cor_idx.items():
                R[i, j] = R[j, i] = s[k]
            L = _psd_chol(R) if q > 1 else np.ones((1, 1))
            if L is None:
                return None
            lams[b][sl, sl] = (s[sd_idx] / sigma)[:, None] * L
        theta = np.empty(self.structure.ntheta)
        for blk, lam in zip(self.structure.blocks, lams):
            rows, cols = zip(*blk.positions)
            theta[blk.theta_index] = lam[list(rows), list(cols)]
        return theta

    def from_theta(self, theta: np.ndarray, sigma: float | None) -> np.ndarray:
        """Sigma-scale values at ``theta`` and residual sd ``sigma`` (ignored if known sds)."""
        sig = 1.0 if self.known else float(sigma)
        s = np.zeros(self.size)
        lams = self.structure.lambdas(theta)
        for b, sl, sd_idx, cor_idx in self.terms:
            lam = lams[b][sl, sl]
            G = lam @ lam.T
            sds = np.sqrt(np.clip(np.diag(G), 0.0, None))
            s[sd_idx] = sig * sds
            for (i, j), k in cor_idx.items():
                den = sds[i] * sds[j]
                s[k] = G[i, j] / den if den > 0 else 0.0
        if not self.known:
            s[-1] = sig
        return s

    def deviance(self, s: np.ndarray) -> float:
        """ML deviance (-2 log-likelihood) at sigma-scale values ``s``, beta profiled out."""
        theta = self.to_theta(s)
        if theta is None:
            return INFEASIBLE
        sigma = self.sigma_of(s)
        if sigma <= 0:
            return INFEASIBLE
        return deviance_at(self.system, theta, reml=False, sigma=None if self.known else sigma)


class VarianceProfiler(Profiler):
    """The profile of a standard deviation, a correlation or sigma (sigma-scale parameters)."""

    def __init__(self, ss: SigmaScale, k: int, s_hat: np.ndarray, base: float, nobs: int):
        super().__init__(ss.names[k], s_hat[k], base)
        self.ss, self.k, self.s_hat = ss, k, s_hat
        kinds = ss.kinds
        self.free = np.array([i for i in range(ss.size) if i != k], dtype=int)
        sig_hat = ss.sigma_of(s_hat)
        self.scale = np.array([sig_hat if kinds[i] == "sd" else 1.0 for i in self.free])
        self.lower = np.array([0.0 if kinds[i] == "sd" else -1.0 if kinds[i] == "cor" else -math.inf
                               for i in self.free])
        self.upper = np.array([1.0 if kinds[i] == "cor" else math.inf for i in self.free])
        self.zero_flags = np.array([kinds[i] == "sd" for i in self.free], dtype=bool)
        self.is_sigma = np.array([kinds[i] == "sigma" for i in self.free], dtype=bool)
        kind = kinds[k]
        if kind == "sd":
            self.lo = 0.0
            self.h0 = 0.2 * s_hat[k] if s_hat[k] > 0 else 0.05 * sig_hat
        elif kind == "cor":
            self.lo, self.hi = -1.0, 1.0
            self.h0 = 0.1
        else:
            self.lo = 0.0
            self.h0 = s_hat[k] / math.sqrt(2.0 * nobs)
        self.sig_hat = sig_hat

    def _to_s(self, v, x):
        s = self.s_hat.copy()
        s[self.k] = v
        vals = x * self.scale
        vals[self.is_sigma] = self.sig_hat * np.exp(x[self.is_sigma])
        s[self.free] = vals
        return s

    def _start(self):
        x = self.s_hat[self.free] / self.scale
        x[self.is_sigma] = np.log(self.s_hat[self.free][self.is_sigma] / self.sig_hat)
        return x

    def _dev(self, v, x0):
        fun = lambda x: self.ss.deviance(self._to_s(v, x))  # noqa: E731
        x0 = np.clip(x0, self.lower, self.upper)
        cors = np.array([self.ss.kinds[i] == "cor" for i in self.free], dtype=bool)
        for _ in range(40):  # correlations that no longer fit with v: shrink them towards 0
            if fun(x0) < 0.1 * INFEASIBLE or not cors.any():
                break
            x0 = np.where(cors, 0.7 * x0, x0)
        x, dev = minimize_profile(fun, x0, self.lower, self.upper, self.zero_flags)
        return dev, x


__all__ = ["SigmaScale", "VarianceProfiler"]
