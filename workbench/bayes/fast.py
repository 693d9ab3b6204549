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
   posterior mode with the inverse Hessian (widened by :data:`PROPOSAL_WIDEN`) as scale;
2. when the importance ratios' Pareto k (PSIS, :func:`arviz.psislw`) exceeds 0.5 or their
   relative ESS is below :data:`ESS_FRACTION`, the proposal is refitted once to the
   importance-weighted mean and covariance;
3. the chains run over ``thin`` proposals per kept draw, ``thin`` doubled (up to
   :data:`MAX_THIN`) until every variance parameter's bulk ESS reaches :data:`ESS_TARGET`.

Above :data:`PARETO_K_MAX`, with acceptance below :data:`ACCEPT_MIN`, or short of the ESS at
``MAX_THIN``, :func:`fit_fast` declines (:class:`Declined`) and ``fit_bayes`` falls back to NUTS
on the marginal model.  ``beta`` is then drawn from its Gaussian conditional, and the random
effects from theirs, ``u_j ~ N(M_j^-1 v_j, M_j^-1)`` (:func:`_ranef`), one exact draw per kept
state.

The priors are those of :mod:`.priors` (the PyMC model's), written here as numpy log densities
on the parameter (with the log-transform Jacobian): the posterior is the marginal NUTS one.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

from .. import names
from ..errors import FastPathDeclined
from .marginal import level_cholesky

PARETO_K_MAX = 0.7
ACCEPT_MIN = 0.2  # a last guard: the chains are exact whatever the proposal, and the Pareto k and
# bulk ESS checks bound the error (replicates at 0.26-0.30 agreed with marginal NUTS)
PROPOSAL_DF = 4.0
PROPOSAL_WIDEN = 1.2
ESS_FRACTION = 0.45  # least importance-sampling ESS per proposal before drawing more per kept draw
MAX_THIN = 8
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

    def _logpost(self, z, keep):
        st, q = self.stats, self.q
        sd, r, C, s2 = self.unpack(z)
        inv = (1.0 / s2)[:, None]
        A, ZX, Zy = st["m_ZtWZ"], st["m_ZtWX"], st["m_ZtWy"]
        c, L = level_cholesky(A, C, inv)
        logdetM = 0.0
        for j in range(q):
            logdetM = logdetM + 2.0 * np.log(L[j][j])
        inv3 = inv[:, :, None]
        av, Bv = [], []
        for i in range(q):
            cy = sum(c[a][i] * Zy[None, :, a] for a in range(q)) * inv
            cx = sum(c[a][i][:, :, None] * ZX[None, :, a, :] for a in range(q)) * inv3
            for k in range(i):
                cy = cy - L[i][k] * av[k]
                cx = cx - L[i][k][:, :, None] * Bv[k]
            av.append(cy / L[i][i])
            Bv.append(cx / L[i][i][:, :, None])
        s2i = 1.0 / s2
        H = st["m_XtWX"][None] * s2i[:, None, None]
        g = st["m_XtWy"][None] * s2i[:, None]
        cc = float(st["m_ytWy"]) * s2i
        for i in range(q):
            H = H - np.swapaxes(Bv[i], 1, 2) @ Bv[i]
            g = g - (np.swapaxes(Bv[i], 1, 2) @ av[i][:, :, None])[:, :, 0]
            cc = cc - np.sum(av[i] ** 2, axis=1)
        D = self.prec
        Amat = H + np.diag(D)[None]
        bvec = g + (D * self.pmean)[None]
        n = float(st["m_n"])
        LA, mean, logdetA, ok = _chol_solve(Amat, bvec)
        ll = -0.5 * (n * np.log(s2) + np.sum(logdetM, axis=1) + cc
                     + float(np.sum(D * self.pmean ** 2)) - np.sum(bvec * mean, axis=1) + logdetA)
        lp = ll + sum(_log_scale_prior(pr, sd[:, i]) for i, pr in enumerate(self.sd_priors))
        for t, (_, eta) in enumerate(self.pairs):
            lp = lp + eta * np.log1p(-r[:, t] ** 2)  # LKJ(eta) on r, times dr/dz = 1 - r^2
        if not self.known_sd:
            lp = lp + _log_scale_prior(self.sigma_prior, np.sqrt(s2))
        lp = np.where(ok & np.isfinite(lp), lp, -np.inf)
        if keep:
            return lp, {"mean": mean, "LA": LA, "L": L, "a": av, "B": Bv, "C": C}
        return lp


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


def _mode(post: Posterior, z0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    thin = 1
    for stage in range(3):
        zs, lq = _propose(center, W, N * thin, rng)
        lp, kept = post.logpost(zs, keep=True)
        lw = lp - lq
        if not np.isfinite(lw).any():
            raise Declined("no proposal has a finite posterior density")
        lw = np.where(np.isfinite(lw), lw, -np.inf)
        k, frac, wn = _psis(lw)
        if stage == 0 and (k > 0.5 or frac < ESS_FRACTION):
            # refit the proposal to the importance-weighted moments (one adaptation)
            m = wn @ zs
            cov = (zs - m).T @ ((zs - m) * wn[:, None])
            try:
                center, W = m, PROPOSAL_WIDEN * np.linalg.cholesky(cov)
            except np.linalg.LinAlgError:
                raise Declined("the importance-weighted covariance is singular") from None
            continue
        if thin == 1 and frac < ESS_FRACTION:
            thin = min(MAX_THIN, int(math.ceil(ESS_FRACTION / max(frac, 1e-3))))
            continue  # more proposals per kept draw
        break
    target = min(ESS_TARGET, 0.2 * N)
    for attempt in range(3):
        if attempt:
            thin = min(MAX_THIN, 2 * thin)
            zs, lq = _propose(center, W, N * thin, rng)
            lp, kept = post.logpost(zs, keep=True)
            lw = np.where(np.isfinite(lp - lq), lp - lq, -np.inf)
            k = _psis(lw)[0]
        if not k <= PARETO_K_MAX:
            raise Declined(f"Pareto k {k:.2f} of the proposal above {PARETO_K_MAX}")
        idx, rate = _chains(lw, chains, draws, thin, rng)
        ess = _min_ess(zs[idx])
        if ess >= target:
            break
        if thin == MAX_THIN:
            raise Declined(f"bulk ESS {ess:.0f} of the variance parameters below {target:.0f}")
    if rate < ACCEPT_MIN:
        raise Declined(f"acceptance rate {rate:.2f} of the proposal below {ACCEPT_MIN}")
    mean, LA = kept["mean"], kept["LA"]
    flat = idx.ravel()
    sd, r, C, s2 = post.unpack(zs[flat])
    # beta | theta ~ N(mean, A^-1), A = LA LA': beta = mean + LA^-T e
    e = rng.standard_normal((flat.size, post.p))
    beta = mean[flat] + np.linalg.solve(np.swapaxes(LA[flat], 1, 2), e[:, :, None])[:, :, 0]
    b = _ranef(kept, flat, beta, rng)
    corr = None
    if post.pairs:
        Lc = C / sd[:, :, None]
        corr = Lc @ np.swapaxes(Lc, 1, 2)
        corr = corr.reshape(chains, draws, q, q)
    return {"beta": beta.reshape(chains, draws, -1), "sd": sd.reshape(chains, draws, q),
            "corr": corr, "sigma": None if post.known_sd else np.sqrt(s2).reshape(chains, draws),
            "b": b.reshape((chains, draws) + b.shape[1:]), "pareto_k": k, "acceptance": rate,
            "thin": thin}


def _chains(lw: np.ndarray, chains: int, draws: int, thin: int, rng):
    """Independence Metropolis-Hastings over the proposals in order, ``draws * thin`` per chain,
    every ``thin``-th state kept: indices (chains, draws) into the proposals, acceptance rate.

    Each chain starts from one of its own proposals drawn with probability proportional to its
    importance ratio (sampling-importance resampling): approximately a posterior draw, never a
    proposal of zero posterior density.  Starting from the first proposal instead kept a raw
    proposal draw as the first draw when ``thin`` is 1 (once, one from the wide component at
    sd 8e7 with undefined beta, which made that posterior mean 4e4)."""
    u = np.log(rng.uniform(size=lw.size))
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
        for t in range(per):
            j = c * per + t
            if j != cur and u[j] < lw[j] - lw[cur]:
                cur = j
                acc += 1
            if t % thin == thin - 1:
                idx[c, t // thin] = cur
    return idx, acc / max(1, chains * per)


def _min_ess(z: np.ndarray) -> float:
    """Least bulk ESS over the columns of z (chains, draws, d)."""
    ess = _ess_functions()[1]
    return min(float(ess(z[:, :, i])) for i in range(z.shape[2]))


def _ess_functions():
    """ArviZ's rank-normalised R-hat, bulk ESS and tail ESS of one (chains, draws) array.

    ArviZ's array kernels (``_rhat_rank``, ``_ess_bulk``, ``_ess_tail``: the numbers
    ``az.rhat`` / ``az.ess`` return, without their per-call conversion to a Dataset, which
    costs about 20x the computation for the few thousand draws of a fit); the public functions
    where a future ArviZ renames them."""
    try:
        from arviz.stats.diagnostics import _ess_bulk, _ess_tail, _rhat_rank
        return _rhat_rank, _ess_bulk, _ess_tail
    except ImportError:  # pragma: no cover - depends on the ArviZ version
        import arviz as az

        return (lambda x: float(az.rhat(x)), lambda x: float(az.ess(x, method="bulk")),
                lambda x: float(az.ess(x, method="tail")))


def chain_diagnostics(x: np.ndarray) -> tuple[float, float, float]:
    """R-hat (NaN for one chain), bulk ESS and tail ESS of one parameter's (chains, draws)
    draws: exactly ``az.rhat(x)``, ``az.ess(x, method="bulk")``, ``az.ess(x, method="tail")``."""
    rhat, bulk, tail = _ess_functions()
    r = float(rhat(x)) if x.shape[0] > 1 else math.nan
    return r, float(bulk(x)), float(tail(x))


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


def _ranef(kept: dict, idx: np.ndarray, beta: np.ndarray, rng) -> np.ndarray:
    """Exact draws of the random effects given (theta, beta): with ``M_j = L_j L_j'``,
    ``u_j ~ N(M_j^-1 v_j, M_j^-1)`` where ``L_j^-1 v_j = a_j - B_j beta``, so
    ``u_j = L_j^-T (a_j - B_j beta + e)`` and ``b_j = C u_j``.  Returns (S, levels, q)."""
    L, a, B, C = kept["L"], kept["a"], kept["B"], kept["C"][idx]
    q = len(a)
    w = [a[i][idx] - np.einsum("slp,sp->sl", B[i][idx], beta) for i in range(q)]
    w = [wi + rng.standard_normal(wi.shape) for wi in w]
    x = [None] * q
    for i in reversed(range(q)):
        t = w[i]
        for k in range(i + 1, q):
            t = t - L[k][i][idx] * x[k]
        x[i] = t / L[i][i][idx]
    return np.stack([sum(C[:, a_, i][:, None] * x[i] for i in range(q)) for a_ in range(q)],
                    axis=-1)


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
    stats = sufficient_stats(design, structure)
    try:
        res = fit_fast(design, structure, priors, stats, draws=draws, chains=chains,
                       rng=np.random.default_rng(np.random.SeedSequence([seed, 12])))
    except Declined as exc:
        if path == "fast":
            raise SpecError(f"the fast path declined: {exc}; use path='nuts'") from None
        return None, f"fast path declined ({exc}); NUTS on the marginal model"
    idata = to_idata(res)
    settings = {"sampling_seconds": time.perf_counter() - t0, "compile_seconds": 0.0,
                "sampler": "independence-mh", "parameterization": "marginal", "path": "fast",
                "pareto_k": res["pareto_k"], "acceptance": res["acceptance"], "thin": res["thin"],
                "tune": 0}
    return idata, settings
