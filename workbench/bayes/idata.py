"""The sampler's InferenceData -> ArviZ's, under the workbench's parameter names.

Groups and variables (``S`` draws per chain; dimensions by name):

* ``posterior``: ``beta`` (``coefficient``: the fixed-effect names), ``sd`` (``term``:
  ``GROUP:TERM``), ``cor`` (``pair``: ``GROUP:T1,T2``; only with correlated terms), ``sigma``
  (scalar; not with known sds), and per grouping factor ``b_GROUP`` (``GROUP_level``,
  ``GROUP_term``): the group effects.  ArviZ prints ``beta[Days]``, ``sd[Subject:Days]``,
  ``cor[Subject:(Intercept),Days]``: exactly the tidy names of :mod:`workbench.names`.
* ``prior``: the same variables drawn from the priors (one chain); absent when a prior is
  improper (``Flat``, ``HalfFlat``), and ``attrs["prior"]`` says why.
* ``observed_data``: ``y`` (``obs``), the response as fitted (offset included).
* ``constant_data``: ``X`` (``obs``, ``coefficient``), per factor ``GROUP_index`` (``obs``:
  level codes) and ``Z_GROUP`` (``obs``, ``GROUP_term``), and ``offset``, ``weights``,
  ``known_sd`` when the model has them.
* ``log_likelihood``: ``y``, pointwise, so ``az.loo`` / ``az.waic`` / ``az.compare`` run on it.
  Which likelihood is in ``attrs["likelihood"]``:

  - ``"marginal per level"`` (the marginal parameterisation with one grouping factor): the
    random effects integrated out, one term per level j of the factor,
    ``log N(y_j | X_j beta, Z_j G Z_j' + s2 W_j^-1)``, dimension ``GROUP_level``.  The levels
    are independent given (beta, G, s2), so the terms sum to the model's likelihood, and
    leave-one-out leaves out one *group*: it predicts a new group.
  - ``"conditional per observation"`` (the other parameterisations, and the marginal one with
    several factors): ``log N(y_i | x_i beta + z_i b, s2 / w_i)`` given the group effects,
    dimension ``obs``; leave-one-out leaves out one observation of a known group.

  ``az.compare`` needs the same pointwise units in every fit: compare fits whose
  ``attrs["likelihood"]`` agree.
* ``sample_stats``: the sampler's, as it returned them.

The fitter's internal names (``sd0``, ``corr0``, ``b0``, ``pbeta_*``) live only in the sampler's
output: :func:`native_inference_data` is the one place they are converted.
"""

from __future__ import annotations

import math

import numpy as np

from .. import names

MARGINAL_PER_LEVEL = "marginal per level"
CONDITIONAL_PER_OBS = "conditional per observation"


def _flat(post, name):
    a = np.asarray(post[name].values, dtype=float)
    return a.reshape((-1,) + a.shape[2:])


def raw_arrays(post, structure) -> dict:
    """The sampler's posterior (internal names) as arrays in the layout of
    :func:`workbench.bayes.draws.posterior_arrays`."""
    out = {"beta": _flat(post, "beta"), "sd": [], "corr": [], "b": [],
           "sigma": _flat(post, "sigma") if "sigma" in post else None}
    for k, _ in enumerate(structure.blocks):
        out["sd"].append(_flat(post, f"sd{k}"))
        out["corr"].append(_flat(post, f"corr{k}") if f"corr{k}" in post else None)
        out["b"].append(_flat(post, f"b{k}") if f"b{k}" in post else None)
    return out


def _pairs(structure):
    """(block index, i, j, name) of every correlation the model has."""
    for k, blk in enumerate(structure.blocks):
        for _, sl in blk.terms:
            for i in range(sl.start, sl.stop):
                for j in range(i + 1, sl.stop):
                    yield k, i, j, names.cor(blk.group, blk.columns[i], blk.columns[j])


def dataset_from_arrays(arrays: dict, design, structure, nchains: int, ndraws: int) -> dict:
    """Named variables (``beta``, ``sd``, ``cor``, ``sigma``, ``b_GROUP``) with dimensions and
    coordinates, shaped (chain, draw, ...): the argument of ``az.from_dict``."""
    shape = (nchains, ndraws)
    out = {"beta": arrays["beta"].reshape(shape + arrays["beta"].shape[1:])}
    if arrays["sd"]:  # a model without random effects (a residual structure) has none
        out["sd"] = np.concatenate(arrays["sd"], axis=1).reshape(shape + (-1,))
    pairs = list(_pairs(structure))
    if pairs:
        out["cor"] = np.stack([arrays["corr"][k][:, i, j] for k, i, j, _ in pairs],
                              axis=1).reshape(shape + (-1,))
    if arrays["sigma"] is not None:
        out["sigma"] = arrays["sigma"].reshape(shape)
    for blk, b in zip(structure.blocks, arrays["b"]):
        if b is not None:
            out[f"b_{blk.group}"] = b.reshape(shape + b.shape[1:])
    return out


def dims_and_coords(design, structure) -> tuple[dict, dict]:
    """ArviZ ``dims`` and ``coords`` of every variable of the native groups."""
    dims = {"beta": ["coefficient"], "sd": ["term"], "cor": ["pair"], "y": ["obs"],
            "X": ["obs", "coefficient"], "offset": ["obs"], "weights": ["obs"],
            "known_sd": ["obs"]}
    coords = {"coefficient": list(design.fixed_names), "obs": np.arange(design.n),
              "term": [names.sd(b.group, c)[3:-1] for b in structure.blocks for c in b.columns],
              "pair": [nm[4:-1] for *_, nm in _pairs(structure)]}
    for blk in structure.blocks:
        g = blk.group
        dims[f"b_{g}"] = [f"{g}_level", f"{g}_term"]
        dims[f"{g}_index"] = ["obs"]
        dims[f"Z_{g}"] = ["obs", f"{g}_term"]
        coords[f"{g}_level"] = list(blk.levels)
        coords[f"{g}_term"] = list(blk.columns)
    return dims, coords


def arrays_from_native(post, structure) -> dict:
    """The inverse of :func:`dataset_from_arrays`: a native posterior (or prior) as arrays in
    the layout of :func:`workbench.bayes.draws.posterior_arrays`."""
    out = {"beta": _flat(post, "beta"), "sd": [], "corr": [], "b": [],
           "sigma": _flat(post, "sigma") if "sigma" in post else None}
    sd = _flat(post, "sd") if "sd" in post else None
    cor = _flat(post, "cor") if "cor" in post else None
    pairs = list(_pairs(structure))
    start = 0
    for k, blk in enumerate(structure.blocks):
        out["sd"].append(sd[:, start:start + blk.q])
        start += blk.q
        mine = [(m, i, j) for m, (kk, i, j, _) in enumerate(pairs) if kk == k]
        if mine:
            c = np.broadcast_to(np.eye(blk.q), (sd.shape[0], blk.q, blk.q)).copy()
            for m, i, j in mine:
                c[:, i, j] = c[:, j, i] = cor[:, m]
            out["corr"].append(c)
        else:
            out["corr"].append(None)
        key = f"b_{blk.group}"
        out["b"].append(_flat(post, key) if key in post else None)
    return out


# --------------------------------------------------------------------------- log likelihood
def _residual_scale(design, sigma):
    """Per-row residual sd, shape (S, n) or (1, n): sigma (or the known sd) over sqrt(w)."""
    sd = design.known_sd[None, :] if design.known_sd is not None else sigma[:, None]
    if design.weights is not None:
        sd = sd / np.sqrt(design.weights)[None, :]
    return sd


def conditional_loglik(arrays: dict, design, structure) -> np.ndarray:
    """``log N(y_i | x_i beta + offset_i + z_i b, s_i^2)`` per draw and row: shape (S, n)."""
    mu = arrays["beta"] @ design.X.T
    for blk, b in zip(structure.blocks, arrays["b"]):
        mu = mu + np.einsum("sni,ni->sn", b[:, blk.codes, :], blk.Z)
    sd = _residual_scale(design, arrays["sigma"])
    z = (design.y_work[None, :] - mu) / sd
    return -0.5 * z ** 2 - np.log(sd) - 0.5 * math.log(2 * math.pi)


def marginal_loglik_per_level(arrays: dict, design, structure) -> np.ndarray:
    """``log N(y_j | X_j beta + offset_j, Z_j G Z_j' + s2 W_j^-1)`` per draw and level of the
    one grouping factor: shape (S, levels).

    With ``C`` the Cholesky factor of G, ``M_j = I + C' Z_j'W_j Z_j C / s2``,
    ``v_j = C' Z_j'W_j r_j / s2`` and ``r_j = y_j - X_j beta`` (all from per-level
    cross-products, nothing of size n per draw)::

        -2 log L_j = n_j log 2 pi - sum_j log w + n_j log s2 + log det M_j
                     + r_j'W_j r_j / s2 - v_j' M_j^-1 v_j

    (the determinant lemma and Woodbury, as :mod:`.marginal`).
    """
    from .marginal import _weights, level_cholesky

    (blk,) = structure.blocks
    w, unit = _weights(design)
    X, y, Z = design.X, design.y_work, blk.Z
    S, q = arrays["beta"].shape[0], blk.q
    beta = arrays["beta"]
    s2 = np.ones(S) if unit or arrays["sigma"] is None else arrays["sigma"] ** 2
    ZtWy = blk.cross(Z, y[:, None], w)[:, 0]                      # (q, L)
    ZtWX = blk.cross(Z, X, w)                                     # (q, p, L)
    ZtWr = [ZtWy[a][None, :] - beta @ ZtWX[a] for a in range(q)]  # q x (S, L)
    sd, corr = arrays["sd"][0], arrays["corr"][0]
    Lc = np.linalg.cholesky(corr + 1e-12 * np.eye(q)) if corr is not None else \
        np.broadcast_to(np.eye(q), (S, q, q))
    C = sd[:, :, None] * Lc                                       # (S, q, q)
    inv = (1.0 / s2)[:, None]
    c, Lm = level_cholesky(np.moveaxis(blk.cross(Z, Z, w), -1, 0), C, inv)
    logdet, quad, x = 0.0, 0.0, []
    for i in range(q):  # L_j x = v_j, v_i = sum_a C_ai Z_j'W r_j / s2 (forward substitution)
        t = sum(c[a][i] * ZtWr[a] for a in range(q)) * inv
        for k in range(i):
            t = t - Lm[i][k] * x[k]
        x.append(t / Lm[i][i])
        logdet = logdet + 2.0 * np.log(Lm[i][i])
        quad = quad + x[i] ** 2
    return level_loglik(design, structure, beta, s2, logdet, quad)


def level_loglik(design, structure, beta: np.ndarray, s2: np.ndarray, logdet: np.ndarray,
                 quad: np.ndarray) -> np.ndarray:
    """:func:`marginal_loglik_per_level` from its random-effect terms ``log det M_j`` and
    ``v_j' M_j^-1 v_j`` (S, levels), given by whoever has them (the fast path's draws of the
    random effects): adds ``n_j log 2 pi - sum_j log w + n_j log s2 + r_j'W_j r_j / s2``."""
    from .marginal import _weights

    (blk,) = structure.blocks
    w, _ = _weights(design)
    X, y, codes = design.X, design.y_work, blk.codes
    L = blk.nlevels
    n_j = np.bincount(codes, minlength=L).astype(float)
    slw = np.bincount(codes, weights=np.log(w), minlength=L)
    # r_j'W r_j = y_j'W y_j - 2 beta'X_j'W y_j + beta'X_j'W X_j beta, from per-level statistics
    XtWX = blk.cross(X, X, w)                                     # (p, p, L)
    XtWy = blk.cross(X, y[:, None], w)[:, 0]                      # (p, L)
    ytWy = np.bincount(codes, weights=w * y * y, minlength=L)
    rWr = ytWy[None, :] - 2.0 * beta @ XtWy
    for u in range(X.shape[1]):
        rWr = rWr + beta[:, u:u + 1] * (beta @ XtWX[u])
    return -0.5 * (n_j * math.log(2 * math.pi) - slw + n_j * np.log(s2)[:, None] + logdet
                   + rWr / s2[:, None] - quad)


def likelihood_kind(structure, parameterization: str | None) -> str:
    """Which pointwise likelihood :func:`native_inference_data` stores (see the module)."""
    if parameterization == "marginal" and len(structure.blocks) == 1:
        return MARGINAL_PER_LEVEL
    return CONDITIONAL_PER_OBS


# --------------------------------------------------------------------------- assembly
class _Coords:
    """The coordinates of a fit's groups, each index built once and shared by the groups
    that have that dimension (building pandas indexes was most of a group's cost)."""

    def __init__(self, coords: dict):
        self.coords = coords
        self.made = {}

    def of(self, sizes: dict):
        """``xr.Coordinates`` of the dimensions ``{name: length}``: the given coordinate
        values, else integers."""
        import xarray as xr

        variables, indexes = {}, {}
        for name, n in sizes.items():
            if (name, n) not in self.made:
                values = np.asarray(self.coords[name]) if name in self.coords else np.arange(n)
                c = xr.Coordinates({name: (name, values)})
                self.made[name, n] = (c.variables[name], c.xindexes[name])
            variables[name], indexes[name] = self.made[name, n]
        return xr.Coordinates(variables, indexes=indexes)


def _dataset(data: dict, dims: dict, coords: _Coords, sampled: bool = False, attrs: bool = True):
    """One group as ``az.from_dict`` builds it (variables with the given ``dims``, after
    ``chain`` and ``draw`` when ``sampled``; integer coordinates where none are given; ArviZ's
    ``created_at`` and ``arviz_version`` attributes unless not ``attrs``), without its
    per-variable DataArrays and their alignment, which cost more than the rest of a fast-path
    fit."""
    import xarray as xr
    from arviz.data.base import make_attrs

    variables, sizes = {}, {}
    for key, value in data.items():
        a = np.asarray(value)
        d = (["chain", "draw"] if sampled else []) + list(dims.get(key, []))
        if len(d) != a.ndim:  # not a layout this module makes: ArviZ's own defaults
            raise ValueError(f"{key}: dims {d} for shape {a.shape}")
        variables[key] = (d, a)
        for name, n in zip(d, a.shape):
            sizes.setdefault(name, n)
    return xr.Dataset(variables, coords=coords.of(sizes), attrs=make_attrs() if attrs else None)


def native_inference_data(raw, design, structure, *, parameterization=None,
                          prior_arrays: dict | None = None,
                          prior_note: str = "draws from the priors the fit used"):
    """ArviZ InferenceData of a Bayesian fit from the sampler's output (see the module).

    Parameters
    ----------
    raw : arviz.InferenceData
        The sampler's output: ``posterior`` under internal names, ``sample_stats``.
    design, structure
        What was fitted.
    parameterization : str, optional
        Chooses the pointwise likelihood (:func:`likelihood_kind`).
    prior_arrays : dict, optional
        Prior draws in the layout of :func:`workbench.bayes.draws.prior_arrays_of`; None for
        no ``prior`` group.
    prior_note : str
        Stored in ``attrs["prior"]`` (why there are no prior draws, when there are none).
    """
    import arviz as az

    post = raw.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    arrays = raw_arrays(post, structure)
    dims, coords = dims_and_coords(design, structure)
    posterior = dataset_from_arrays(arrays, design, structure, nc, nd)
    kind = likelihood_kind(structure, parameterization)
    pre = getattr(raw, "log_likelihood", None)
    if kind == MARGINAL_PER_LEVEL and pre is not None and pre.attrs.get("likelihood") == kind:
        ll = np.asarray(pre["y"].values).reshape(nc * nd, -1)  # the fast path's (bayes.fast)
        ll_dims = {"y": [f"{structure.blocks[0].group}_level"]}
    elif kind == MARGINAL_PER_LEVEL:
        ll = marginal_loglik_per_level(arrays, design, structure)
        ll_dims = {"y": [f"{structure.blocks[0].group}_level"]}
    else:
        ll = conditional_loglik(arrays, design, structure)
        ll_dims = {"y": ["obs"]}
    constant = {"X": design.X}
    for blk in structure.blocks:
        constant[f"{blk.group}_index"] = np.asarray(blk.codes)
        constant[f"Z_{blk.group}"] = np.asarray(blk.Z)
    for key in ("offset", "weights", "known_sd"):
        if getattr(design, key) is not None:
            constant[key] = np.asarray(getattr(design, key))
    prior = None
    if prior_arrays is not None:
        prior = dataset_from_arrays(prior_arrays, design, structure, 1,
                                    prior_arrays["beta"].shape[0])
    shared = _Coords(coords)
    groups = {"posterior": _dataset(posterior, dims, shared, sampled=True),
              "observed_data": _dataset({"y": np.asarray(design.y)}, dims, shared),
              "constant_data": _dataset(constant, dims, shared)}
    if prior is not None:
        groups["prior"] = _dataset(prior, dims, shared, sampled=True)
    idata = az.InferenceData(**groups)
    idata.add_groups(log_likelihood=_dataset({"y": ll.reshape(nc, nd, -1)}, ll_dims, shared,
                                             sampled=True, attrs=False))
    idata.log_likelihood.attrs["likelihood"] = kind
    if prior is not None:
        idata.prior.attrs["prior"] = prior_note
    idata.posterior.attrs["parameterization"] = str(parameterization)
    if prior is None:
        idata.posterior.attrs["prior"] = prior_note
    if hasattr(raw, "sample_stats"):
        idata.add_groups(sample_stats=raw.sample_stats)
    return idata


__all__ = ["native_inference_data", "arrays_from_native", "dataset_from_arrays",
           "dims_and_coords", "conditional_loglik", "marginal_loglik_per_level", "level_loglik",
           "likelihood_kind", "MARGINAL_PER_LEVEL", "CONDITIONAL_PER_OBS"]
