"""Minimise the profiled criterion over theta, and keep the optimizer's record.

Bounded quasi-Newton (L-BFGS-B) with finite-difference gradients is fast per step but wastes
evaluations on noisy gradients and can stall on the boundary, where a variance goes to zero or a
correlation to +-1.  So the search has three stages, each recorded:

1. from lme4's start (1 on lambda's diagonal, 0 off it): L-BFGS-B on the analytic gradient where
   there is one (one grouping factor), otherwise Powell's COBYQA (a derivative-free
   trust-region method of the BOBYQA family that lme4 uses), honouring the bounds;
2. when a diagonal entry ends near zero, the fit with it pinned at exactly zero is tried (a
   singular fit has its optimum on the boundary), and the criterion is probed along that entry
   (lambda matters only through lambda lambda', unchanged when a column of lambda changes sign,
   so a zero diagonal, alone in its column, is a zero-gradient point, and the profiled
   criterion is not convex: a boundary point can be a local minimum and no more): any better
   point found starts a new
   search (from the canonical theta of that covariance: on a boundary face many thetas give
   one G);
3. the projected gradient is checked; if it is not small, an L-BFGS-B polish runs from the best
   point (boundary entries held at zero).

The optimum is the best point seen; nothing falls back silently: every stage's outcome is in
the record.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, minimize


@dataclass
class OptimizerRecord:
    """What the optimizer did.

    Attributes
    ----------
    method : str
        The stages run, e.g. ``"L-BFGS-B+COBYQA"``.
    evaluations : int
        Criterion evaluations over all stages.
    converged : bool
        True when the final stage reported success and the projected gradient is small.
    message : str
    stages : list of dict
        Per stage: name, criterion reached, evaluations, success.
    """

    method: str
    evaluations: int
    converged: bool
    message: str
    stages: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "evaluations": self.evaluations,
            "converged": self.converged,
            "message": self.message,
            "stages": self.stages,
        }


class _Counted:
    """Wrap a criterion (and optionally a value-and-gradient objective) to count evaluations
    and remember the best point."""

    def __init__(self, f, objective=None):
        self.f = f
        self.objective = objective
        self.n = 0
        self.best_x = None
        self.best_f = np.inf

    def _record(self, x, v):
        self.n += 1
        if v < self.best_f:
            self.best_f, self.best_x = v, np.array(x, dtype=float)

    def __call__(self, x):
        v = self.f(x)
        self._record(x, v)
        return v

    def value_and_grad(self, x):
        v, g = self.objective(x)
        self._record(x, v)
        return v, g


def _projected_gradient(f, x, lower, h=1e-6, objective=None):
    """Gradient projected on the feasible directions at the bounds (analytic when an objective
    is given, central differences otherwise)."""
    if objective is not None:
        g = np.array(objective(x)[1], dtype=float)
        at_bound = (x <= lower) & (g > 0)
        g[at_bound] = 0.0  # pushing against the bound: not a descent direction
        return g
    g = np.zeros_like(x)
    fx = f(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        if x[i] - h < lower[i]:
            g[i] = (f(x + e) - fx) / h
            if g[i] > 0:
                g[i] = 0.0
        else:
            g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def optimize_theta(
    criterion,
    theta0: np.ndarray,
    lower: np.ndarray,
    diagonal: np.ndarray,
    upper: np.ndarray | None = None,
    objective=None,
    polish: bool = True,
    boundary_tol: float = 1e-4,
    gtol: float = 1e-3,
    radius: float = 0.2,
    canonical=None,
    confirm: bool = False,
) -> tuple[np.ndarray, float, OptimizerRecord]:
    """Find theta minimising ``criterion``.

    Parameters
    ----------
    criterion : callable
        ``theta -> float`` (see :func:`workbench.reml.criterion.make_criterion`).
    theta0, lower : ndarray
        Start and lower bounds (0 for diagonal entries of lambda, -inf otherwise).
    diagonal : ndarray of bool
        Which entries are diagonal (candidates for the zero boundary).
    upper : ndarray, optional
    objective : callable, optional
        ``theta -> (criterion, gradient)`` with an analytic gradient (one grouping factor,
        :func:`workbench.reml.criterion.make_objective`).  When given, the local searches are
        L-BFGS-B on it instead of COBYQA.
    polish : bool
        Run the L-BFGS-B polish stage when the gradient check fails.
    boundary_tol : float
        Diagonal entries below this are tried at exactly zero.
    gtol : float
        The polish runs when the projected gradient (criterion units per unit of theta) exceeds
        ``gtol * sqrt(max(1, |criterion|))`` after the first stages (finite-difference
        gradients lose precision as the criterion grows); ten times that bound is the
        convergence test.
    radius : float
        Initial trust-region radius of the derivative-free search (smaller for a good start).
    canonical : callable, optional
        ``theta -> theta`` giving the same covariance in canonical form (lambda = Cholesky factor
        of lambda lambda'); on a boundary face many thetas give one covariance, and probing
        from the canonical one explores the directions that change it.
    confirm : bool
        Also confirm a gradient-searched boundary fit by a derivative-free search from lme4's
        start.  Off by default: with the canonical probe, ``benchmarks/lme4_crosscheck.py``
        found no design (350 drawn) where it changed the optimum, and it costs ~30 ms per
        singular fit, which simulation studies with many singular fits feel.

    Returns
    -------
    theta : ndarray
    value : float
    record : OptimizerRecord
    """
    f = _Counted(criterion, objective)
    lower = np.asarray(lower, dtype=float)
    upper = np.full_like(lower, np.inf) if upper is None else np.asarray(upper, dtype=float)
    stages = []
    local_name = "L-BFGS-B" if objective is not None else "COBYQA"
    methods = [local_name]

    def pinned_bounds(fixed_zero):
        lo, hi = lower.copy(), upper.copy()
        for i in fixed_zero:
            lo[i] = hi[i] = 0.0
        return lo, hi

    def lbfgsb(x0, fixed_zero=(), analytic=objective is not None):
        lo, hi = pinned_bounds(fixed_zero)
        x0 = np.clip(x0, lo, hi)
        n0 = f.n
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = minimize(
                f.value_and_grad if analytic else f, x0, jac=True if analytic else None,
                method="L-BFGS-B", bounds=Bounds(lo, hi),
                options={"ftol": 1e-13, "gtol": 1e-6, "maxiter": 2000, "maxls": 40},
            )
        return res, f.n - n0

    def cobyqa(x0, fixed_zero=(), radius=0.2):
        lo, hi = pinned_bounds(fixed_zero)
        x0 = np.clip(x0, lo, hi)
        n0 = f.n
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = minimize(
                f, x0, method="COBYQA", bounds=Bounds(lo, hi),
                options={"initial_tr_radius": radius, "final_tr_radius": 1e-6,
                         "maxfev": 500 * x0.size},
            )
        return res, f.n - n0

    def local(x0, fixed_zero=(), radius=0.2):
        if objective is not None:
            return lbfgsb(x0, fixed_zero)
        return cobyqa(x0, fixed_zero, radius)

    res, nev = local(np.asarray(theta0, dtype=float), radius=radius)
    stages.append({"stage": local_name, "criterion": float(res.fun), "evaluations": nev,
                   "success": bool(res.success), "message": str(res.message)})
    success = bool(res.success)

    near = [int(i) for i in np.flatnonzero(diagonal) if f.best_x[i] < boundary_tol]
    if near:
        # (a) the optimum exactly on the boundary, with the other entries re-optimised
        x0 = f.best_x.copy()
        x0[near] = 0.0
        before = f.best_f
        res_b, nev = local(x0, fixed_zero=near, radius=0.05)
        stages.append({"stage": f"boundary {near}", "criterion": float(res_b.fun),
                       "evaluations": nev, "success": bool(res_b.success),
                       "improved": bool(f.best_f < before)})
        # (b) the boundary point can be a stationary point that is no minimum (the criterion is
        # even in a column of lambda, so at a zero diagonal alone in its column the gradient is
        # exactly zero), or a local minimum of the boundary face only.  Probe along each such
        # entry from the canonical theta, and search again from any better point found, until
        # the boundary holds (at most three rounds).
        for _ in range(3):
            before = f.best_f
            n0 = f.n
            zero = [int(i) for i in np.flatnonzero(diagonal) if f.best_x[i] < boundary_tol]
            inside = [i for i in np.flatnonzero(diagonal) if i not in zero]
            scale = max(float(np.mean(f.best_x[inside])) if inside else 1.0, 0.2)
            base = f.best_x.copy() if canonical is None else canonical(f.best_x.copy())
            zero = [i for i in zero if base[i] < boundary_tol] or zero
            for i in zero:
                for h in (0.01, 0.05, 0.2, 0.5, 1.0, 2.0):
                    x = base.copy()
                    x[i] = h * scale
                    f(x)
            if not f.best_f < before - 1e-10 * max(1.0, abs(before)):
                stages.append({"stage": "boundary probe", "criterion": float(f.best_f),
                               "evaluations": f.n - n0, "improved": False})
                break
            res_i, nev = local(f.best_x.copy(), radius=0.05 * scale)
            stages.append({"stage": "boundary probe + restart", "criterion": float(f.best_f),
                           "evaluations": f.n - n0, "success": bool(res_i.success),
                           "improved": True})
            success = bool(res_i.success)
        # (c) after a gradient search, confirm a boundary fit by a derivative-free search from
        # lme4's start (BOBYQA's way), which does not stop at zero-gradient points.
        if confirm and objective is not None and any(f.best_x[i] < boundary_tol
                                                      for i in np.flatnonzero(diagonal)):
            before = f.best_f
            res_c, nev = cobyqa(np.asarray(theta0, dtype=float), radius=radius)
            improved = f.best_f < before - 1e-10 * max(1.0, abs(before))
            stages.append({"stage": "COBYQA check", "criterion": float(res_c.fun),
                           "evaluations": nev, "success": bool(res_c.success),
                           "improved": bool(improved)})
            if improved:
                res_p, nev = local(f.best_x.copy())
                stages.append({"stage": "L-BFGS-B from COBYQA", "criterion": float(f.best_f),
                               "evaluations": nev, "success": bool(res_p.success)})
        methods.append("boundary")

    grad = _projected_gradient(f, f.best_x, lower, objective=objective)
    gmax = float(np.max(np.abs(grad))) if grad.size else 0.0
    gscale = gtol * max(1.0, abs(f.best_f)) ** 0.5
    if polish and f.best_x.size and gmax > gscale:
        before = f.best_f
        pinned = [i for i in range(f.best_x.size) if diagonal[i] and f.best_x[i] == 0.0]
        res_p, nev = lbfgsb(f.best_x.copy(), fixed_zero=pinned)
        stages.append({"stage": "L-BFGS-B polish", "criterion": float(res_p.fun),
                       "evaluations": nev, "success": bool(res_p.success),
                       "improved": bool(f.best_f < before - 1e-12)})
        methods.append("L-BFGS-B polish")
        grad = _projected_gradient(f, f.best_x, lower, objective=objective)
        gmax = float(np.max(np.abs(grad)))

    theta = f.best_x
    # Snap diagonal entries that are numerically zero onto the boundary when that is no worse.
    tiny = [i for i in np.flatnonzero(diagonal) if 0 < theta[i] < 1e-7]
    if tiny:
        t2 = theta.copy()
        t2[tiny] = 0.0
        if f(t2) <= f.best_f + 1e-10 * max(1.0, abs(f.best_f)):
            theta = t2
    value = float(criterion(theta))
    converged = success and gmax < 10 * gscale
    record = OptimizerRecord(
        method="+".join(methods),
        evaluations=f.n,
        converged=bool(converged),
        message=f"max |projected gradient| = {gmax:.2e}",
        stages=stages,
    )
    return theta, value, record
