"""Minimise the profiled criterion over theta, in stages that each return a typed record.

The stages follow lme4's split (``optwrap``, ``restart_edge``, ``check.boundary``, ``checkConv``)
and MixedModels.jl's ``OptSummary``:

1. **local search** (:func:`local_search`): L-BFGS-B on the analytic gradient when the caller
   passes one (:meth:`workbench.reml.blocked.BlockedSystem.gradient`); without it, Powell's
   COBYQA (a derivative-free trust-region method of the BOBYQA family that lme4 uses),
   honouring the bounds, or BOBYQA itself from NLopt when the caller asks (``search``: the
   fits with several large grouping factors);
2. **boundary** (:func:`boundary_search`): when a diagonal entry of lambda ends near zero, the
   fit with it pinned at zero is re-optimised, and the faces around the point are probed (see
   below); a better point found starts a new local search;
3. **polish** (:func:`polish`): L-BFGS-B from the best point when the gradient is not yet small;
4. **verdict** (:func:`verdict`): the optimality conditions at the final point.

Scale.  Every stage works on the scaled coordinate ``phi = theta / s``, with ``s`` for an entry
on row ``r`` of a block's lambda equal to ``1 / rms(Z[:, r])``: lambda = D^-1 lambda~ with
``D = diag(rms)``, so ``Z lambda = (Z D^-1) lambda~`` and phi is the theta of the model with
unit-scale random-effects columns.  A covariate multiplied by ``c`` gives the same phi, the
same search and the same model; all tolerances are on phi.  The criterion itself stays a
function of lme4's theta.

Boundary faces.  The criterion depends on lambda only through ``G = lambda lambda'``, which is
unchanged when a column of lambda changes sign.  At a zero diagonal ``lambda_jj`` the sign of
column ``j`` is therefore free: when the entries below it are not zero, the two signs are two
thetas of one G with opposite derivatives along ``lambda_jj``, so the bound ``theta_jj >= 0``
is no constraint there and the gradient must vanish in both directions (a correlation at +-1
with both sds non-zero lies on such a point).  When the column is zero below the diagonal the
criterion is even in ``lambda_jj`` and its derivative is zero: only a probe can tell a minimum.
A singular G also has many lambdas (columns ``j`` and ``j + 1`` can be rotated into each other
when ``lambda_jj = 0``); the probe looks from several of them: the point itself, its canonical
form (lambda = Cholesky factor of G), the rotation that moves the mass of column ``j + 1`` into
column ``j``, and the column sign flips of each.

Verdict.  As lme4's ``checkConv``: at the final point, the gradient on phi restricted to the
free coordinates (inside the bounds, or at a zero diagonal whose column sign is free), scaled
by the Cholesky factor of the Hessian there (``scgrad = R^-T g``, so ``|scgrad|^2 / 2`` is the
decrease a Newton step would still bring), must satisfy ``max min(|scgrad|, |g|) < gtol``;
entries pinned at a zero diagonal must have no descent (gradient >= 0 and the probe found no
better point).  Otherwise ``converged`` is False and the reason says which condition failed.
Stages that stopped early but were recovered by a later stage are kept in the record only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields

import numpy as np
from scipy.optimize import Bounds, minimize

from ..errors import NumericalError, SearchStalled


class OptimizerWarning(UserWarning):
    """The optimizer stopped at a point that does not meet the optimality conditions."""


@dataclass(frozen=True)
class Stage:
    """One stage of the search.

    Attributes
    ----------
    stage : str
        Its name: ``"L-BFGS-B"``, ``"COBYQA"``, ``"boundary [i, ...]"``, ``"boundary probe"``,
        ``"boundary probe + restart"``, ``"L-BFGS-B polish"``.
    criterion : float
        Best criterion after the stage.
    evaluations : int
        Criterion evaluations in the stage.
    success : bool
        The stage's own stopping report (a local search's ``success``; a probe is successful
        when it ran).
    improved : bool
        The stage lowered the best criterion.
    message : str
    """

    stage: str
    criterion: float
    evaluations: int
    success: bool
    improved: bool
    message: str = ""

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # flat: no deepcopy


@dataclass(frozen=True)
class Verdict:
    """The optimality check at the final point.

    Attributes
    ----------
    converged : bool
    max_gradient : float
        ``max min(|scgrad|, |g|)`` over the free coordinates (scaled theta).
    tolerance : float
    hessian_ok : bool
        The gradient was scaled by the Hessian on the free coordinates, which was positive
        definite (the Hessian is computed only when the raw gradient is not already small).
    boundary_ok : bool
        No descent off the boundary: pinned zero diagonals have gradient >= -tolerance and the
        probe found no better point.
    reason : str
        Empty when converged; otherwise a plain sentence saying what failed.
    """

    converged: bool
    max_gradient: float
    tolerance: float
    hessian_ok: bool
    boundary_ok: bool
    reason: str = ""

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # flat: no deepcopy


@dataclass(frozen=True)
class OptSummary:
    """The optimizer's record of a fit (MixedModels.jl's ``OptSummary``).

    Attributes
    ----------
    method : str
        The stages run, e.g. ``"COBYQA+boundary+L-BFGS-B polish"``.
    theta0, theta : tuple of float
        Start and optimum (lme4's theta).
    scale : tuple of float
        ``s`` of the scaled coordinate ``phi = theta / s``.
    criterion : float
    evaluations : int
        Criterion evaluations over all stages (the verdict's included).
    stages : tuple of Stage
    verdict : Verdict
    """

    method: str
    theta0: tuple
    theta: tuple
    scale: tuple
    criterion: float
    evaluations: int
    stages: tuple
    verdict: Verdict

    @property
    def converged(self) -> bool:
        return self.verdict.converged

    @property
    def message(self) -> str:
        v = self.verdict
        text = f"max |scaled gradient| = {v.max_gradient:.2e} (tolerance {v.tolerance:.0e})"
        return text if v.converged else f"{v.reason}; {text}"

    def to_dict(self) -> dict:
        """JSON form kept as ``fit.diagnostics["optimizer"]``."""
        return {
            "method": self.method,
            "evaluations": self.evaluations,
            "converged": self.converged,
            "message": self.message,
            "criterion": self.criterion,
            "theta0": list(self.theta0),
            "theta": list(self.theta),
            "scale": list(self.scale),
            "stages": [s.to_dict() for s in self.stages],
            "verdict": self.verdict.to_dict(),
        }


# ---------------------------------------------------------------------------------------------
# the problem on the scaled coordinate


class ScaledProblem:
    """The criterion on ``phi = theta / scale``: counts evaluations and keeps the best point.

    Parameters
    ----------
    criterion : callable
        ``theta -> float``.
    objective : callable or None
        ``theta -> (float, gradient)``.
    lower, upper, diagonal, scale : ndarray
        On theta (bounds 0 or +-inf are the same on phi).
    blocks : sequence, optional
        Objects with ``q``, ``positions`` and ``theta_index`` (the structure's factor blocks),
        needed for the boundary representations.
    """

    def __init__(self, criterion, objective, lower, upper, diagonal, scale, blocks=()):
        self.criterion = criterion
        self.objective = objective
        self.scale = np.asarray(scale, dtype=float)
        self.lower = np.asarray(lower, dtype=float) / self.scale
        self.upper = np.asarray(upper, dtype=float) / self.scale
        self.diagonal = np.asarray(diagonal, dtype=bool)
        self.blocks = tuple(blocks)
        self.n = 0
        self.best_x = None
        self.best_f = np.inf
        # phi -> (value, gradient or None): the stages and the verdict revisit points (the
        # search's last point, the snapped point), which are evaluated once
        self._cache: dict = {}

    def theta(self, phi) -> np.ndarray:
        return np.asarray(phi, dtype=float) * self.scale

    def phi(self, theta) -> np.ndarray:
        return np.asarray(theta, dtype=float) / self.scale

    def _record(self, x, v):
        self.n += 1
        if v < self.best_f:
            self.best_f, self.best_x = float(v), np.array(x, dtype=float)

    def __call__(self, phi) -> float:
        key = np.asarray(phi, dtype=float).tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            return hit[0]
        v = float(self.criterion(self.theta(phi)))
        self._record(phi, v)
        self._cache[key] = (v, None)
        return v

    def value_and_grad(self, phi):
        key = np.asarray(phi, dtype=float).tobytes()
        hit = self._cache.get(key)
        if hit is not None and hit[1] is not None:
            return hit[0], hit[1].copy()
        v, g = self.objective(self.theta(phi))
        g = np.asarray(g, dtype=float) * self.scale
        self._record(phi, v)
        self._cache[key] = (v, g)
        return v, g.copy()

    def gradient(self, phi, free=None) -> np.ndarray:
        """Gradient on phi: analytic, or central differences (one-sided at a lower bound)."""
        phi = np.asarray(phi, dtype=float)
        if self.objective is not None:
            return self.value_and_grad(phi)[1]
        g = np.zeros_like(phi)
        idx = range(phi.size) if free is None else free
        for i in idx:
            h = 1e-4 * max(1.0, abs(phi[i]))
            e = np.zeros_like(phi)
            e[i] = h
            if phi[i] - h < self.lower[i]:
                g[i] = (-3 * self(phi) + 4 * self(phi + e) - self(phi + 2 * e)) / (2 * h)
            else:
                g[i] = (self(phi + e) - self(phi - e)) / (2 * h)
        return g

    def hessian(self, phi, free) -> np.ndarray:
        """Hessian on the free coordinates by differences of the gradient (or of the criterion)."""
        phi = np.asarray(phi, dtype=float)
        k = len(free)
        H = np.zeros((k, k))
        hs = [(1e-4 if self.objective is not None else 1e-3) * max(1.0, abs(phi[i]))
              for i in free]
        if self.objective is not None:
            for a, i in enumerate(free):
                e = np.zeros_like(phi)
                e[i] = hs[a]
                gp = self.value_and_grad(phi + e)[1]
                if phi[i] - hs[a] >= self.lower[i]:
                    col = (gp - self.value_and_grad(phi - e)[1]) / (2 * hs[a])
                else:
                    col = (gp - self.gradient(phi)) / hs[a]
                H[:, a] = col[free]
            return 0.5 * (H + H.T)
        f0 = self(phi)
        for a, i in enumerate(free):
            for b in range(a, k):
                j = free[b]
                ei = np.zeros_like(phi)
                ej = np.zeros_like(phi)
                ei[i] = hs[a]
                ej[j] = hs[b]
                if a == b:
                    H[a, a] = (self(phi + ei) - 2 * f0 + self(phi - ei)) / hs[a] ** 2
                else:
                    H[a, b] = H[b, a] = (self(phi + ei + ej) - self(phi + ei - ej)
                                         - self(phi - ei + ej) + self(phi - ei - ej)) / (
                                             4 * hs[a] * hs[b])
        return H

    # ----- lambda representations (boundary faces)

    def canonical(self, theta) -> np.ndarray:
        """The theta whose lambda is the Cholesky factor of lambda lambda' (same covariance)."""
        out = np.array(theta, dtype=float)
        for blk in self.blocks:
            lam = _lam(blk, out)
            G = lam @ lam.T
            jitter = 1e-12 * max(float(np.trace(G)), 1e-300)
            try:
                L = np.linalg.cholesky(G + jitter * np.eye(blk.q))
            except np.linalg.LinAlgError:
                continue
            _set_lam(blk, out, L)
        return out

    def representations(self, theta, zero_tol) -> list[np.ndarray]:
        """Thetas of the same covariance around a singular lambda (see the module notes)."""
        theta = np.asarray(theta, dtype=float)
        bases = [theta, self.canonical(theta)]
        for blk in self.blocks:
            free = set(blk.positions)
            for base in list(bases[:2]):
                lam = _lam(blk, base)
                for j in range(blk.q - 1):
                    if lam[j, j] / self._row_scale(blk, j) >= zero_tol:
                        continue
                    a, c = lam[j + 1, j], lam[j + 1, j + 1]
                    r = float(np.hypot(a, c))
                    if r == 0.0 or c == 0.0:
                        continue
                    cs, sn = a / r, c / r
                    new = lam.copy()
                    new[:, j] = cs * lam[:, j] + sn * lam[:, j + 1]
                    new[:, j + 1] = -sn * lam[:, j] + cs * lam[:, j + 1]
                    new[j, j] = new[j, j + 1] = new[j + 1, j + 1] = 0.0
                    nz = np.argwhere(np.abs(new) > 0)
                    if any((int(r_), int(c_)) not in free for r_, c_ in nz):
                        continue  # would fill a structural zero
                    t = base.copy()
                    _set_lam(blk, t, new)
                    bases.append(t)
        out = []
        for base in bases:
            out.append(base)
            for blk in self.blocks:
                lam = _lam(blk, base)
                for j in range(blk.q):
                    if (lam[j, j] / self._row_scale(blk, j) < zero_tol
                            and np.any(lam[j + 1:, j] != 0)):
                        t = base.copy()
                        flipped = lam.copy()
                        flipped[:, j] = -flipped[:, j]
                        flipped[j, j] = 0.0
                        _set_lam(blk, t, flipped)
                        out.append(t)
        # points closer than zero_tol on phi are one point (a rotation or sign flip of an
        # entry that is zero up to rounding moves nothing)
        unique, seen = [], []
        for t in out:
            pt = self.phi(t)
            if not any(np.max(np.abs(pt - u), initial=0.0) < zero_tol for u in seen):
                unique.append(t)
                seen.append(pt)
        return unique

    def _row_scale(self, blk, row) -> float:
        for (r, c), k in zip(blk.positions, blk.theta_index):
            if r == row and c == row:
                return float(self.scale[k])
        return 1.0

    def free_sign(self, phi, zero_tol) -> np.ndarray:
        """Bool per entry: a zero diagonal whose column has non-zero entries below it."""
        out = np.zeros(phi.size, dtype=bool)
        theta = self.theta(phi)
        for blk in self.blocks:
            lam = _lam(blk, theta)
            for (r, c), k in zip(blk.positions, blk.theta_index):
                if r == c and phi[k] < zero_tol and np.any(lam[r + 1:, c] != 0):
                    out[k] = True
        return out


def _lam(blk, theta) -> np.ndarray:
    lam = np.zeros((blk.q, blk.q))
    rows, cols = zip(*blk.positions)
    lam[rows, cols] = np.asarray(theta)[blk.theta_index]
    return lam


def _set_lam(blk, theta, lam) -> None:
    rows, cols = zip(*blk.positions)
    theta[blk.theta_index] = lam[list(rows), list(cols)]


# ---------------------------------------------------------------------------------------------
# stages


def _bounds(prob: ScaledProblem, pinned=()):
    lo, hi = prob.lower.copy(), prob.upper.copy()
    for i in pinned:
        lo[i] = hi[i] = 0.0
    return lo, hi


def local_search(prob: ScaledProblem, x0, pinned=(), radius: float = 0.2,
                 method: str | None = None, maxiter: int | None = None,
                 name: str | None = None, floor=None) -> Stage:
    """One bounded local search on phi from ``x0`` (entries in ``pinned`` held at zero).

    ``method`` is ``"L-BFGS-B"`` (analytic gradient when the problem has one, else finite
    differences), ``"COBYQA"`` or ``"BOBYQA"`` (:func:`_bobyqa`; COBYQA when NLopt is not
    installed); by default L-BFGS-B when there is an analytic gradient, else COBYQA.
    ``maxiter`` caps the iterations (to test the verdict).  ``floor`` (an array, or None)
    raises the lower bounds to it where it is larger (see :func:`optimize_theta`).
    """
    method = method or ("L-BFGS-B" if prob.objective is not None else "COBYQA")
    lo, hi = _bounds(prob, pinned)
    if floor is not None:
        lo = np.minimum(np.maximum(lo, floor), hi)
    x0 = np.clip(np.asarray(x0, dtype=float), lo, hi)
    before, n0 = prob.best_f, prob.n
    if method == "BOBYQA":
        ok, message = _bobyqa(prob, x0, lo, hi, radius, maxiter or 500 * max(x0.size, 1))
        if ok is not None:
            return Stage(name or method, float(prob.best_f), prob.n - n0, ok,
                         bool(prob.best_f < before - _eps(before)), message)
        method = "COBYQA"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "L-BFGS-B":
            analytic = prob.objective is not None
            fun = _StallGuard(prob.value_and_grad if analytic else prob, prob)
            try:
                out = (_lbfgsb(fun, x0, lo, hi, maxiter or 2000)
                       if analytic and DRIVE_SETULB else None)
                if out is None:
                    res = minimize(fun, x0, jac=True if analytic else None, method="L-BFGS-B",
                                   bounds=Bounds(lo, hi),
                                   options={"ftol": LBFGSB_FTOL, "gtol": LBFGSB_GTOL,
                                            "maxiter": maxiter or 2000,
                                            "maxls": LBFGSB_MAXLS})
                    out = bool(res.success), str(res.message)
                success, message = out
            except SearchStalled:
                success, message = True, (f"stopped: {STALL_EVALUATIONS} evaluations without a "
                                          "decrease above rounding level")
        else:
            res = minimize(prob, x0, method="COBYQA", bounds=Bounds(lo, hi),
                           options={"initial_tr_radius": radius, "final_tr_radius": 1e-6,
                                    "maxfev": maxiter or 500 * max(x0.size, 1)})
            success, message = bool(res.success), str(res.message)
    return Stage(name or method, float(prob.best_f), prob.n - n0, success,
                 bool(prob.best_f < before - _eps(before)), message)


#: Drive SciPy's compiled L-BFGS-B step directly (:func:`_lbfgsb`); False runs ``minimize``.
DRIVE_SETULB = True
#: L-BFGS-B's stopping tolerances and line-search budget (SciPy's option names).
LBFGSB_FTOL, LBFGSB_GTOL, LBFGSB_MAXLS = 1e-13, 1e-5, 20

_SETULB = []  # SciPy's compiled L-BFGS-B step, when its interface is the one known here
_SETULB_SIGNATURE = "setulb(m,x,l,u,nbd,f,g,factr,pgtol,wa,iwa,task,lsave,isave,dsave,maxls,ln_task)"


def _lbfgsb(fun, x0, lo, hi, maxiter: int, m: int = 10):
    """SciPy's L-BFGS-B on ``fun(x) -> (value, gradient)``: the same compiled iteration
    (``scipy.optimize._lbfgsb.setulb``) driven the way ``minimize(method="L-BFGS-B")`` drives
    it, without ``minimize``'s wrappers (about 0.15 ms a call and 20 us an evaluation, a
    tenth of a small fit).  Returns ``(success, message)``, or None when this SciPy's
    interface is not the known one (then the caller runs ``minimize``, the same algorithm).
    """
    if not _SETULB:
        try:
            from scipy.optimize import _lbfgsb

            known = (_lbfgsb.setulb.__doc__ or "").startswith(_SETULB_SIGNATURE)
            _SETULB.append(_lbfgsb.setulb if known else None)
        except Exception:  # noqa: BLE001 - any failure: use minimize
            _SETULB.append(None)
    setulb = _SETULB[0]
    if setulb is None:
        return None
    n = x0.size
    finite_lo, finite_hi = np.isfinite(lo), np.isfinite(hi)
    nbd = np.where(finite_lo, np.where(finite_hi, 2, 1), np.where(finite_hi, 3, 0)).astype(
        np.int32)
    low = np.where(finite_lo, lo, 0.0).astype(np.float64)
    up = np.where(finite_hi, hi, 0.0).astype(np.float64)
    x = np.array(x0, dtype=np.float64)
    f = np.array(0.0, dtype=np.float64)
    g = np.zeros(n, dtype=np.float64)
    wa = np.zeros(2 * m * n + 5 * n + 11 * m * m + 8 * m, dtype=np.float64)
    iwa = np.zeros(3 * n, dtype=np.int32)
    task = np.zeros(2, dtype=np.int32)
    ln_task = np.zeros(2, dtype=np.int32)
    lsave = np.zeros(4, dtype=np.int32)
    isave = np.zeros(44, dtype=np.int32)
    dsave = np.zeros(29, dtype=np.float64)
    factr = LBFGSB_FTOL / np.finfo(float).eps
    iterations = 0
    while True:
        setulb(m, x, low, up, nbd, f, g, factr, LBFGSB_GTOL, wa, iwa, task, lsave, isave,
               dsave, LBFGSB_MAXLS, ln_task)
        if task[0] == 3:  # f and g wanted at x
            fv, gv = fun(x.copy())
            f = np.array(float(fv), dtype=np.float64)
            g = np.array(gv, dtype=np.float64).reshape(n)
        elif task[0] == 1:  # a new iterate
            iterations += 1
            if iterations >= maxiter:
                task[0], task[1] = 5, 504
        else:
            break
    from scipy.optimize._lbfgsb_py import status_messages, task_messages

    return bool(task[0] == 4), (f"{status_messages.get(int(task[0]), '')}: "
                                f"{task_messages.get(int(task[1]), '')}")


#: A quasi-Newton search stops after this many evaluations in a row that lower the best
#: criterion by no more than rounding: at the optimum the gradient is known only to a few
#: units in its last digits, and L-BFGS-B's line search would otherwise spend its whole
#: budget (twice) stepping on that noise.  The verdict judges the point it stopped at.
STALL_EVALUATIONS = 8


class _StallGuard:
    """Wrap the search's function: raise :class:`SearchStalled` after ``STALL_EVALUATIONS``
    evaluations in a row without a decrease of the best value by more than 1e-14 of it."""

    def __init__(self, fun, prob: ScaledProblem):
        self.fun, self.prob, self.count = fun, prob, 0

    def __call__(self, x):
        before = self.prob.best_f
        out = self.fun(x)
        if self.prob.best_f < before - 1e-14 * max(1.0, abs(before)):
            self.count = 0
        else:
            self.count += 1
            if self.count >= STALL_EVALUATIONS:
                raise SearchStalled
        return out


#: BOBYQA's stopping step on phi: the point must be close enough for the verdict's central
#: differences to see a small gradient without a Hessian (STAR: curvature about 1e4 on phi).
BOBYQA_XTOL = 1e-7


def _bobyqa(prob: ScaledProblem, x0, lo, hi, radius: float, maxfev: int):
    """Powell's BOBYQA from NLopt (what lme4's default ``nloptwrap`` runs) on the free
    coordinates of phi; returns ``(success, message)``, or ``(None, "")`` when NLopt is not
    installed.

    The same quadratic-model trust-region family as COBYQA, in compiled code: SciPy's COBYQA
    spends about 0.7 ms of Python per evaluation, as much as one of STAR's evaluations.
    Where the criterion is infinite (not positive definite) the model sees a large finite
    value instead.
    """
    try:
        import nlopt
    except ImportError:
        return None, ""
    free = np.flatnonzero(lo < hi)
    if free.size == 0:
        prob(x0)
        return True, "no free parameter"
    x = x0.copy()
    big = [None]

    def fun(z, grad):
        x[free] = z
        v = prob(x)
        if np.isfinite(v):
            return v
        if big[0] is None:
            ref = prob.best_f if np.isfinite(prob.best_f) else 1.0
            big[0] = abs(ref) * 10.0 + 1e10
        return big[0]

    opt = nlopt.opt(nlopt.LN_BOBYQA, int(free.size))
    opt.set_min_objective(fun)
    opt.set_lower_bounds(np.maximum(lo[free], -1e300))
    opt.set_upper_bounds(np.minimum(hi[free], 1e300))
    opt.set_initial_step(float(radius))
    opt.set_xtol_abs(BOBYQA_XTOL)
    opt.set_maxeval(int(maxfev))
    try:
        opt.optimize(x0[free].copy())
        code = opt.last_optimize_result()
    except (nlopt.RoundoffLimited, RuntimeError, ValueError) as err:
        return False, f"BOBYQA stopped: {err}"
    return bool(code > 0 and code != nlopt.MAXEVAL_REACHED), f"NLopt result {code}"


def _eps(v: float) -> float:
    return 1e-10 * max(1.0, abs(v)) if np.isfinite(v) else 0.0


def _zero_diagonals(prob: ScaledProblem, x, zero_tol) -> list[int]:
    return [int(i) for i in np.flatnonzero(prob.diagonal) if x[i] < zero_tol]


def probe(prob: ScaledProblem, zero_tol: float) -> Stage:
    """Evaluate the criterion off each zero diagonal, from every representation of the point.

    Steps along a zero diagonal entry of sizes 1e-4 .. 2 times the typical non-zero diagonal
    (on phi); the best point found becomes the problem's best.
    """
    before, n0 = prob.best_f, prob.n
    x = prob.best_x.copy()
    inside = [i for i in np.flatnonzero(prob.diagonal) if x[i] >= zero_tol]
    step = max(float(np.mean(x[inside])) if inside else 1.0, 0.2)
    for rep in prob.representations(prob.theta(x), zero_tol):
        base = prob.phi(rep)
        for i in _zero_diagonals(prob, base, zero_tol):
            for h in (1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5, 1.0, 2.0):
                y = base.copy()
                y[i] = h * step
                prob(y)
    improved = bool(prob.best_f < before - _eps(before))
    return Stage("boundary probe", float(prob.best_f), prob.n - n0, True, improved,
                 "a better point off the boundary" if improved else "no descent off the boundary")


def flip(prob: ScaledProblem, zero_tol: float = 1e-4, radius: float = 0.05) -> Stage | None:
    """Leave a face through a free column sign (None when no zero diagonal has one).

    At a zero diagonal whose column is not zero below it, the bound ``theta_jj >= 0`` holds the
    search only when the derivative along ``theta_jj`` is positive; the flipped column is the
    same covariance with that derivative negative, so a local search from it can go on.
    """
    x = prob.best_x
    if not np.any(prob.free_sign(x, zero_tol)):
        return None
    n0, before = prob.n, prob.best_f
    g = prob.gradient(x)
    y = _flip_free_signs(prob, x, g, zero_tol)
    if np.array_equal(y, x):
        return Stage("column sign flip", float(prob.best_f), prob.n - n0, True, False,
                     "no descent through a column sign")
    res = local_search(prob, y, radius=radius)
    return Stage("column sign flip + restart", float(prob.best_f), prob.n - n0, res.success,
                 bool(prob.best_f < before - _eps(before)), res.message)


def boundary_search(prob: ScaledProblem, zero_tol: float = 1e-4, rounds: int = 4,
                    radius: float = 0.05) -> tuple[list[Stage], bool]:
    """Settle a fit that ends near a zero diagonal (lme4's ``restart_edge`` and boundary check).

    Returns the stages and whether the last probe found no better point (True also when the
    point is not on a boundary).
    """
    stages: list[Stage] = []
    near = _zero_diagonals(prob, prob.best_x, zero_tol)
    if not near:
        return stages, True
    x0 = prob.best_x.copy()
    x0[near] = 0.0
    stages.append(local_search(prob, x0, pinned=near, radius=radius,
                               name=f"boundary {near}"))
    clear = False
    for _ in range(rounds):
        if not _zero_diagonals(prob, prob.best_x, zero_tol):
            clear = True
            break
        st = flip(prob, zero_tol, radius)
        if st is not None:
            stages.append(st)
            if st.improved:
                continue
        st = probe(prob, zero_tol)
        if not st.improved:
            stages.append(st)
            clear = True
            break
        n0 = prob.n
        res = local_search(prob, prob.best_x.copy(), radius=radius)
        stages.append(Stage("boundary probe + restart", float(prob.best_f),
                            st.evaluations + prob.n - n0, res.success, True, res.message))
    return stages, clear


def polish(prob: ScaledProblem, zero_tol: float = 1e-4) -> Stage:
    """L-BFGS-B from the best point, zero diagonals without a free sign held at zero."""
    x = prob.best_x.copy()
    free_sign = prob.free_sign(x, zero_tol)
    pinned = [i for i in _zero_diagonals(prob, x, zero_tol) if not free_sign[i]]
    x[pinned] = 0.0
    return local_search(prob, x, pinned=pinned, method="L-BFGS-B", name="L-BFGS-B polish")


def _flip_free_signs(prob: ScaledProblem, x, g, zero_tol) -> np.ndarray:
    """At a zero diagonal with a free column sign and a gradient pushing into the bound, the
    flipped column is the same point with the gradient pointing inside."""
    theta = prob.theta(x)
    for blk in prob.blocks:
        lam = _lam(blk, theta)
        changed = False
        for (r, c), k in zip(blk.positions, blk.theta_index):
            if r == c and x[k] < zero_tol and g[k] > 0 and np.any(lam[r + 1:, c] != 0):
                lam[r, c] = 0.0
                lam[r + 1:, c] = -lam[r + 1:, c]
                changed = True
        if changed:
            _set_lam(blk, theta, lam)
    return prob.phi(theta)


def verdict(prob: ScaledProblem, x, gtol: float = 2e-3, zero_tol: float = 1e-4,
            probe_clear: bool = True) -> Verdict:
    """The optimality conditions at ``x`` (lme4's ``checkConv`` on the scaled coordinate)."""
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return Verdict(True, 0.0, gtol, True, True)
    free_sign = prob.free_sign(x, zero_tol)
    pinned = [i for i in _zero_diagonals(prob, x, zero_tol) if not free_sign[i]]
    free = [i for i in range(x.size) if i not in pinned]
    g = prob.gradient(x)
    if not np.all(np.isfinite(g)) or not np.isfinite(prob(x)):
        return Verdict(False, float("inf"), gtol, False, False,
                       "the criterion or its gradient is not finite at the optimum")
    boundary_ok = probe_clear and all(g[i] >= -gtol for i in pinned)
    gf = g[free]
    hessian_ok = False
    mingrad = np.abs(gf)
    if free and mingrad.max() >= gtol:
        H = prob.hessian(x, free)
        try:
            R = np.linalg.cholesky(H)
            scgrad = np.linalg.solve(R, gf)
            mingrad = np.minimum(np.abs(scgrad), np.abs(gf))
            hessian_ok = True
        except np.linalg.LinAlgError:
            pass
    gmax = float(mingrad.max()) if mingrad.size else 0.0
    reasons = []
    if gmax >= gtol:
        reasons.append(f"the gradient at the optimum is not small ({gmax:.2g} >= {gtol:g} "
                       "on the scaled parameters)")
    if not probe_clear:
        reasons.append("a point off the boundary is better than the boundary fit")
    elif not boundary_ok:
        reasons.append("the criterion decreases off the boundary at a zero variance")
    return Verdict(not reasons, gmax, gtol, hessian_ok, boundary_ok, "; ".join(reasons))


# ---------------------------------------------------------------------------------------------


def column_scale(structure) -> np.ndarray:
    """``s`` per theta entry: ``1 / rms`` of the random-effects column of its lambda row."""
    s = np.ones(structure.ntheta)
    for blk in structure.blocks:
        rms = np.sqrt(np.mean(np.asarray(blk.Z, dtype=float) ** 2, axis=0))
        for (r, _), k in zip(blk.positions, blk.theta_index):
            s[k] = 1.0 / rms[r] if np.isfinite(rms[r]) and rms[r] > 0 else 1.0
    return s


def _snap(prob: ScaledProblem, zero_tol: float) -> np.ndarray:
    """The best point, with near-zero diagonals put on the boundary when that is no worse."""
    x = prob.best_x.copy()
    tiny = [i for i in _zero_diagonals(prob, x, 10 * zero_tol) if x[i] > 0]
    if tiny:
        y = x.copy()
        y[tiny] = 0.0
        if prob(y) <= prob.best_f + _eps(prob.best_f):
            x = y
    return x


def optimize_theta(
    criterion,
    theta0: np.ndarray,
    lower: np.ndarray,
    diagonal: np.ndarray,
    upper: np.ndarray | None = None,
    objective=None,
    scale: np.ndarray | None = None,
    blocks=(),
    polish_stage: bool = True,
    check: bool = True,
    zero_tol: float = 1e-4,
    gtol: float = 2e-3,
    radius: float = 0.2,
    maxiter: int | None = None,
    search: str | None = None,
) -> tuple[np.ndarray, float, OptSummary]:
    """Find theta minimising ``criterion``: local search, boundary, polish, verdict.

    Parameters
    ----------
    criterion : callable
        ``theta -> float`` (lme4's theta; see :func:`workbench.reml.criterion.make_criterion`).
    theta0, lower : ndarray
        Start and lower bounds (0 for diagonal entries of lambda, -inf otherwise).
    diagonal : ndarray of bool
        Which entries are diagonal (candidates for the zero boundary).
    upper : ndarray, optional
    objective : callable, optional
        ``theta -> (criterion, gradient)`` with an analytic gradient; when given the local
        searches are L-BFGS-B on it instead of COBYQA.
    scale : ndarray, optional
        ``s`` of the search coordinate ``phi = theta / s`` (:func:`column_scale`); ones by
        default.
    blocks : sequence, optional
        The structure's factor blocks (``q``, ``positions``, ``theta_index``), for the
        boundary representations; without them only the point itself is probed.
    polish_stage : bool
        Run the L-BFGS-B polish when the gradient is not small after the first stages.
    check : bool
        Run the verdict (False for a start value that is not reported: converged is then False
        with the reason "not checked").
    zero_tol : float
        Diagonal entries of phi below this are treated as on the boundary.
    gtol : float
        Tolerance of the verdict on ``min(|scaled gradient|, |gradient|)`` (lme4's 0.002).
    radius : float
        Initial trust-region radius of the derivative-free search on phi.
    maxiter : int, optional
        Cap on the first local search's iterations (evaluations for COBYQA); a capped search
        skips the later stages, so the verdict judges where it stopped.
    search : str, optional
        Method of the first local search (see :func:`local_search`; e.g. ``"BOBYQA"``).

    Returns
    -------
    theta : ndarray
    value : float
    summary : OptSummary
    """
    lower = np.asarray(lower, dtype=float)
    upper = np.full_like(lower, np.inf) if upper is None else np.asarray(upper, dtype=float)
    theta0 = np.asarray(theta0, dtype=float)
    scale = np.ones_like(lower) if scale is None else np.asarray(scale, dtype=float)
    prob = ScaledProblem(criterion, objective, lower, upper, diagonal, scale, blocks)
    # A scalar term's theta enters the criterion through its square: zero is a stationary
    # point, and a first quasi-Newton step clipped to the bound would stop on it, maximum or
    # not.  The first search keeps those entries a little off zero, where the gradient shows
    # the curvature; the boundary stage settles real zeros.  (Not for vector terms: near a
    # singular q x q block the floor only slows the search down.)
    floor = None
    if objective is not None:  # on phi
        floor = np.full(lower.shape, -np.inf)
        for blk in blocks:
            if blk.q == 1:
                floor[list(blk.theta_index)] = 0.5 * zero_tol
    stages = [local_search(prob, prob.phi(theta0), radius=radius, maxiter=maxiter,
                           method=search, floor=floor)]
    if prob.best_x is None:
        raise NumericalError("the criterion is not finite at any theta the search tried (the "
                             "model matrices are numerically singular or the response is "
                             "fitted exactly)")
    methods = [stages[0].stage]
    clear = True
    if maxiter is None:
        more, clear = boundary_search(prob, zero_tol)
        if more:
            stages.extend(more)
            methods.append("boundary")

    x = _snap(prob, zero_tol)
    if not check:
        v = Verdict(False, float("nan"), gtol, False, False, "not checked")
    else:
        v = verdict(prob, x, gtol=gtol, zero_tol=zero_tol, probe_clear=clear)
        if not v.converged and clear and polish_stage and maxiter is None:
            stages.append(polish(prob, zero_tol))
            methods.append("L-BFGS-B polish")
            x = _snap(prob, zero_tol)
            v = verdict(prob, x, gtol=gtol, zero_tol=zero_tol, probe_clear=clear)
    value = prob(x)
    theta = prob.theta(x)
    summary = OptSummary(method="+".join(methods), theta0=tuple(theta0.tolist()),
                         theta=tuple(theta.tolist()), scale=tuple(scale.tolist()),
                         criterion=value, evaluations=prob.n, stages=tuple(stages), verdict=v)
    return theta, value, summary
