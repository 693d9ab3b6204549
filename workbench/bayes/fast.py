"""The fast path for one grouping factor: fixed and random effects integrated out, an exact
independence sampler on the few variance parameters, then exact Gaussian draws of the rest.

With one grouping factor, random effects integrated out (:mod:`.marginal`), the log likelihood
is a quadratic in ``beta``: per level ``j``, with ``M_j = I + C' A_j C / s2`` (``A_j = Z_j'WZ_j``,
``C`` the Cholesky factor of the group covariance ``G``) and ``M_j = L_j L_j'``, write
``a_j = L_j^-1 C' Z_j'Wy / s2`` and ``B_j = L_j^-1 C' Z_j'WX / s2``.  Then::

    -2 log p(y | beta, theta) = n log 2 pi - sum log w + n log s2 + sum_j log det M_j
                                + beta' H beta - 2 g' beta + c
    H = X'WX / s2 - sum_j B_j'B_j,  g = X'Wy / s2 - sum_j B_j'a_j,  c = y'Wy / s2 - sum_j |a_j|^2

Under independent ``Normal(m_i, 1 / d_i)`` priors on ``beta`` (``d_i = 0`` for ``Flat``),
``beta | theta, y ~ N(A^-1 b, A^-1)`` with ``A = H + D``, ``b = g + D m``, and ``beta`` integrates
out in closed form::

    -2 log p(y | theta) = ... + sum_j log det M_j + c + m'Dm - b'A^-1 b + log det A  (+ const)

so the posterior is a function of ``theta`` alone: the log group sds, ``atanh`` of the
correlation of each two-column term, and the log residual sd (d = 4 for correlated intercepts
and slopes).  It is sampled by an independence Metropolis-Hastings chain per chain (exact MCMC
whatever the proposal), fast because each batch of proposals is evaluated at once from the
per-level sufficient statistics:

1. the proposal is a defensive mixture of multivariate Student-t's (:func:`_propose`) at the
   posterior mode (Newton's method on batched central differences, :func:`_mode`) with the
   inverse Hessian (widened by :data:`PROPOSAL_WIDEN`) as scale;
2. half the proposals are drawn and weighted first; when the importance ratios' Pareto k
   (PSIS, :func:`arviz.psislw`) exceeds 0.5 or their relative ESS is below
   :data:`ESS_FRACTION` (on the half, or on all of them once the other half is drawn), the
   proposal is refitted to the importance-weighted mean and covariance and the proposals are
   drawn anew from it;
3. the chains run over ``thin`` proposals per kept draw, ``thin`` doubled (up to
   :data:`MAX_THIN`) until every variance parameter's bulk ESS reaches :data:`ESS_TARGET`;
   more proposals per kept draw are more iid draws of the same proposal, added to the batch.
   If the Pareto k of the grown batch exceeds :data:`PARETO_K_MAX`, the proposal is refitted
   to it (at most two refits in all) before the path declines.

Proposals are independent of the chain, so each batch's log densities are computed at once
(:meth:`Posterior.logpost`: one matrix product per batch of rows forms every level's ``M_j``,
another their contribution to the Gram of ``(y, X)``), and the chains' accept/reject loop
only compares numbers.

Above :data:`PARETO_K_MAX`, with acceptance below :data:`ACCEPT_MIN`, or short of the ESS at
``MAX_THIN``, :func:`fit_fast` declines (:class:`Declined`) and ``fit_bayes`` falls back to NUTS
on the marginal model.  ``beta`` is then drawn from its Gaussian conditional, and the random
effects from theirs, ``u_j ~ N(M_j^-1 v_j, M_j^-1)`` (:func:`.marginal.draw_block`), one exact
draw per kept state.

The priors are those of :mod:`.priors` (the PyMC model's), written here as numpy log densities
on the parameter (with the log-transform Jacobian): the posterior is the marginal NUTS one.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

from .. import names
from ..errors import FastPathDeclined
from .marginal import (CHUNK, congruence_coefficients, draw_block, level_coefficients,
                       level_matrices, one_blas_thread, unique_entries, upper_pairs)

PARETO_K_MAX = 0.7
ACCEPT_MIN = 0.2  # a last guard: the chains are exact whatever the proposal, and the Pareto k and
# bulk ESS checks bound the error (replicates at 0.26-0.30 agreed with marginal NUTS)
PROPOSAL_DF = 4.0
PROPOSAL_WIDEN = 1.2
ESS_FRACTION = 0.45  # least importance-sampling ESS per proposal before drawing more per kept draw
MAX_THIN = 8
PILOT_MIN = 500  # fewest proposals of the first half-batch that decides the refit
MIN_DRAWS = 100  # fewest draws (chains x draws) for the Pareto-k and ESS checks
ESS_TARGET = 400.0  # least bulk ESS of every variance parameter (or 0.2 x draws, if less)
DEFENSIVE = 0.15  # weight and width of the wide component of the proposal
DEFENSIVE_WIDTH = 3.0
_SCALE_FAMILIES = {"HalfNormal", "HalfCauchy", "HalfStudentT", "Exponential", "HalfFlat",
                   "Uniform", "InverseGamma"}


Declined = FastPathDeclined  # the proposal failed a check (the message says why)


def why_not(design, structure, priors) -> str | None:
    """``None`` when the fast path applies to this design and these priors, else the reason."""
    if len(structure.blocks) != 1:
        return "several grouping factors"
    if design.p < 1:
        return "no fixed effects"
    blk = structure.blocks[0]
    if any(sl.stop - sl.start > 2 for _, sl in blk.terms):
        return "a correlated term of more than two columns"
    for key, pr in priors.items():
        if key.startswith("beta"):
            if pr.family not in ("Normal", "Flat"):
                return f"prior {key}={pr} is not Normal or Flat"
        elif key.startswith("corr"):
            if pr.family != "LKJ":
                return f"prior {key}={pr}"
        elif pr.family not in _SCALE_FAMILIES:
            return f"prior {key}={pr}"
    return None


def _log_scale_prior(pr, s: np.ndarray) -> np.ndarray:
    """Log prior density of an sd ``s`` plus ``log s`` (the Jacobian of ``s = exp(z)``)."""
    a = pr.args
    f = pr.family
    if f == "HalfNormal":
        lp = -0.5 * (s / a[0]) ** 2 - math.log(a[0]) + 0.5 * math.log(2 / math.pi)
    elif f == "HalfCauchy":
        lp = math.log(2 / (math.pi * a[0])) - np.log1p((s / a[0]) ** 2)
    elif f == "HalfStudentT":
        nu, sc = a
        lp = (math.log(2.0) + gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * math.log(nu * math.pi)
              - math.log(sc) - (nu + 1) / 2 * np.log1p((s / sc) ** 2 / nu))
    elif f == "Exponential":
        lp = math.log(a[0]) - a[0] * s
    elif f == "HalfFlat":
        lp = np.zeros_like(s)
    elif f == "Uniform":
        lp = np.where((s > a[0]) & (s < a[1]), -math.log(a[1] - a[0]), -np.inf)
    elif f == "InverseGamma":  # on v = s^2: p(v) |dv/ds|
        al, be = a
        v = s * s
        lp = al * math.log(be) - gammaln(al) - (al + 1) * np.log(v) - be / v + np.log(2 * s)
    else:  # pragma: no cover - why_not excludes it
        raise Declined(f"prior {pr}")
    return lp + np.log(s)


class Posterior:
    """The log posterior of ``theta`` (one grouping factor), batched over rows of ``z``."""

    def __init__(self, design, structure, priors, stats):
        blk = structure.blocks[0]
        self.q, self.p = blk.q, design.p
        self.stats = stats
        self.known_sd = design.known_sd is not None
        self.sd_priors = [priors[names.sd(blk.group, c)] for c in blk.columns]
        self.pairs = []  # (offset, eta) of each two-column term
        for label, sl in blk.terms:
            if sl.stop - sl.start == 2:
                self.pairs.append((sl.start, priors[names.corr_key(label)].args[0]))
        self.sigma_prior = None if self.known_sd else priors["sigma"]
        bp = [priors[names.beta(n)] for n in design.fixed_names]
        self.prec = np.array([0.0 if b.family == "Flat" else 1.0 / b.args[1] ** 2 for b in bp])
        self.pmean = np.array([0.0 if b.family == "Flat" else b.args[0] for b in bp])
        self.dim = self.q + len(self.pairs) + (0 if self.known_sd else 1)
        # per-level statistics in the layout of the batched products of _logpost
        q, p = self.q, self.p
        self.U = upper_pairs(q)
        self.Avec = unique_entries(stats["m_ZtWZ"])                       # (u + 1, J)
        R = np.concatenate([stats["m_ZtWy"][:, :, None], stats["m_ZtWX"]], axis=2)  # (J, q, 1+p)
        self.V = upper_pairs(p + 1)
        ab = np.array(self.U)
        kl = np.array(self.V)
        a, b = ab[:, 0][:, None], ab[:, 1][:, None]
        k, l_ = kl[:, 0][None, :], kl[:, 1][None, :]
        Q = R[:, a, k] * R[:, b, l_] + (a != b) * R[:, b, k] * R[:, a, l_]  # (J, u, v)
        self.Qflat = np.ascontiguousarray(Q.reshape(Q.shape[0], -1))
        self.gpos = {kl_: t for t, kl_ in enumerate(self.V)}

    def unpack(self, z):
        """sd (S, q), correlations (S, terms), C (S, q, q), s2 (S,)."""
        S, q = z.shape[0], self.q
        sd = np.exp(z[:, :q])
        r = np.tanh(z[:, q:q + len(self.pairs)])
        Lc = np.broadcast_to(np.eye(q), (S, q, q)).copy()
        for t, (o, _) in enumerate(self.pairs):
            Lc[:, o + 1, o] = r[:, t]
            Lc[:, o + 1, o + 1] = np.sqrt(1.0 - r[:, t] ** 2)
        C = sd[:, :, None] * Lc
        s2 = np.ones(S) if self.known_sd else np.exp(2.0 * z[:, -1])
        return sd, r, C, s2

    def logpost(self, z, keep: bool = False):
        """Log posterior density of each row of ``z`` (up to a constant; -inf where undefined);
        with ``keep`` also what the conditional draws of beta and the random effects need."""
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return self._logpost(np.asarray(z, dtype=float), keep)

    def _levels(self, C, s2i, cM, cK):
        """``sum_j log det M_j`` and the unique entries of ``sum_j R_j' K_j R_j`` per row
        (``cM``, ``cK``: the coefficients of M_j and of K_j of these rows)."""
        S = C.shape[0]
        M = level_matrices(self.Avec, C, s2i[:, None], cM)
        Minv, logdet = _inverse_logdet(M, self.q)
        u, J = M.shape[1], M.shape[2]
        T = (Minv.reshape(S * u, J) @ self.Qflat).reshape(S, u * u, -1)
        # sum over (a, b), (i, k) of K's coefficient [ab, ik] times T[ik, ab]
        return logdet, (cK[:, None, :] @ T)[:, 0]

    def _logpost(self, z, keep):
        # -2 log p(y | theta) up to a constant, with R_j = [Z_j'Wy, Z_j'WX] (q x (1 + p)):
        # sum_j log det M_j + y'Wy/s2 - sum_j R_j' K_j R_j (the (y, X) Gram of the a_j, B_j of
        # the module docstring, K_j = C M_j^-1 C' / s2^2) + the beta terms; the M_j^-1 of all
        # levels enter through one matrix product with the per-level products of R_j's entries
        # (in batches of rows whose (rows x levels) temporaries stay in cache).
        st, p = self.stats, self.p
        sd, r, C, s2 = self.unpack(z)
        S = z.shape[0]
        s2i = 1.0 / s2
        rows = max(64, CHUNK // self.Avec.shape[1])
        logdet_j, gram = np.empty(S), np.empty((S, len(self.V)))
        cM = level_coefficients(C, s2i[:, None])
        u = cM.shape[1]
        cK = (np.swapaxes(congruence_coefficients(C, False), 1, 2).reshape(S, u * u)
              * (s2i * s2i)[:, None])
        for a in range(0, S, rows):
            sl = slice(a, a + rows)
            logdet_j[sl], gram[sl] = self._levels(C[sl], s2i[sl], cM[sl], cK[sl])
        gp = self.gpos
        H = np.empty((S, p, p))
        for k in range(p):
            for l_ in range(k, p):
                H[:, k, l_] = H[:, l_, k] = st["m_XtWX"][k, l_] * s2i - gram[:, gp[k + 1, l_ + 1]]
        g = st["m_XtWy"][None] * s2i[:, None] - gram[:, [gp[0, k + 1] for k in range(p)]]
        cc = float(st["m_ytWy"]) * s2i - gram[:, gp[0, 0]]
        D = self.prec
        Amat = H + np.diag(D)[None]
        bvec = g + (D * self.pmean)[None]
        n = float(st["m_n"])
        LA, mean, logdetA, ok = _chol_solve(Amat, bvec)
        ll = -0.5 * (n * np.log(s2) + logdet_j + cc
                     + float(np.sum(D * self.pmean ** 2)) - np.sum(bvec * mean, axis=1) + logdetA)
        lp = ll + sum(_log_scale_prior(pr, sd[:, i]) for i, pr in enumerate(self.sd_priors))
        for t, (_, eta) in enumerate(self.pairs):
            lp = lp + eta * np.log1p(-r[:, t] ** 2)  # LKJ(eta) on r, times dr/dz = 1 - r^2
        if not self.known_sd:
            lp = lp + _log_scale_prior(self.sigma_prior, np.sqrt(s2))
        lp = np.where(ok & np.isfinite(lp), lp, -np.inf)
        if keep:
            return lp, {"mean": mean, "LA": LA}
        return lp


def _inverse_logdet(M: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique entries of ``M_j^-1`` (draws, u, levels) and ``sum_j log det M_j`` (draws,) from
    the unique entries of symmetric positive definite ``M_j`` (closed forms for q <= 2, which
    overwrite ``M``)."""
    if q == 1:
        return 1.0 / M, np.sum(np.log(M[:, 0]), axis=1)
    if q == 2:  # M^-1 = [m11, -m01, m00] / det, in place of M
        m00, m01, m11 = M[:, 0], M[:, 1], M[:, 2]
        det = m00 * m11
        det -= m01 * m01
        idet = 1.0 / det
        logdet = np.sum(np.log(det), axis=1)
        m01 *= -idet
        m00 *= idet
        m11 *= idet
        return M[:, ::-1], logdet
    S, u, J = M.shape
    full = np.empty((S, J, q, q))
    for t, (i, k) in enumerate(upper_pairs(q)):
        full[:, :, i, k] = full[:, :, k, i] = M[:, t]
    good = np.all(np.isfinite(full), axis=(1, 2, 3))
    full[~good] = np.eye(q)
    sign, logdet = np.linalg.slogdet(full)
    inv = np.linalg.inv(full)
    logdet = np.where(good & np.all(sign > 0, axis=1), np.sum(logdet, axis=1), np.nan)
    return np.stack([inv[:, :, i, k] for i, k in upper_pairs(q)], axis=1), logdet


def _chol_solve(A: np.ndarray, b: np.ndarray):
    """Batched Cholesky ``A = L L'`` of (S, p, p) matrices and the solution of ``A x = b``,
    unrolled over the p x p entries (elementwise over S; p is the number of fixed effects).

    Returns ``L`` (identity where ``A`` is not positive definite or not finite), ``x``,
    ``log det A`` and the mask of the factorable rows."""
    S, p = A.shape[0], A.shape[1]
    L = np.zeros_like(A)
    ok = np.all(np.isfinite(A), axis=(1, 2))
    for j in range(p):
        d = A[:, j, j] - np.sum(L[:, j, :j] ** 2, axis=1)
        ok &= d > 0
        L[:, j, j] = np.sqrt(np.where(d > 0, d, 1.0))
        if j + 1 < p:
            L[:, j + 1:, j] = (A[:, j + 1:, j] - np.einsum("sik,sk->si", L[:, j + 1:, :j],
                                                             L[:, j, :j])) / L[:, j, j][:, None]
    L[~ok] = np.eye(p)
    x = np.empty_like(b)
    for i in range(p):  # L t = b
        x[:, i] = (b[:, i] - np.sum(L[:, i, :i] * x[:, :i], axis=1)) / L[:, i, i]
    for i in reversed(range(p)):  # L' x = t
        x[:, i] = (x[:, i] - np.sum(L[:, i + 1:, i] * x[:, i + 1:], axis=1)) / L[:, i, i]
    logdet = 2.0 * np.sum(np.log(np.diagonal(L, axis1=1, axis2=2)), axis=1)
    return L, x, logdet, ok


NEWTON_H = 1e-3  # central-difference step of the Newton iterations' gradient and Hessian
NEWTON_TOL = 1e-4  # Newton decrement g'H^-1 g (about the distance to the maximum in log density;
# the proposal's centre needs no more: its offset from the mode is ~0.01 posterior sd)


def _stencil(d: int, h: float) -> np.ndarray:
    """Offsets of the central-difference gradient and Hessian: 0, +-h e_i, and
    h (+-e_i +-e_j) for i < j; (1 + 2d + 2d(d - 1), d)."""
    E = np.eye(d) * h
    pts = [np.zeros(d)]
    pts += [E[i] for i in range(d)] + [-E[i] for i in range(d)]
    for i in range(d):
        for j in range(i + 1, d):
            pts += [E[i] + E[j], E[i] - E[j], -E[i] + E[j], -E[i] - E[j]]
    return np.array(pts)


def _derivatives(v: np.ndarray, d: int, h: float):
    """f, gradient and Hessian at the centre of :func:`_stencil` from its values ``v``."""
    f0, fp, fm = v[0], v[1:d + 1], v[d + 1:2 * d + 1]
    g = (fp - fm) / (2 * h)
    H = np.diag((fp - 2 * f0 + fm) / (h * h))
    k = 2 * d + 1
    for i in range(d):
        for j in range(i + 1, d):
            fpp, fpm, fmp, fmm = v[k:k + 4]
            k += 4
            H[i, j] = H[j, i] = (fpp - fpm - fmp + fmm) / (4 * h * h)
    return f0, g, H


def _mode(post: Posterior, z0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mode of theta and the Hessian of -log p there (central differences).

    Newton's method on -log p with the gradient and Hessian by central differences, each
    iteration's stencil and the trial points of its step in one batched evaluation; the
    step is halved until -log p decreases, and a Hessian that is not positive definite is
    shifted (Levenberg).  Converged when the Newton decrement is below :data:`NEWTON_TOL`;
    BFGS (:func:`_mode_bfgs`) when Newton does not converge in 30 iterations."""
    d, h = z0.size, NEWTON_H
    offs = _stencil(d, h)
    ts = np.array([0.5, 0.25, 0.125, 0.0625])
    z = z0
    v = -post.logpost(z + offs)
    for _ in range(30):
        f0, g, H = _derivatives(v, d, h)
        if not (np.isfinite(f0) and np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
            break
        step, shifted = _newton_step(H, g)
        if step is None:
            break
        if not shifted and -float(g @ step) < NEWTON_TOL:
            return z, H
        # the full step's stencil and shorter trial steps, in one evaluation
        znew = z + step
        vals = -post.logpost(np.vstack([znew + offs, z + ts[:, None] * step[None]]))
        vn, vt = vals[:offs.shape[0]], vals[offs.shape[0]:]
        if np.isfinite(vn[0]) and vn[0] < f0:
            z, v = znew, vn
            continue
        ok = np.isfinite(vt) & (vt < f0)
        if not ok.any():
            break
        z = z + ts[int(np.argmax(ok))] * step
        v = -post.logpost(z + offs)
    return _mode_bfgs(post, z0)


def _newton_step(H: np.ndarray, g: np.ndarray) -> tuple[np.ndarray | None, bool]:
    """-H^-1 g, with H shifted by a multiple of I until positive definite; and whether it
    was shifted."""
    lam = 0.0
    scale = max(1e-8, float(np.max(np.abs(np.diag(H)))))
    for _ in range(20):
        try:
            Lh = np.linalg.cholesky(H + lam * np.eye(H.shape[0]))
        except np.linalg.LinAlgError:
            lam = max(2 * lam, 1e-6 * scale)
            continue
        y = np.linalg.solve(Lh, -g)
        return np.linalg.solve(Lh.T, y), lam > 0
    return None, True


def _mode_bfgs(post: Posterior, z0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mode of theta and the Hessian of -log p there (central differences)."""
    from scipy.optimize import minimize

    d = z0.size
    h = 1e-4
    E = np.eye(d) * h

    def fg(z):
        pts = np.vstack([z, z + E, z - E])
        v = -post.logpost(pts)
        if not np.isfinite(v[0]):
            return 1e300, np.zeros(d)
        grad = (v[1:d + 1] - v[d + 1:]) / (2 * h)
        return float(v[0]), np.where(np.isfinite(grad), grad, 0.0)

    res = minimize(fg, z0, jac=True, method="BFGS", options={"gtol": 1e-5, "maxiter": 200})
    z = res.x
    hh = 1e-3
    pts = [z]
    for i in range(d):
        for j in range(i, d):
            for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                e = np.zeros(d)
                e[i] += si * hh
                e[j] += sj * hh
                pts.append(z + e)
    v = -post.logpost(np.vstack(pts))
    Hs = np.zeros((d, d))
    k = 1
    for i in range(d):
        for j in range(i, d):
            fpp, fpm, fmp, fmm = v[k:k + 4]
            k += 4
            Hs[i, j] = Hs[j, i] = (fpp - fpm - fmp + fmm) / (4 * hh * hh)
    return z, Hs


def fit_fast(design, structure, priors, stats, *, draws: int, chains: int,
             rng: np.random.Generator) -> dict:
    """Sample the posterior by the fast path.

    Returns
    -------
    dict
        ``beta`` (chains, draws, p), ``sd`` (chains, draws, q), ``corr`` (chains, draws, q, q) or
        None, ``sigma`` (chains, draws) or None, ``b`` (chains, draws, levels, q), and
        ``pareto_k``, ``acceptance``, ``thin``.

    Raises
    ------
    Declined
        The mode or Hessian could not be found, or the proposal failed its checks.
    """
    post = Posterior(design, structure, priors, stats)
    q = post.q
    sy = float(np.std(design.y)) or 1.0
    z0 = np.concatenate([np.full(q, math.log(sy / 2)), np.zeros(len(post.pairs)),
                         [] if post.known_sd else [math.log(sy / 2)]])
    z, Hs = _mode(post, z0)
    try:
        Lh = np.linalg.cholesky(Hs)
    except np.linalg.LinAlgError:
        raise Declined("the Hessian at the mode is not positive definite") from None
    if not np.all(np.isfinite(Lh)):
        raise Declined("the Hessian at the mode is not finite")
    # proposal scale: widened inverse Hessian, Sigma = W W'
    center, W = z, PROPOSAL_WIDEN * np.linalg.inv(Lh).T
    N = chains * draws
    batch = _Batch(post, rng)
    batch.add(center, W, N // 2 if N >= 2 * PILOT_MIN else N)
    k, frac, wn = batch.psis()
    refit = k > 0.5 or frac < ESS_FRACTION
    if not refit and batch.size < N:
        batch.add(center, W, N - batch.size)
        k, frac, wn = batch.psis()
        refit = k > 0.5 or frac < ESS_FRACTION
    refits = int(refit)
    if refit:
        # refit the proposal to the importance-weighted moments (one adaptation; a pilot of a
        # quarter of the proposals gave worse refits, and Pareto k up to 0.77 where 2,000 gave
        # 0.04), and draw anew from it
        center, W = _refit(batch.zs, wn)
        batch = _Batch(post, rng)
        batch.add(center, W, N)
        k, frac, wn = batch.psis()
    thin = 1
    if frac < ESS_FRACTION:  # more proposals per kept draw
        thin = min(MAX_THIN, int(math.ceil(ESS_FRACTION / max(frac, 1e-3))))
        batch.add(center, W, N * thin - batch.size)
        k, frac, wn = batch.psis()
    target = min(ESS_TARGET, 0.2 * N)
    for attempt in range(3):
        if attempt:
            thin = min(MAX_THIN, 2 * thin)
            batch.add(center, W, N * thin - batch.size)
            k, frac, wn = batch.psis()
        if not k <= PARETO_K_MAX and refits < 2:
            # more proposals showed a heavier tail: adapt (again) to their weighted moments
            center, W = _refit(batch.zs, wn)
            refits += 1
            batch = _Batch(post, rng)
            batch.add(center, W, N * thin)
            k, frac, wn = batch.psis()
        if not k <= PARETO_K_MAX:
            raise Declined(f"Pareto k {k:.2f} of the proposal above {PARETO_K_MAX}")
        idx, rate = _chains(batch.lw, chains, draws, thin, rng)
        ess = _min_ess(batch.zs[idx])
        if ess >= target:
            break
        if thin == MAX_THIN:
            raise Declined(f"bulk ESS {ess:.0f} of the variance parameters below {target:.0f}")
    if rate < ACCEPT_MIN:
        raise Declined(f"acceptance rate {rate:.2f} of the proposal below {ACCEPT_MIN}")
    zs, kept = batch.zs, batch.kept
    mean, LA = kept["mean"], kept["LA"]
    flat = idx.ravel()
    sd, r, C, s2 = post.unpack(zs[flat])
    # beta | theta ~ N(mean, A^-1), A = LA LA': beta = mean + LA^-T e
    e = rng.standard_normal((flat.size, post.p))
    beta = mean[flat] + np.linalg.solve(np.swapaxes(LA[flat], 1, 2), e[:, :, None])[:, :, 0]
    b, logdet, quad = draw_block(post.stats, beta, C, s2, rng)
    corr = None
    if post.pairs:
        Lc = C / sd[:, :, None]
        corr = Lc @ np.swapaxes(Lc, 1, 2)
        corr = corr.reshape(chains, draws, q, q)
    return {"beta": beta.reshape(chains, draws, -1), "sd": sd.reshape(chains, draws, q),
            "corr": corr, "sigma": None if post.known_sd else np.sqrt(s2).reshape(chains, draws),
            "b": b.reshape((chains, draws) + b.shape[1:]), "pareto_k": k, "acceptance": rate,
            "thin": thin, "level_terms": (s2, logdet, quad)}


def _refit(zs: np.ndarray, wn: np.ndarray):
    """Centre and scale factor of the proposal refitted to the importance-weighted mean and
    covariance of the proposals ``zs`` (normalised weights ``wn``), widened."""
    m = wn @ zs
    cov = (zs - m).T @ ((zs - m) * wn[:, None])
    try:
        return m, PROPOSAL_WIDEN * np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise Declined("the importance-weighted covariance is singular") from None


class _Batch:
    """Proposals of one proposal distribution, their log densities under it and under the
    posterior, and what the conditional draws need (``kept``); :meth:`add` draws more (iid,
    so a batch grows instead of being redrawn when more proposals per kept draw are needed)."""

    def __init__(self, post: Posterior, rng):
        self.post, self.rng = post, rng
        self.parts = []

    def add(self, center, W, n: int) -> None:
        if n > 0:
            zs, lq = _propose(center, W, n, self.rng)
            lp, kept = self.post.logpost(zs, keep=True)
            self.parts.append((zs, lq, lp, kept))
            self._joined = None

    @property
    def size(self) -> int:
        return sum(p[0].shape[0] for p in self.parts)

    def _join(self):
        if self._joined is None:
            if len(self.parts) > 1:
                cat = [np.concatenate([p[i] for p in self.parts]) for i in range(3)]
                kept = {key: np.concatenate([p[3][key] for p in self.parts])
                        for key in self.parts[0][3]}
                self.parts = [(*cat, kept)]
            zs, lq, lp, kept = self.parts[0]
            lw = lp - lq
            if not np.isfinite(lw).any():
                raise Declined("no proposal has a finite posterior density")
            self._joined = (zs, np.where(np.isfinite(lw), lw, -np.inf), kept)
        return self._joined

    zs = property(lambda self: self._join()[0])
    lw = property(lambda self: self._join()[1])  # log importance ratios (-inf where undefined)
    kept = property(lambda self: self._join()[2])

    def psis(self):
        """Pareto k, relative ESS and normalised weights of the importance ratios."""
        return _psis(self.lw)


def _chains(lw: np.ndarray, chains: int, draws: int, thin: int, rng):
    """Independence Metropolis-Hastings over the proposals in order, ``draws * thin`` per chain,
    every ``thin``-th state kept: indices (chains, draws) into the proposals, acceptance rate.

    Each chain starts from one of its own proposals drawn with probability proportional to its
    importance ratio (sampling-importance resampling): approximately a posterior draw, never a
    proposal of zero posterior density.  Starting from the first proposal instead kept a raw
    proposal draw as the first draw when ``thin`` is 1 (once, one from the wide component at
    sd 8e7 with undefined beta, which made that posterior mean 4e4)."""
    u = np.log(rng.uniform(size=lw.size))
    ul, lwl = u.tolist(), lw.tolist()
    idx = np.empty((chains, draws), dtype=int)
    acc = 0
    per = draws * thin
    for c in range(chains):
        seg = lw[c * per:(c + 1) * per]
        fin = np.isfinite(seg)
        if not fin.any():
            raise Declined("a chain has no proposal with a finite posterior density")
        w = np.exp(np.where(fin, seg - seg[fin].max(), -np.inf))
        cur = c * per + int(rng.choice(per, p=w / w.sum()))
        cur_lw, states = lwl[cur], []
        for j in range(c * per, (c + 1) * per):  # Python floats: 10x numpy scalars here
            if j != cur and ul[j] < lwl[j] - cur_lw:
                cur, cur_lw = j, lwl[j]
                acc += 1
            states.append(cur)
        idx[c] = states[thin - 1::thin]
    return idx, acc / max(1, chains * per)


def _min_ess(z: np.ndarray) -> float:
    """Least bulk ESS over the columns of z (chains, draws, d)."""
    from .chaindiag import bulk_ess

    return float(np.min(bulk_ess(np.moveaxis(z, 2, 0))))


def chain_diagnostics(x: np.ndarray) -> tuple[float, float, float]:
    """R-hat (NaN for one chain), bulk ESS and tail ESS of one parameter's (chains, draws)
    draws: ``az.rhat(x)``, ``az.ess(x, method="bulk")``, ``az.ess(x, method="tail")``
    (:mod:`.chaindiag`, which also takes several parameters at once)."""
    from .chaindiag import diagnostics

    r, bulk, tail = diagnostics(np.asarray(x, dtype=float)[None])
    return float(r[0]), float(bulk[0]), float(tail[0])


def _propose(center, W, n: int, rng):
    """``n`` draws of the defensive mixture proposal and its log density (up to a constant):
    ``(1 - DEFENSIVE) t(center, W W') + DEFENSIVE t(center, DEFENSIVE_WIDTH^2 W W')``, both with
    PROPOSAL_DF df; the wide component bounds the importance ratios in the tails (a group sd's
    posterior can reach far towards zero on the log scale)."""
    d = center.size
    nu = PROPOSAL_DF
    e = rng.standard_normal((n, d))
    chi = rng.chisquare(nu, n)
    wide = rng.uniform(size=n) < DEFENSIVE
    x = e / np.sqrt(chi / nu)[:, None]
    x[wide] *= DEFENSIVE_WIDTH
    zs = center + x @ W.T
    r2 = np.sum(x * x, axis=1)
    l1 = -0.5 * (nu + d) * np.log1p(r2 / nu)
    l2 = -0.5 * (nu + d) * np.log1p(r2 / (nu * DEFENSIVE_WIDTH ** 2)) - d * math.log(DEFENSIVE_WIDTH)
    lq = np.logaddexp(math.log1p(-DEFENSIVE) + l1, math.log(DEFENSIVE) + l2)
    return zs, lq


def _psis(lw: np.ndarray):
    """Pareto k of the importance ratios, their relative effective sample size, and the
    normalised (smoothed) weights."""
    import arviz as az

    finite = np.isfinite(lw)
    lws, k = az.psislw(np.where(finite, lw, lw[finite].min() - 1e3).copy())
    w = np.exp(lws - lws.max())
    w /= w.sum()
    return float(np.asarray(k)), float(1.0 / np.sum(w ** 2) / lw.size), w


def to_idata(res: dict):
    """The fast path's draws as an InferenceData posterior (the names of :mod:`.model`)."""
    import arviz as az
    import xarray as xr

    nc, nd = res["beta"].shape[:2]
    cd = ("chain", "draw")
    post = {"beta": (cd + ("beta_dim_0",), res["beta"]), "sd0": (cd + ("sd0_dim_0",), res["sd"])}
    if res["corr"] is not None:
        post["corr0"] = (cd + ("corr0_dim_0", "corr0_dim_1"), res["corr"])
    if res["sigma"] is not None:
        post["sigma"] = (cd, res["sigma"])
    post["b0"] = (cd + ("b0_level", "b0_col"), res["b"])
    ds = xr.Dataset(post, coords={"chain": np.arange(nc), "draw": np.arange(nd)})
    return az.InferenceData(posterior=ds)


def level_loglik_group(res: dict, design, structure):
    """The per-level marginal log likelihood at the fast path's draws (``log_likelihood``
    group of the sampler's InferenceData; :func:`.idata.level_loglik` from the terms the draws
    of the random effects computed)."""
    import xarray as xr

    from .idata import MARGINAL_PER_LEVEL, level_loglik

    nc, nd = res["beta"].shape[:2]
    s2, logdet, quad = res["level_terms"]
    ll = level_loglik(design, structure, res["beta"].reshape(nc * nd, -1), s2, logdet, quad)
    return xr.Dataset({"y": (("chain", "draw", "level"), ll.reshape(nc, nd, -1))},
                      attrs={"likelihood": MARGINAL_PER_LEVEL})


__all__ = ["fit_fast", "why_not", "to_idata", "Declined", "Posterior", "PARETO_K_MAX"]


def try_fast(design, structure, priors, *, path: str, parameterization: str, sampler: str,
             draws: int, chains: int, seed: int):
    """The fast path's posterior and settings, or ``(None, reason)`` when NUTS must be used.

    ``path="auto"`` takes the fast path where it applies and ``parameterization`` and
    ``sampler`` are ``auto``; a failed proposal check falls back (the reason is recorded).
    ``path="fast"`` raises :class:`~workbench.errors.SpecError` where it does not apply.
    """
    import time

    from ..errors import SpecError
    from ..options import AUTO
    from .marginal import sufficient_stats

    if path == "nuts" or (path == AUTO and (parameterization != AUTO or sampler != AUTO)):
        return None, None
    reason = why_not(design, structure, priors)
    if reason is None and chains * draws < MIN_DRAWS:
        reason = f"fewer than {MIN_DRAWS} draws in all (its checks need them)"
    if reason is not None:
        if path == "fast":
            raise SpecError(f"path 'fast' does not apply: {reason}; use path='nuts'")
        return None, f"fast path does not apply: {reason}"
    t0 = time.perf_counter()
    with one_blas_thread():
        stats = sufficient_stats(design, structure)
        try:
            res = fit_fast(design, structure, priors, stats, draws=draws, chains=chains,
                           rng=np.random.default_rng(np.random.SeedSequence([seed, 12])))
        except Declined as exc:
            if path == "fast":
                raise SpecError(f"the fast path declined: {exc}; use path='nuts'") from None
            return None, f"fast path declined ({exc}); NUTS on the marginal model"
        idata = to_idata(res)
        seconds = time.perf_counter() - t0
        idata.add_groups(log_likelihood=level_loglik_group(res, design, structure))
    settings = {"sampling_seconds": seconds, "compile_seconds": 0.0,
                "sampler": "independence-mh", "parameterization": "marginal", "path": "fast",
                "pareto_k": res["pareto_k"], "acceptance": res["acceptance"], "thin": res["thin"],
                "tune": 0}
    return idata, settings
