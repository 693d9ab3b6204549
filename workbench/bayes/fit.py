"""``fit_bayes``: a design -> PyMC posterior -> the :class:`~workbench.record.Fit` record.

Defaults: ``parameterization="auto"`` is ``marginal`` for one grouping factor (the random
effects integrated out; ``noncentered`` for several, where the marginal form would be dense) and
``sampler="auto"`` is nutpie, the fastest combination in ``benchmarks/bench_bayes.py`` (its
results, dated, are in ``benchmarks/RESULTS.md``).  Where it applies (one grouping factor,
Normal/Flat priors on beta), ``path="auto"`` goes first to the fast path of :mod:`.fast` (no
compilation) and falls back to NUTS on the marginal model.

Several grouping factors (crossed or nested): the fast path does not apply (its posterior of the
variance parameters needs the per-level block-diagonal ``M`` of one factor), so a fit -- and a
study replicate -- is NUTS (nutpie) on the ``noncentered`` model: ``diagnostics["path"]`` is
``"nuts"``, ``diagnostics["parameterization"]`` ``"noncentered"`` and ``diagnostics["path_note"]``
says why.  Its cost per replicate is that of NUTS in all ``levels x columns`` random effects plus
the fixed effects (``benchmarks/bench_bayes_factors.py``; dated numbers in
``benchmarks/RESULTS.md``); the first fit of a data shape in a process also compiles (numba).
``parameterization="marginal"`` is the alternative up to :data:`.marginal.MAX_DENSE` stacked
effects: it integrates the effects out exactly but factors a dense ``Q x Q`` matrix per gradient
(``O(Q^3)``).
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..errors import SpecError
from ..options import AUTO, method_options
from ..record import BayesState, Fit, build_fit
from .priors import prior_strings, resolve_priors

DEFAULT_PARAMETERIZATION = AUTO
DEFAULT_SAMPLER = AUTO
DEFAULT_PATH = AUTO
RHAT_MAX = 1.01
ESS_MIN = 400


def choose_parameterization(structure, requested: str) -> str:
    """Resolve ``"auto"``: marginal for one grouping factor (cost O(levels) per evaluation),
    noncentered for several (the dense marginal form costs O(Q^3) in the Q stacked effects)."""
    if requested != AUTO:
        return requested
    return "marginal" if len(structure.blocks) == 1 else "noncentered"


def choose_sampler(requested: str) -> str:
    """Resolve ``"auto"``: nutpie when installed, else PyMC's NUTS."""
    from .sample import nutpie_available

    if requested == AUTO:
        return "nutpie" if nutpie_available() else "pymc"
    if requested == "nutpie" and not nutpie_available():
        raise SpecError("sampler 'nutpie' is not installed; pip install nutpie, or use sampler='pymc'")
    return requested


def fit_bayes(design, label: str | None = None, *, draws: int = 1000, tune: int = 1000,
              chains: int = 2, seed: int | None = None, priors: dict | None = None,
              parameterization: str = DEFAULT_PARAMETERIZATION, sampler: str = DEFAULT_SAMPLER,
              target_accept: float = 0.9, progressbar: bool = True, cores: int | None = None,
              path: str = DEFAULT_PATH, **options) -> Fit:
    """Fit a linear mixed model by PyMC.

    Parameters
    ----------
    design : workbench.Design
    label : str, optional
        Name in comparison tables.
    draws, tune, chains : int
        Posterior draws and tuning steps per chain, number of chains.
    seed : int, optional
        Seeds the sampler and the conditional draws of the random effects; drawn (and
        recorded in ``diagnostics["seed"]``) when not given.
    priors : dict, optional
        ``{key: "Dist(args)"}`` overriding the defaults; keys ``beta``, ``beta[NAME]``, ``sd``,
        ``sd[GROUP]``, ``sd[GROUP:TERM]``, ``corr``, ``corr[GROUP]``, ``sigma`` (see
        :mod:`workbench.bayes.priors`).  ``Fixed(value)`` holds a parameter at a value.
        Defaults (weakly informative, scaled to the data as in rstanarm and bambi; ``sy`` is the
        response sd, ``sx``/``mx`` a predictor's sd/mean, ``sz`` a random-slope column's sd):
        ``beta[x] ~ Normal(0, 2.5 sy / sx)``; ``beta[(Intercept)] ~ Normal(mean(y),
        sqrt((2.5 sy)^2 + sum (2.5 sy mx / sx)^2))``; ``sd[g:(Intercept)] ~ HalfNormal(2.5 sy)``,
        ``sd[g:x] ~ HalfNormal(2.5 sy / sz)``; ``corr ~ LKJ(2)``; ``sigma ~ Exponential(1 / sy)``.
    parameterization : {"auto", "marginal", "noncentered", "centered"}
        ``marginal`` integrates the random effects out (the GLS likelihood from sufficient
        statistics) and draws them exactly afterwards; with several grouping factors it is
        dense in all stacked random effects (at most 500).  ``auto`` picks ``marginal`` for
        one grouping factor, else ``noncentered`` (``benchmarks/bench_bayes.py`` supports the
        choice).
    sampler : {"auto", "nutpie", "pymc"}
        ``auto`` is nutpie when installed.  Compiled models are cached (:mod:`.cache`): a new
        data set of the same layout refits without recompiling.
    target_accept : float
        NUTS target acceptance rate, in (0, 1).
    progressbar : bool
    cores : int, optional
        Parallel chains (default: min(chains, CPUs)).
    path : {"auto", "fast", "nuts"}
        ``fast`` (:mod:`.fast`): beta and the random effects integrated out, an exact
        independence sampler on the variance parameters, exact draws of the rest; one grouping
        factor, Normal/Flat priors on beta, terms of at most two columns, no ``Fixed`` priors.
        ``auto`` takes it where it applies and ``parameterization`` and ``sampler`` are
        ``auto``, and falls back to NUTS when its proposal fails a check (``diagnostics["path"]``
        says which ran, ``diagnostics["path_note"]`` why NUTS).

    Returns
    -------
    Fit
        ``method="bayes"``: posterior means, sds and 95% equal-tailed intervals; ``diagnostics``
        with ``max_rhat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``,
        ``sampling_seconds``, ``compile_seconds``, ``sampler``, ``parameterization``, ``priors``,
        ``warnings``, ``seed``; a :class:`~workbench.record.BayesState` with the ArviZ
        InferenceData under the tidy names (:mod:`.idata`: posterior, prior, observed and
        constant data, pointwise log likelihood, sample stats), the resolved :class:`~.priors.Prior` objects
        and the structure.

    Raises
    ------
    OptionError
        Unknown options or bad option values (:class:`workbench.options.BayesOptions`).
    SpecError
        Unknown prior keys or distributions.  Both before any sampling.
    """
    opts = method_options("bayes", draws=draws, tune=tune, chains=chains, seed=seed,
                          priors=priors, parameterization=parameterization, sampler=sampler,
                          target_accept=target_accept, progressbar=progressbar, cores=cores,
                          path=path, **options)
    draws, tune, chains, cores = opts.draws, opts.tune, opts.chains, opts.cores
    target_accept = opts.target_accept
    seed = opts.seed if opts.seed is not None else int(np.random.SeedSequence().entropy % (2**31))

    from ..structure import build_structure
    from .model import make_layout, model_data

    structure = build_structure(design)
    resolved = resolve_priors(design, structure, priors)
    from .fast import try_fast

    idata, fast = try_fast(design, structure, resolved, path=opts.path,
                           parameterization=parameterization, sampler=sampler, draws=draws,
                           chains=chains, seed=seed)
    if idata is not None:
        settings = {"priors": prior_strings(resolved), "seed": seed, "draws": draws,
                    "chains": chains, "target_accept": float(target_accept), **fast}
        return assemble_bayes_fit(design, structure, idata, resolved, label=label,
                                  settings=settings,
                                  layout=make_layout(design, structure, resolved, "marginal"))
    param = choose_parameterization(structure, parameterization)
    samp = choose_sampler(sampler)
    layout = make_layout(design, structure, resolved, param)
    data = model_data(design, structure, resolved, layout)

    from .cache import compile_and_sample

    idata, sampling_s, compile_s, s_ranef = compile_and_sample(
        layout, samp, data, seed, draws=draws, tune=tune, chains=chains,
        target_accept=target_accept, progressbar=progressbar, cores=cores)
    if param == "marginal":
        t1 = time.perf_counter()
        _add_marginal_ranef(idata, data, layout, np.random.default_rng(s_ranef))
        sampling_s += time.perf_counter() - t1

    settings = {"sampling_seconds": sampling_s, "compile_seconds": compile_s, "sampler": samp,
                "parameterization": param, "priors": prior_strings(resolved), "seed": seed,
                "draws": draws, "tune": tune, "chains": chains,
                "target_accept": float(target_accept), "path": "nuts"}
    if fast is not None:
        settings["path_note"] = fast
    return assemble_bayes_fit(design, structure, idata, resolved, label=label, settings=settings,
                              layout=layout)


def _add_marginal_ranef(idata, data, layout, rng) -> None:
    """Draw the random effects from their Gaussian conditional and add ``b{k}`` to the posterior."""
    import xarray as xr

    from .marginal import draw_ranef

    post = idata.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    S = nc * nd

    def flat(name):
        a = np.asarray(post[name].values, dtype=float)
        return a.reshape((S,) + a.shape[2:])

    beta = flat("beta")
    chols = []
    for k, bl in enumerate(layout.blocks):
        sd = flat(f"sd{k}")
        if f"corr{k}" in post:
            # a jitter of 1e-12 keeps a correlation at +-1 (tanh saturated) factorable
            Lc = np.linalg.cholesky(flat(f"corr{k}") + 1e-12 * np.eye(bl.q))
        else:
            Lc = np.broadcast_to(np.eye(bl.q), (S, bl.q, bl.q))
        chols.append(sd[:, :, None] * Lc)
    s2 = flat("sigma") ** 2 if "sigma" in post else np.ones(S)
    bs = draw_ranef(data, beta, chols, s2, [b.q for b in layout.blocks],
                    [b.nlevels for b in layout.blocks], rng)
    for k, b in enumerate(bs):
        L, q = b.shape[1], b.shape[2]
        post[f"b{k}"] = xr.DataArray(b.reshape(nc, nd, L, q),
                                     dims=("chain", "draw", f"b{k}_level", f"b{k}_col"),
                                     coords={"chain": post.coords["chain"], "draw": post.coords["draw"]})


def _summ(x: np.ndarray) -> tuple[float, float, float, float]:
    lo, hi = np.quantile(x, [0.025, 0.975])
    return float(np.mean(x)), float(np.std(x, ddof=1)) if x.size > 1 else 0.0, float(lo), float(hi)


def assemble_bayes_fit(design, structure, idata, priors, label=None, settings: dict | None = None,
                       layout=None, residual=None) -> Fit:
    """The record of a posterior (means, sds, 95% equal-tailed intervals, diagnostics).

    ``settings`` (sampler, parameterisation, seed, timings, ...) are added to the diagnostics;
    ``residual`` (:class:`~.corstruct.Residual`) adds a residual correlation structure's
    parameter to the convergence checks and to the InferenceData.
    """
    from .draws import frame_from_arrays
    from .idata import native_inference_data, raw_arrays

    settings = settings or {}
    arr = raw_arrays(idata.posterior, structure)
    beta, beta_se, beta_ci = {}, {}, {}
    for j, name in enumerate(design.fixed_names):
        m, s, lo, hi = _summ(arr["beta"][:, j])
        beta[name], beta_se[name], beta_ci[name] = m, s, [lo, hi]
    varcorr = []
    for k, blk in enumerate(structure.blocks):
        sd, corr = arr["sd"][k], arr["corr"][k]
        for glabel, sl in blk.terms:
            for i in range(sl.start, sl.stop):
                m, s, lo, hi = _summ(sd[:, i])
                varcorr.append({"grp": glabel, "var1": blk.columns[i], "var2": None,
                                "vcov": float(np.mean(sd[:, i] ** 2)), "sdcor": m,
                                "sdcor_se": s, "sdcor_ci": [lo, hi]})
            for i in range(sl.start, sl.stop):
                for j in range(i + 1, sl.stop):
                    r = corr[:, i, j]
                    m, s, lo, hi = _summ(r)
                    varcorr.append({"grp": glabel, "var1": blk.columns[i], "var2": blk.columns[j],
                                    "vcov": float(np.mean(r * sd[:, i] * sd[:, j])), "sdcor": m,
                                    "sdcor_se": s, "sdcor_ci": [lo, hi]})
    sigma = None
    if arr["sigma"] is not None:
        m, s, lo, hi = _summ(arr["sigma"])
        varcorr.append({"grp": "Residual", "var1": None, "var2": None,
                        "vcov": float(np.mean(arr["sigma"] ** 2)), "sdcor": m, "sdcor_se": s,
                        "sdcor_ci": [lo, hi]})
        sigma = m
    ranef = []
    for k, blk in enumerate(structure.blocks):
        b = arr["b"][k]
        mean, sd = b.mean(axis=0), b.std(axis=0, ddof=1)
        lo, hi = np.quantile(b, [0.025, 0.975], axis=0)
        for i, term in enumerate(blk.columns):
            for lev_i, lev in enumerate(blk.levels):
                ranef.append({"group": blk.group, "term": term, "level": lev,
                              "value": float(mean[lev_i, i]), "cond_sd": float(sd[lev_i, i]),
                              "lower": float(lo[lev_i, i]), "upper": float(hi[lev_i, i])})
    frame = frame_from_arrays(arr, design, structure)
    if residual is not None:
        frame[residual.param] = residual.posterior_draws(idata.posterior)
    post = idata.posterior
    nc, nd = post.sizes["chain"], post.sizes["draw"]
    diagnostics = {**convergence(frame, nc, nd, idata, priors), **settings}
    converged = diagnostics["divergences"] == 0 and not (
        diagnostics["max_rhat"] is not None and diagnostics["max_rhat"] > RHAT_MAX)
    native = native_inference_data(idata, design, structure,
                                   parameterization=settings.get("parameterization"),
                                   **_prior_draws(design, structure, priors,
                                                  int(settings.get("seed") or 0)))
    if residual is not None:
        residual.annotate(native, idata, design, structure, priors, int(settings.get("seed") or 0))
    state = BayesState(idata=native, priors=priors, structure=structure,
                       parameterization=settings.get("parameterization"),
                       sampler=settings.get("sampler"), seed=settings.get("seed"), layout=layout)
    return build_fit(method="bayes", design=design, structure=structure, beta=beta,
                     beta_se=beta_se, beta_ci=beta_ci, sigma=sigma, varcorr=varcorr, ranef=ranef,
                     converged=converged, singular=False, state=state, criterion=None,
                     diagnostics=diagnostics, interval="credible", label=label)


def _prior_draws(design, structure, priors, seed: int, n: int = 500) -> dict:
    """``prior_arrays`` and ``prior_note`` for :func:`~.idata.native_inference_data`: ``n``
    draws from the priors, or none (and why) when a prior is improper."""
    from .draws import prior_arrays_of

    try:
        # a very diffuse prior (InverseGamma(0.001, 0.001)) has draws that overflow to inf:
        # they are that prior's draws, not an error
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            return {"prior_arrays": prior_arrays_of(design, structure, priors, n, seed)}
    except SpecError as e:
        return {"prior_arrays": None, "prior_note": f"no prior draws: {e}"}


def convergence(frame, nchains: int, ndraws: int, idata, priors) -> dict:
    """R-hat, bulk/tail ESS over the parameters (fixed ones excluded), divergences, warnings."""
    from .chaindiag import diagnostics

    cols, xs = [], []
    for col in frame.columns:
        x = frame[col].to_numpy().reshape(nchains, ndraws)
        if not np.all(np.isfinite(x)) or np.ptp(x) == 0:
            continue  # held fixed (or constant): no mixing to diagnose
        cols.append(col)
        xs.append(x)
    rhat, ess_b, ess_t = {}, {}, {}
    if cols:
        r, b, t = diagnostics(np.stack(xs))  # az.rhat / az.ess of each, batched
        for i, col in enumerate(cols):
            rhat[col], ess_b[col], ess_t[col] = float(r[i]), float(b[i]), float(t[i])
    div = 0
    if hasattr(idata, "sample_stats") and "diverging" in idata.sample_stats:
        div = int(np.asarray(idata.sample_stats["diverging"].values).sum())

    def ext(d, f):
        vals = [v for v in d.values() if math.isfinite(v)]
        return f(vals) if vals else None

    out = {"max_rhat": ext(rhat, max), "min_ess_bulk": ext(ess_b, min),
           "min_ess_tail": ext(ess_t, min), "divergences": div, "rhat": rhat, "ess_bulk": ess_b}
    warn = []
    if div:
        warn.append(f"{div} divergent transition{'s' if div > 1 else ''} after tuning: the "
                    "posterior may be biased; raise target_accept or try another parameterization")
    bad = [f"{k} ({v:.3f})" for k, v in rhat.items() if math.isfinite(v) and v > RHAT_MAX]
    if bad:
        warn.append(f"R-hat above {RHAT_MAX} for {', '.join(bad)}: the chains have not mixed "
                    "(a chain can stick where a group sd approaches zero); run longer")
    low = [f"{k} ({v:.0f})" for k, v in ess_b.items() if v < ESS_MIN]
    if low:
        warn.append(f"bulk ESS below {ESS_MIN} for {', '.join(low)}: estimates of the posterior "
                    "are imprecise; draw more")
    if nchains < 2:
        warn.append("one chain: R-hat cannot be computed; use chains >= 2")
    out["warnings"] = warn
    return out


__all__ = ["fit_bayes", "assemble_bayes_fit", "convergence", "choose_parameterization",
           "choose_sampler"]
