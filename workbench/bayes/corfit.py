"""``fit_bayes_correlated``: a Bayesian fit with a residual correlation structure (nlme's cs or
ar1; the model, its statistics and its likelihood are in :mod:`.corstruct`) -> the record.

The flow of :func:`~.fit.fit_bayes` on the marginal model (no fast path): resolve the priors
(``rho``/``phi`` included), compile or reuse the model of the layout, sample by nutpie or PyMC
NUTS, draw the random effects exactly given each draw, assemble the record with the
structure's ``corstruct`` entry.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import NotYetSupportedError, OptionError
from ..options import AUTO
from .corstruct import INTERNAL, Residual, ResidualStats, summary


def fit_bayes_correlated(design, codes, pos, corr, label: str | None = None, **options):
    """A Bayesian fit with a residual correlation structure (see the module).

    Parameters
    ----------
    design : Design
    codes, pos : ndarray
        Correlation group and position of each design row
        (:func:`workbench.gls.corstruct.correlation_rows`).
    corr : workbench.gls.corstruct.CorrelationSpec
        The parsed ``correlation=`` (``kind``, ``group``, ``text``).
    label : str, optional
    **options
        As :func:`workbench.bayes.fit.fit_bayes`; the prior key of the parameter is ``rho``
        (cs) or ``phi`` (ar1), default ``Uniform(lower, 1)`` over the whole admissible range
        (:mod:`.priors`).  The model is always the marginal one (``parameterization`` "auto" or
        "marginal") sampled by NUTS (``path`` "auto" or "nuts"; the fast path does not cover
        it).

    Returns
    -------
    Fit
        As :func:`~.fit.fit_bayes`, with ``diagnostics["corstruct"]`` =
        ``{"structure", "form", NAME: posterior mean, "interval": 95% credible interval,
        "sd", "groups"}`` (NAME nlme's ``Rho`` or ``Phi``), and the parameter's draws under
        ``rho``/``phi`` in the InferenceData (posterior and prior).

    Raises
    ------
    NotYetSupportedError
        Prior weights or known sds; random effects on several grouping factors; correlation
        groups not nested in the random-effects grouping.
    OptionError
        ``parameterization`` other than the marginal one, ``path="fast"``.
    """
    from ..options import method_options
    from ..structure import build_structure
    from .cache import compile_and_sample
    from .fit import assemble_bayes_fit, choose_sampler
    from .model import make_layout, model_data
    from .priors import prior_strings, resolve_priors

    opts = method_options("bayes", **options)
    if opts.parameterization not in (AUTO, "marginal"):
        raise OptionError(f"parameterization '{opts.parameterization}' is not available with a "
                          "residual correlation structure: its likelihood is the marginal one "
                          "(use 'auto' or 'marginal')")
    if opts.path == "fast":
        raise OptionError("path 'fast' does not cover a residual correlation structure; use "
                          "'auto' or 'nuts'")
    if design.weights is not None or design.known_sd is not None:
        raise NotYetSupportedError("a correlation structure with prior weights or known sds "
                                   "is not implemented")
    seed = opts.seed if opts.seed is not None else int(np.random.SeedSequence().entropy % (2**31))
    structure = build_structure(design)
    stats = ResidualStats(design, structure, codes, pos, corr.kind, corr.group, corr.text)
    resolved = resolve_priors(design, structure, opts.priors,
                              residual=(stats.param, stats.tmax))
    samp = choose_sampler(opts.sampler)
    res_layout = stats.layout(resolved[stats.param].family)
    layout = make_layout(design, structure, resolved, "marginal", residual=res_layout)
    data = model_data(design, structure, resolved, layout, residual=stats)

    idata, sampling_s, compile_s, s_ranef = compile_and_sample(
        layout, samp, data, seed, draws=opts.draws, tune=opts.tune, chains=opts.chains,
        target_accept=opts.target_accept, progressbar=opts.progressbar, cores=opts.cores)
    rho = np.asarray(idata.posterior[INTERNAL].values, dtype=float)
    if stats.q:
        t1 = time.perf_counter()
        _add_ranef(idata, stats, rho.reshape(-1), np.random.default_rng(s_ranef))
        sampling_s += time.perf_counter() - t1
    settings = {"sampling_seconds": sampling_s, "compile_seconds": compile_s, "sampler": samp,
                "parameterization": "marginal", "priors": prior_strings(resolved), "seed": seed,
                "draws": opts.draws, "tune": opts.tune, "chains": opts.chains,
                "target_accept": float(opts.target_accept), "path": "nuts",
                "corstruct": summary(stats, rho.reshape(-1))}
    return assemble_bayes_fit(design, structure, idata, resolved, label=label, settings=settings,
                              layout=layout, residual=Residual(stats, pos))


def _add_ranef(idata, stats: ResidualStats, rho, rng) -> None:
    """Draw the random effects given each posterior draw; add ``b0`` to the posterior."""
    import xarray as xr

    post = idata.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]

    def flat(name):
        a = np.asarray(post[name].values, dtype=float)
        return a.reshape((nc * nd,) + a.shape[2:])

    corr = flat("corr0") if "corr0" in post else None
    b = stats.draw_ranef(flat("beta"), flat("sigma"), rho, flat("sd0"), corr, rng)
    post["b0"] = xr.DataArray(b.reshape(nc, nd, b.shape[1], b.shape[2]),
                              dims=("chain", "draw", "b0_level", "b0_col"),
                              coords={"chain": post.coords["chain"], "draw": post.coords["draw"]})


__all__ = ["fit_bayes_correlated"]
