"""Profiles of the fixed effects.

Given theta, the penalised residual sum of squares is a quadratic in beta,
``r2(beta) = r2_min + ||R_X'(beta - beta_hat)||^2``, so holding beta_k at ``b`` and minimising over
the others adds ``(b - beta_hat_k)^2 / V_kk`` with ``V = (R_X R_X')^-1``; sigma is then profiled
out and theta re-optimised.  Nothing is refitted row-wise.
"""

from __future__ import annotations

import math

import numpy as np

from ... import names as pnames
from ..criterion import deviance
from .minimize import minimize_profile
from .shared import Profiler


class BetaProfiler(Profiler):
    """The profile of one fixed effect: theta re-optimised with beta_j held, sigma profiled."""

    def __init__(self, system, j: int, name: str, estimate: float, se: float, theta_hat, base):
        super().__init__(pnames.beta(name), estimate, base)
        self.system, self.j, self.theta_hat = system, j, np.asarray(theta_hat, dtype=float)
        self.h0 = se
        st = system.structure
        self.lower, self.diag = st.lower, st.diagonal
        self.known = system.design.known_sd is not None

    def _start(self):
        return self.theta_hat.copy()

    def _crit(self, theta, b):
        system = self.system
        try:
            f = system.factor(theta)
        except (np.linalg.LinAlgError, ValueError):
            return math.inf
        ldL2, ldRX2, r2 = system.logdets(f)
        beta, _ = system.solve(f)
        R = system.beta_precision_factor(f)
        Rinv = np.linalg.inv(R)
        vjj = float(Rinv[:, self.j] @ Rinv[:, self.j])
        # holding beta_j at b adds (b - beta_j)^2 / v_jj to the penalized RSS
        r2b = r2 + (b - beta[self.j]) ** 2 / vjj
        val = deviance(system, (ldL2, ldRX2, r2b), reml=False)
        return val if np.isfinite(val) else math.inf

    def _dev(self, v, x0):
        x, dev = minimize_profile(lambda th: self._crit(th, v), np.maximum(x0, self.lower),
                           self.lower, None, self.diag)
        return dev, x


__all__ = ["BetaProfiler"]
