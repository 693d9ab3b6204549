"""Residual correlation structures in the Bayesian fitter: nlme's ``cs`` and ``ar1``.

``workbench.fit(..., method="bayes", correlation="cs(~ 1 | g)" | "ar1(~ t | g)")`` is the model
the REML side fits (:mod:`workbench.gls.corstruct`): the residuals of a correlation group g
(its rows ordered by position t) have covariance ``sigma^2 R_g``, with

* cs:  ``R_g = (1 - rho) I + rho J``, ``rho`` in ``(-1 / (T_max - 1), 1)`` (nlme's ``Rho``);
* ar1: ``(R_g)_ij = phi^|t_i - t_j|``, ``phi`` in ``(-1, 1)`` (nlme's ``Phi``),

and, with random-effects terms on one grouping factor in which the correlation groups are
nested (``nlme::lme`` with a correlation), ``V_j = Z_j G Z_j' + sigma^2 R_j`` for each level j
(R_j block diagonal over the correlation groups of level j).

The likelihood is the collapsed (marginal) one of :mod:`.marginal` with the row precisions
``W`` replaced by the block-diagonal ``R^-1``: with ``U = [X, y, Z]`` (k columns) everything it
needs is the cross-product ``U_j' R_j^-1 U_j`` of each unit j (a level of the random-effects
factor, or everything when there is none) and ``log|R|``.  Both structures have closed forms
that make these cross-products *linear* in statistics of the data, with coefficients that are
functions of the one parameter alone, so no n x n (nor T x T) matrix enters the graph:

* cs, a group of T rows with column sums ``s_g = 1'U_g``: the explicit inverse
  ``R^-1 = (I - c_T J) / (1 - rho)``, ``c_T = rho / (1 + (T - 1) rho)``, and
  ``log|R| = (T - 1) log(1 - rho) + log(1 + (T - 1) rho)``, so::

      U'R^-1U = [ sum_g U_g'U_g - sum_T c_T sum_{|g| = T} s_g s_g' ] / (1 - rho)

* ar1: an AR(1) process observed at integer positions is Markov, so its precision is
  tridiagonal even with gaps: with ``e_1`` the first row of a group and, for each next row at a
  distance d, ``e_+ = phi^d e_- + sqrt(1 - phi^2d) w``::

      U'R^-1U = sum_first u u' + sum_d [P_d^{++} - phi^d (P_d^{+-} + P_d^{-+})
                                        + phi^2d P_d^{--}] / (1 - phi^2d)
      log|R|  = sum_d N_d log(1 - phi^2d)

  where ``P_d^{+-} = sum u_+ u_-'`` over the consecutive pairs of rows at distance d and
  ``N_d`` counts them (d = 1 only, for consecutive positions: the familiar tridiagonal
  precision of corAR1).

The statistics are the ``r_S`` stack (terms x units x k x k) and the counts ``r_m``
(:class:`ResidualStats`); the coefficients come from :func:`coefficients`, written once for
numpy (the pointwise likelihood, the conditional draws) and PyTensor (the model).  Groups that
share a size (cs) or a distance (ar1) share one coefficient.

The random effects are drawn afterwards from their Gaussian conditional given each posterior
draw (:func:`draw_ranef` of :mod:`.marginal` on that draw's ``R^-1``-weighted statistics).
``cs`` with a random intercept on the same groups is a legal but weakly identified model (both
add a constant within-group covariance); nlme fits it, and so does this, slowly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import DataError, NotYetSupportedError

#: Tidy name of each structure's parameter (the prior key and the InferenceData variable).
PARAMS = {"cs": "rho", "ar1": "phi"}
#: nlme's name of each structure's parameter (the record's ``corstruct`` entry).
NLME_NAMES = {"cs": "Rho", "ar1": "Phi"}
INTERNAL = "rcor"  # the parameter's name in the PyMC model


@dataclass(frozen=True)
class ResidualLayout:
    """What a compiled model depends on of the residual structure (part of the cache key).

    ``terms``: the distinct group sizes (cs) or distances between consecutive positions (ar1).
    """

    kind: str
    terms: tuple[int, ...]
    family: str


def lower_bound(kind: str, tmax: int) -> float:
    """The least admissible value of the parameter: ``-1 / (T_max - 1)`` (cs), -1 (ar1)."""
    return -1.0 / (tmax - 1) if kind == "cs" else -1.0


def coefficients(kind: str, terms, rho, log):
    """Coefficients of the cross-product statistics and of the log-determinant counts.

    Works elementwise on numpy arrays or PyTensor scalars (``log`` is ``np.log`` or
    ``pt.log``).

    Returns
    -------
    a : list
        One coefficient per slice of ``r_S`` (see :class:`ResidualStats`).
    b : list
        One per term: ``log|R|`` = sum_t b_t m_t.
    """
    if kind == "cs":
        inv = 1.0 / (1.0 - rho)
        a = [inv] + [-(rho / (1.0 + (T - 1) * rho)) * inv for T in terms]
        b = [(T - 1) * log(1.0 - rho) + log(1.0 + (T - 1) * rho) for T in terms]
        return a, b
    a, b = [1.0], []
    for d in terms:
        pd_ = rho ** d
        den = 1.0 - pd_ * pd_
        a += [1.0 / den, -pd_ / den, pd_ * pd_ / den]
        b.append(log(den))
    return a, b


class ResidualStats:
    """The data side of a residual structure: per-unit statistics, groups, positions.

    Parameters
    ----------
    design : Design
    structure : Structure
        The random-effects structure (no block, or one).
    codes, pos : ndarray (n,)
        Correlation group and integer position of each design row
        (:func:`workbench.gls.corstruct.correlation_rows`).
    kind : {"cs", "ar1"}
    group : str
        The correlation grouping column (messages).
    form : str
        The structure as written (messages, the record).

    Attributes
    ----------
    S : ndarray (K, units, k, k)
        The cross-product statistics of ``U = [X, y, Z]``, one slice per coefficient of
        :func:`coefficients`; units are the levels of the random-effects factor, or the
        correlation groups when there is none.
    m : ndarray (units, J)
        Per unit, the number of groups of each size (cs) or of pairs at each distance (ar1).
    terms : tuple of int
    tmax, ngroups : int
    """

    def __init__(self, design, structure, codes, pos, kind: str, group: str, form: str):
        if kind not in PARAMS:
            raise NotYetSupportedError(f"correlation structure '{kind}' is not implemented in "
                                       f"the Bayesian fitter; implemented: {', '.join(PARAMS)}")
        if len(structure.blocks) > 1:
            raise NotYetSupportedError(f"{form} with random effects on several grouping factors "
                                       "is not implemented in the Bayesian fitter; use one")
        self.kind, self.form, self.group = kind, form, group
        self.param = PARAMS[kind]
        codes = np.asarray(codes, dtype=np.int64)
        pos = np.asarray(pos, dtype=np.int64)
        n, p = design.X.shape
        self.p, self.n = p, n
        blk = structure.blocks[0] if structure.blocks else None
        Z = blk.Z if blk is not None else np.zeros((n, 0))
        self.q = Z.shape[1]
        U = np.column_stack([design.X, design.y_work, Z])
        self.k = U.shape[1]
        order = np.lexsort((pos, codes))
        c, t, U = codes[order], pos[order], U[order]
        starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
        ends = np.r_[starts[1:], n]
        sizes = ends - starts
        self.ngroups = len(starts)
        self.tmax = int(sizes.max())
        self.group_codes = codes  # design row order
        if self.tmax < 2:
            raise DataError(f"every group of '{group}' has one row: {form} has nothing to "
                            "correlate")
        if blk is not None:
            lev = blk.codes[order]
            mixed = np.flatnonzero(np.maximum.reduceat(lev, starts)
                                   != np.minimum.reduceat(lev, starts))
            if mixed.size:
                raise NotYetSupportedError(
                    f"the correlation groups of {form} are not nested in the random-effects "
                    f"grouping '{blk.group}' (a group of '{group}' has rows in several of its "
                    f"levels); nlme::lme's residual correlation needs them nested")
            unit_of_group = lev[starts]
            self.units = blk.nlevels
        else:
            unit_of_group = np.arange(self.ngroups)
            self.units = self.ngroups
        self.unit_of_group = unit_of_group
        outer = U[:, :, None] * U[:, None, :]  # (n, k, k)
        unit_row = np.repeat(unit_of_group, sizes)
        slices, m = [], []
        if kind == "cs":
            self.terms = tuple(int(T) for T in np.unique(sizes))
            slices.append(self._sum(outer, unit_row))
            colsum = np.add.reduceat(U, starts, axis=0)  # (groups, k)
            gouter = colsum[:, :, None] * colsum[:, None, :]
            for T in self.terms:
                sel = sizes == T
                slices.append(self._sum(gouter[sel], unit_of_group[sel]))
                m.append(np.bincount(unit_of_group[sel], minlength=self.units))
        else:
            first = np.zeros(n, dtype=bool)
            first[starts] = True
            slices.append(self._sum(outer[first], unit_row[first]))
            nxt = np.flatnonzero(~first)  # rows with a predecessor in their group
            gap = t[nxt] - t[nxt - 1]
            self.terms = tuple(int(d) for d in np.unique(gap))
            for d in self.terms:
                i1 = nxt[gap == d]
                i0 = i1 - 1
                u1, u0 = U[i1], U[i0]
                cross = u1[:, :, None] * u0[:, None, :]
                un = unit_row[i1]
                slices += [self._sum(outer[i1], un),
                           self._sum(cross + np.swapaxes(cross, 1, 2), un),
                           self._sum(outer[i0], un)]
                m.append(np.bincount(un, minlength=self.units))
        self.S = np.stack(slices)
        self.m = np.stack(m, axis=1).astype(float)
        self.rows_per_unit = np.bincount(unit_row, minlength=self.units).astype(float)

    def _sum(self, outer, unit):
        out = np.zeros((self.units, self.k, self.k))
        np.add.at(out, unit, outer)
        return out

    # ------------------------------------------------------------------ model
    def layout(self, family: str) -> ResidualLayout:
        return ResidualLayout(self.kind, self.terms, family)

    def model_data(self) -> dict[str, np.ndarray]:
        """The ``pm.Data`` the model reads: ``r_S`` (one unit when there are no random effects),
        ``r_m`` (total counts), ``r_n``."""
        S = self.S if self.q else self.S.sum(axis=1, keepdims=True)
        return {"r_S": S, "r_m": self.m.sum(axis=0), "r_n": np.asarray(float(self.n))}

    def unit_cross(self, rho: np.ndarray):
        """Per draw and unit, ``U_j'R_j^-1U_j`` (S, units, k, k) and ``log|R_j|`` (S, units)."""
        rho = np.asarray(rho, dtype=float)
        a, b = coefficients(self.kind, self.terms, rho, np.log)
        A = np.stack([np.broadcast_to(x, rho.shape) for x in a], axis=-1)
        B = np.stack([np.broadcast_to(x, rho.shape) for x in b], axis=-1)
        return np.einsum("st,tuij->suij", A, self.S), B @ self.m.T

    def pointwise_loglik(self, beta, sigma, rho, sd=None, corr=None):
        """``log N(y_j | X_j beta, V_j)`` per draw and unit (level, or correlation group):
        shape (S, units); ``V_j = Z_j G Z_j' + sigma^2 R_j`` (see the module)."""
        S = beta.shape[0]
        out = np.empty((S, self.units))
        chunk = max(1, 2**21 // (self.units * self.k * self.k))  # draws per pass (memory)
        for a in range(0, S, chunk):
            sl = slice(a, min(S, a + chunk))
            out[sl] = self._loglik(beta[sl], sigma[sl], rho[sl],
                                   None if sd is None else sd[sl],
                                   None if corr is None else corr[sl])
        return out

    def _loglik(self, beta, sigma, rho, sd, corr):
        p = self.p
        cross, logdetR = self.unit_cross(rho)
        s2 = sigma ** 2
        w = np.concatenate([-beta, np.ones((beta.shape[0], 1))], axis=1)  # r = [X y] w
        quad = np.einsum("si,suij,sj->su", w, cross[:, :, :p + 1, :p + 1], w)
        nu = self.rows_per_unit[None, :]
        val = nu * math.log(2 * math.pi) + logdetR + nu * np.log(s2)[:, None] + quad / s2[:, None]
        if self.q:
            C = self._chol(sd, corr)
            A = cross[:, :, p + 1:, p + 1:]
            zr = np.einsum("suai,si->sua", cross[:, :, p + 1:, :p + 1], w)
            M = np.eye(self.q) + np.einsum("sai,suab,sbj->suij", C, A, C) / s2[:, None, None, None]
            v = np.einsum("sai,sua->sui", C, zr) / s2[:, None, None]
            _, logdetM = np.linalg.slogdet(M)
            vq = np.einsum("sui,sui->su", v, np.linalg.solve(M, v[..., None])[..., 0])
            val = val + logdetM - vq
        return -0.5 * val

    def _chol(self, sd, corr):
        q = self.q
        if corr is None:
            Lc = np.broadcast_to(np.eye(q), (sd.shape[0], q, q))
        else:
            Lc = np.linalg.cholesky(corr + 1e-12 * np.eye(q))
        return sd[:, :, None] * Lc

    def draw_ranef(self, beta, sigma, rho, sd, corr, rng) -> np.ndarray:
        """Exact draws of the random effects given each posterior draw: (S, levels, q)."""
        from .marginal import draw_ranef

        p, q, S = self.p, self.q, beta.shape[0]
        out = np.empty((S, self.units, q))
        C = self._chol(sd, corr)
        for s in range(S):
            cross, _ = self.unit_cross(rho[s:s + 1])
            cr = cross[0]
            stats = {"m_ZtWZ": cr[:, p + 1:, p + 1:], "m_ZtWX": cr[:, p + 1:, :p],
                     "m_ZtWy": cr[:, p + 1:, p]}
            out[s] = draw_ranef(stats, beta[s:s + 1], [C[s:s + 1]], sigma[s:s + 1] ** 2,
                                [q], [self.units], rng)[0][0]
        return out


# --------------------------------------------------------------------------- predictive
def correlated_noise(kind: str, codes, pos, rho, rng) -> np.ndarray:
    """Draws of ``e ~ N(0, R(rho))`` for every row, one row of draws per value of ``rho``:
    shape (S, n), rows in the order of ``codes``/``pos``.

    cs: with ``P`` the group mean, ``e = sqrt(1 - rho) (z - Pz) + sqrt(1 + (T - 1) rho) Pz``
    (covariance ``(1 - rho)(I - P) + (1 + (T - 1) rho) P = R``, negative rho included);
    ar1: the Markov recursion ``e_+ = phi^d e_- + sqrt(1 - phi^2d) z`` along each group's
    positions.
    """
    codes, pos = np.asarray(codes), np.asarray(pos)
    rho = np.asarray(rho, dtype=float)
    S, n = rho.size, codes.size
    z = rng.standard_normal((S, n))
    order = np.lexsort((pos, codes))
    c, t = codes[order], pos[order]
    zs = z[:, order]
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    sizes = np.diff(np.r_[starts, n])
    e = np.empty_like(zs)
    r = rho[:, None]
    if kind == "cs":
        T = np.repeat(sizes, sizes)[None, :].astype(float)
        mean = np.repeat(np.add.reduceat(zs, starts, axis=1) / sizes, sizes, axis=1)
        e = np.sqrt(1 - r) * (zs - mean) + np.sqrt(np.maximum(1 + (T - 1) * r, 0.0)) * mean
    else:
        first = np.zeros(n, dtype=bool)
        first[starts] = True
        for i in range(n):
            if first[i]:
                e[:, i] = zs[:, i]
            else:
                pd_ = r[:, 0] ** int(t[i] - t[i - 1])
                e[:, i] = pd_ * e[:, i - 1] + np.sqrt(1 - pd_ * pd_) * zs[:, i]
    out = np.empty_like(e)
    out[:, order] = e
    return out


def predictive_noise(fit, rho):
    """``noise(rng, S)`` for :mod:`.draws`: correlated unit-variance residual draws of a fit
    with a residual structure (None for any other fit)."""
    cst = (fit.diagnostics or {}).get("corstruct")
    cd = getattr(fit.state.idata, "constant_data", None)
    if not cst or cd is None or "corr_group" not in cd:
        return None
    codes = np.asarray(cd["corr_group"].values)
    pos = np.asarray(cd["corr_position"].values)
    return lambda rng, S: correlated_noise(cst["structure"], codes, pos, rho[:S], rng)


# --------------------------------------------------------------------------- PyMC graph
def loglik_graph(res: ResidualLayout, d: dict, beta, chols: list, s2, rho, p: int,
                 q_list: list[int], levels: list[int]):
    """PyTensor log likelihood of y given (beta, G, s2, rho) (see the module)."""
    import pytensor.tensor as pt

    from .marginal import loglik_graph as collapsed

    a, b = coefficients(res.kind, res.terms, rho, pt.log)
    cross = pt.tensordot(pt.stack([pt.as_tensor(x) for x in a]), d["r_S"], axes=1)
    logdetR = pt.dot(pt.stack([pt.as_tensor(x) for x in b]), d["r_m"])
    XX = pt.sum(cross[:, :p, :p], axis=0)
    Xy = pt.sum(cross[:, :p, p], axis=0)
    yy = pt.sum(cross[:, p, p])
    if not chols:
        n = d["r_n"]
        rWr = yy - 2.0 * pt.dot(beta, Xy) + pt.dot(beta, pt.dot(XX, beta))
        return -0.5 * (n * math.log(2 * math.pi) + logdetR + n * pt.log(s2) + rWr / s2)
    stats = {"m_XtWX": XX, "m_XtWy": Xy, "m_ytWy": yy, "m_n": d["r_n"], "m_sumlogw": -logdetR,
             "m_ZtWZ": cross[:, p + 1:, p + 1:], "m_ZtWX": cross[:, p + 1:, :p],
             "m_ZtWy": cross[:, p + 1:, p]}
    return collapsed(stats, beta, chols, s2, q_list, levels)


# --------------------------------------------------------------------------- the fit
class Residual:
    """What :func:`~.fit.assemble_bayes_fit` adds to a fit with a residual structure: the
    parameter's draws (convergence), and in the InferenceData the parameter under its tidy
    name, its prior draws, the correlation groups and positions, and the pointwise likelihood
    of the correlated model."""

    def __init__(self, stats: ResidualStats, pos: np.ndarray):
        self.stats, self.pos = stats, np.asarray(pos)
        self.param = stats.param

    def posterior_draws(self, raw_posterior) -> np.ndarray:
        return np.asarray(raw_posterior[INTERNAL].values, dtype=float).reshape(-1)

    def annotate(self, native, raw, design, structure, priors, seed: int, n_prior: int = 500):
        """Add the parameter, its prior draws, the groups and positions and the pointwise
        likelihood to the native InferenceData (in place, before the fit is built)."""
        import xarray as xr

        from .idata import MARGINAL_PER_LEVEL, arrays_from_native
        from .priors import FAMILIES

        st = self.stats
        post = native.posterior
        nc, nd = post.sizes["chain"], post.sizes["draw"]
        rho = self.posterior_draws(raw.posterior)
        cc = {"chain": post.coords["chain"], "draw": post.coords["draw"]}
        post[self.param] = xr.DataArray(rho.reshape(nc, nd), dims=("chain", "draw"), coords=cc)
        if hasattr(native, "prior"):
            pr = native.prior
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), 17]))
            prior = priors[self.param]
            draws = FAMILIES[prior.family].sample(prior.args, rng, pr.sizes["draw"])
            pr[self.param] = xr.DataArray(draws.reshape(1, -1), dims=("chain", "draw"),
                                          coords={"chain": pr.coords["chain"],
                                                  "draw": pr.coords["draw"]})
        arrays = arrays_from_native(post, structure)
        ll = st.pointwise_loglik(arrays["beta"], arrays["sigma"], rho,
                                 arrays["sd"][0] if st.q else None,
                                 arrays["corr"][0] if st.q else None)
        dim = f"{structure.blocks[0].group}_level" if st.q else f"{st.group}_group"
        coords = dict(cc)
        coords[dim] = (list(structure.blocks[0].levels) if st.q
                       else _group_labels(st))
        native.log_likelihood["y"] = xr.DataArray(ll.reshape(nc, nd, -1),
                                                  dims=("chain", "draw", dim), coords=coords)
        native.log_likelihood = native.log_likelihood[["y"]]
        native.log_likelihood.attrs["likelihood"] = MARGINAL_PER_LEVEL
        native.log_likelihood.attrs["correlation"] = st.form
        cd = native.constant_data
        obs = cd.coords["obs"]
        cd["corr_group"] = xr.DataArray(st.group_codes, dims=("obs",), coords={"obs": obs})
        cd["corr_position"] = xr.DataArray(self.pos, dims=("obs",), coords={"obs": obs})
        cd.attrs["correlation"] = st.form


def _group_labels(st: ResidualStats) -> list[str]:
    return [str(i) for i in range(st.ngroups)]


def summary(stats: ResidualStats, draws: np.ndarray, level: float = 0.95) -> dict:
    """The record's ``corstruct`` entry: nlme's name -> posterior mean, the equal-tailed
    credible interval (``"interval"``, and ``"intervals"`` by name as the likelihood fitters
    write it), the posterior sd, the number of groups."""
    lo, hi = np.quantile(draws, [0.5 - level / 2, 0.5 + level / 2])
    name = NLME_NAMES[stats.kind]
    return {"structure": stats.kind, "form": stats.form,
            name: float(np.mean(draws)), "interval": [float(lo), float(hi)],
            "intervals": {name: [float(lo), float(hi)]},
            "sd": float(np.std(draws, ddof=1)) if draws.size > 1 else 0.0,
            "groups": stats.ngroups, "estimate": "posterior mean"}


__all__ = ["PARAMS", "NLME_NAMES", "INTERNAL", "ResidualLayout", "ResidualStats", "Residual",
           "coefficients", "lower_bound", "loglik_graph", "summary", "correlated_noise",
           "predictive_noise"]
