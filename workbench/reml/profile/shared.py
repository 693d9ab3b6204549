"""What every profile shares: the error, the ML refit, the walk and the limit search on zeta."""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np

from ...errors import ProfileError
from ...record import Fit

# Deviance reported for sigma-scale values that are no covariance matrix (correlations that do
# not fit together): large but finite, so that line searches back off instead of failing.
INFEASIBLE = 1e30


def single_threaded_blas():
    """Context limiting BLAS to one thread (threadpoolctl, when installed; else a no-op).

    The profile's many small factorisations run several times slower when BLAS threads
    compete for 2 cores.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def ml_fit(fit: Fit) -> Fit:
    """The ML fit of the same model (``fit`` itself when it already is one).

    Parameters
    ----------
    fit : Fit
        A REML or ML fit from :func:`workbench.fit`.

    Returns
    -------
    Fit
    """
    fit.reml_state("profiles", need_system=True, error=ProfileError)
    if fit.method == "ml":
        return fit
    from ..fit import fit_reml

    return fit_reml(fit.design, reml=False)


class Profiler:
    """The profile of one parameter: ``dev(v)`` minimised over the others, memoised."""

    lo = -math.inf
    hi = math.inf

    def __init__(self, name, estimate, base):
        self.name = name
        self.estimate = float(estimate)
        self.base = float(base)
        self.cache: dict[float, tuple[float, np.ndarray]] = {}
        self.new_min = None

    # subclasses: _start() -> x at the estimate; _dev(v, x0) -> (dev, x)
    def deviance(self, v: float) -> float:
        v = float(v)
        if v in self.cache:
            return self.cache[v][0]
        if self.cache:
            near = min(self.cache, key=lambda u: abs(u - v))
            x0 = self.cache[near][1]
        else:
            x0 = self._start()
        dev, x = self._dev(v, x0)
        self.cache[v] = (dev, x)
        return dev

    def zeta(self, v: float) -> float:
        dev = self.deviance(v)
        if not dev < 0.1 * INFEASIBLE:
            return math.copysign(math.inf, v - self.estimate)
        d = dev - self.base
        if d < -1e-6 * max(1.0, abs(self.base)):
            self.new_min = min(self.new_min or math.inf, self.base + d)
        return math.copysign(math.sqrt(max(d, 0.0)), v - self.estimate) if v != self.estimate else 0.0

    def walk(self, direction: int, zmax: float, dz: float, max_points: int = 80):
        """Profile points from the estimate outwards until |zeta| >= zmax or a bound.

        Returns
        -------
        points : list of (value, zeta)
        at_bound : bool
            True when the walk stopped on the parameter's bound before reaching ``zmax``.
        """
        v, z = self.estimate, 0.0
        pts = [(v, z)]
        bound = self.lo if direction < 0 else self.hi
        if v == bound:
            return pts, True
        h = self.h0
        for _ in range(max_points):
            vn = v + direction * h
            hit = (vn <= self.lo) if direction < 0 else (vn >= self.hi)
            if hit:
                vn = bound
            zn = self.zeta(vn)
            pts.append((vn, zn))
            if abs(zn) >= zmax:
                return pts, False
            if hit:
                return pts, True
            slope = abs(zn - z) / abs(vn - v)
            h_new = dz / slope if slope > 0 else 4.0 * h
            h = min(max(h_new, 0.5 * h), 4.0 * h)
            v, z = vn, zn
        return pts, False

    def limit(self, direction: int, cutoff: float, max_steps: int = 60) -> float:
        """The value where zeta = direction * cutoff (or the bound the profile reaches first).

        Secant steps from the estimate (zeta is close to linear), overshooting a little so
        that the target is bracketed, then false position (Illinois) inside the bracket.
        """
        target = direction * cutoff
        bound = self.lo if direction < 0 else self.hi
        v0, z0 = self.estimate, 0.0
        if v0 == bound:
            return float(bound)
        h = self.h0
        v1 = v0 + direction * h
        if (v1 - bound) * direction >= 0:
            v1 = bound
        z1 = self.zeta(v1)
        steps = 0
        while (z1 - target) * direction < 0:
            if v1 == bound:
                return float(bound)
            steps += 1
            if steps > max_steps:
                return math.nan
            dist = abs(v1 - v0)
            slope = (z1 - z0) / (v1 - v0)
            if slope * direction > 0:
                step = 1.03 * abs((target - z1) / slope)
                step = min(max(step, 0.02 * dist), 10.0 * dist)
            else:  # flat or turning: widen
                step = 2.0 * dist
            vn = v1 + direction * step
            if (vn - bound) * direction >= 0:
                vn = bound
            v0, z0, v1, z1 = v1, z1, vn, self.zeta(vn)
        return zeta_root(self.zeta, target, v0, z0, v1, z1)


def zeta_root(zeta, target, a, za, b, zb, ztol: float = 1e-6, max_iter: int = 60) -> float:
    """Solve zeta(v) = target in a bracket [a, b] by the Illinois false-position method.

    Stops when zeta is within ``ztol`` of the target (1e-6 on the zeta scale moves a limit by
    about 1e-6 standard errors) or the bracket is negligible.
    """
    fa, fb = za - target, zb - target
    if fb == 0:
        return float(b)
    c = b
    for _ in range(max_iter):
        if np.isfinite(fa) and np.isfinite(fb):
            c = b - fb * (b - a) / (fb - fa)
        else:  # an infeasible end (deviance inf): bisect
            c = 0.5 * (a + b)
        fc = zeta(c) - target
        if not np.isfinite(fc):
            b, fb = c, fc
            continue
        if abs(fc) < ztol or abs(b - a) < 1e-12 * max(abs(a), abs(b), 1e-12):
            return float(c)
        if fc * fb < 0:
            a, fa = b, fb
        else:
            fa *= 0.5
        b, fb = c, fc
    return float(c)


def warn_new_min(p: Profiler):
    if p.new_min is not None:
        warnings.warn(
            f"profiling {p.name} found a deviance {p.new_min:.6f} below the fit's "
            f"{p.base:.6f}: the fit had not reached its optimum",
            stacklevel=3,
        )


__all__ = ["ProfileError", "INFEASIBLE", "single_threaded_blas", "ml_fit", "Profiler", "zeta_root",
           "warn_new_min"]
