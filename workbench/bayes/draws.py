"""Posterior and prior draws of a Bayesian fit, by tidy parameter name; predictive draws.

Columns: ``beta[NAME]``, ``sd[GROUP:TERM]``, ``cor[GROUP:T1,T2]``, ``sigma`` (as
:meth:`workbench.record.Fit.params` names them).  Rows: one per draw (chain-major for the
posterior, with ``chain`` and ``draw`` columns).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import names
from ..errors import SpecError
from .lkj import draw_lkj_cholesky
from .priors import FAMILIES, Prior, corr_matrix


def _require_bayes(fit):
    return fit.bayes_state("posterior and prior draws")


def posterior_arrays(fit) -> dict:
    """Posterior draws as arrays: ``beta`` (S, p), ``sd``/``corr``/``b`` lists per factor block
    ((S, q), (S, q, q) or None, (S, levels, q)), ``sigma`` (S,) or None; S = chains x draws."""
    state = _require_bayes(fit)
    return arrays_from_posterior(state.idata.posterior, state.structure)


def arrays_from_posterior(post, st) -> dict:
    """:func:`posterior_arrays` of a native InferenceData posterior (:mod:`.idata`) on the
    structure ``st``."""
    from .idata import arrays_from_native

    return arrays_from_native(post, st)


def frame_from_arrays(arrays: dict, design, structure) -> pd.DataFrame:
    """Tidy columns from :func:`posterior_arrays`-shaped draws."""
    cols = {}
    for j, name in enumerate(design.fixed_names):
        cols[names.beta(name)] = arrays["beta"][:, j]
    for k, blk in enumerate(structure.blocks):
        for i, c in enumerate(blk.columns):
            cols[names.sd(blk.group, c)] = arrays["sd"][k][:, i]
    for k, blk in enumerate(structure.blocks):
        corr = arrays["corr"][k]
        for _, sl in blk.terms:
            for i in range(sl.start, sl.stop):
                for j in range(i + 1, sl.stop):
                    cols[names.cor(blk.group, blk.columns[i], blk.columns[j])] = corr[:, i, j]
    if arrays["sigma"] is not None:
        cols["sigma"] = arrays["sigma"]
    return pd.DataFrame(cols)


def posterior_frame(fit) -> pd.DataFrame:
    """Posterior draws of a Bayesian fit, one row per (chain, draw), tidy column names.

    Parameters
    ----------
    fit : workbench.Fit
        A fit with ``method="bayes"``.

    Returns
    -------
    DataFrame
        Columns ``chain``, ``draw`` then ``beta[NAME]``, ``sd[GROUP:TERM]``,
        ``cor[GROUP:T1,T2]``, ``sigma`` (and ``rho``/``phi`` with a residual structure).
    """
    df = frame_from_arrays(posterior_arrays(fit), fit.design, fit.state.structure)
    post = fit.state.idata.posterior
    param = _residual_param(fit)
    if param is not None:
        df[param] = np.asarray(post[param].values, dtype=float).ravel()
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    df.insert(0, "draw", np.tile(np.arange(nd), nc))
    df.insert(0, "chain", np.repeat(np.arange(nc), nd))
    return df


# --------------------------------------------------------------------------- priors
def draw_prior(prior: Prior, rng: np.random.Generator, size: int) -> np.ndarray:
    """Draws of a scalar prior by its family's numpy sampler (:data:`~.priors.FAMILIES`; a prior
    on the variance gives the sd, the square root of its draws)."""
    sample = FAMILIES[prior.family].sample
    if sample is not None:
        return sample(prior.args, rng, size)
    raise SpecError(f"the improper prior {prior} has no draws; give a proper prior for prior draws")


def prior_arrays(fit, n: int = 1000, seed: int = 0) -> dict:
    """Prior draws in the shape of :func:`posterior_arrays` (group effects included)."""
    state = _require_bayes(fit)
    return prior_arrays_of(fit.design, state.structure, state.priors, n, seed)


def prior_arrays_of(design, st, priors: dict, n: int = 1000, seed: int = 0) -> dict:
    """:func:`prior_arrays` of a design, its structure and resolved priors."""
    rng = np.random.default_rng(seed)
    beta = np.column_stack([draw_prior(priors[names.beta(nm)], rng, n) for nm in design.fixed_names])
    out = {"beta": beta, "sd": [], "corr": [], "b": [], "sigma": None}
    for blk in st.blocks:
        sd = np.column_stack([draw_prior(priors[names.sd(blk.group, c)], rng, n) for c in blk.columns])
        Lb = np.broadcast_to(np.eye(blk.q), (n, blk.q, blk.q)).copy()
        correlated = False
        for label, sl in blk.terms:
            m = sl.stop - sl.start
            if m < 2:
                continue
            correlated = True
            pr = priors[names.corr_key(label)]
            if pr.is_fixed:
                Lt = np.linalg.cholesky(corr_matrix(pr, m))[None]
            else:
                Lt = draw_lkj_cholesky(rng, m, pr.args[0], n)
            Lb[:, sl, sl] = Lt
        out["sd"].append(sd)
        out["corr"].append(np.einsum("sij,skj->sik", Lb, Lb) if correlated else None)
        C = sd[:, :, None] * Lb
        z = rng.standard_normal((n, blk.nlevels, blk.q))
        out["b"].append(z @ np.swapaxes(C, 1, 2))  # b[s, l] = C[s] z[s, l]
    if design.known_sd is None:
        out["sigma"] = draw_prior(priors["sigma"], rng, n)
    return out


def prior_frame(fit, n: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Draws from the priors a Bayesian fit used, with the columns of :func:`posterior_frame`
    (without ``chain``/``draw``).

    Raises
    ------
    SpecError
        A prior is improper (``Flat()``, ``HalfFlat()``).
    """
    df = frame_from_arrays(prior_arrays(fit, n, seed), fit.design, fit.state.structure)
    param = _residual_param(fit)
    if param is not None:
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 17]))
        df[param] = draw_prior(fit.state.priors[param], rng, n)
    return df


def _residual_param(fit) -> str | None:
    """``rho``/``phi`` for a fit with a residual correlation structure, else None."""
    cst = (fit.diagnostics or {}).get("corstruct")
    if not cst:
        return None
    from .corstruct import PARAMS

    return PARAMS[cst["structure"]]


# --------------------------------------------------------------------------- predictive
def _predict(arrays: dict, design, structure, rng, noise=None) -> np.ndarray:
    mu = arrays["beta"] @ design.X.T
    if design.offset is not None:
        mu = mu + design.offset[None, :]
    for blk, b in zip(structure.blocks, arrays["b"]):
        mu = mu + np.einsum("sni,ni->sn", b[:, blk.codes, :], blk.Z)
    sd = design.known_sd[None, :] if design.known_sd is not None else arrays["sigma"][:, None]
    if design.weights is not None:
        sd = sd / np.sqrt(design.weights)[None, :]
    # noise: correlated residual draws of a residual structure (bayes.corstruct)
    z = rng.standard_normal(mu.shape) if noise is None else noise(rng, mu.shape[0])
    return mu + sd * z


def posterior_predictive(fit, seed: int = 0) -> np.ndarray:
    """Replicated responses, one row per posterior draw: shape (chains x draws, nobs)."""
    return _predict(posterior_arrays(fit), fit.design, fit.state.structure,
                    np.random.default_rng(seed), _residual_noise(fit, "posterior"))


def prior_predictive(fit, n: int = 500, seed: int = 0) -> np.ndarray:
    """Responses simulated from the priors: shape (n, nobs)."""
    rng = np.random.default_rng(seed)
    arrays = prior_arrays(fit, n, int(rng.integers(2**31)))
    return _predict(arrays, fit.design, fit.state.structure, rng, _residual_noise(fit, "prior", n, rng))


def _residual_noise(fit, group: str, n: int = 0, rng=None):
    """Correlated residual draws for a fit with a residual structure (None otherwise): the
    posterior draws of its parameter, or ``n`` draws from its prior."""
    param = _residual_param(fit)
    if param is None:
        return None
    from .corstruct import predictive_noise

    if group == "posterior":
        rho = np.asarray(fit.state.idata.posterior[param].values, dtype=float).ravel()
    else:
        rho = draw_prior(fit.state.priors[param], rng, n)
    return predictive_noise(fit, rho)


__all__ = ["posterior_frame", "prior_frame", "posterior_arrays", "prior_arrays", "prior_arrays_of", "draw_prior",
           "posterior_predictive", "prior_predictive"]
