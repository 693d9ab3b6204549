"""Simulation-based calibration (Talts et al. 2018; Modrak et al. 2023; Säilynoja et al. 2022).

For each replicate the truth is drawn from the prior, data from the model given the truth, and
the posterior fitted with the same prior; the rank of the truth among ``L`` thinned posterior
draws is then uniform on ``0..L`` when the fitter is right.  A fitter whose posterior is off (a
prior different from the one that drew the truth, a wrong likelihood) bends the ranks.

* :func:`draw_truth`: parameters from the priors of :mod:`workbench.bayes.priors`, and a
  response drawn from the model on a fixed design (``X``, ``Z``, weights, known sds);
* :func:`rank_of_truth`: ranks among thinned draws (ties broken at random);
* :func:`sbc_pvalue`: the chi-square uniformity test of the rank histogram;
* :func:`ecdf_bands`: simultaneous bands of the ECDF difference of ``N`` uniform ranks
  (Säilynoja et al. 2022, by simulation), for the figures;
* :func:`sbc_batch`: the study runner's unit of work for ``truth = "prior"``
  (:mod:`workbench.study.spec`): one condition x one arm x some replicates.

Thinning.  The ranks are uniform only when the ``L`` posterior draws are independent draws from
the posterior: ranks among autocorrelated draws pile up at the ends of the histogram even for a
correct fitter (Talts et al. 2018, section 5.1), because neighbouring draws fall on the same
side of the truth.  So each fit's draws (2 chains x 1,000 by default) are thinned evenly to
``L = 99`` (about every 20th draw, further apart than the autocorrelation lasts at the fast
path's bulk ESS of at least 400 per 2,000 draws), and ``L + 1 = 100`` possible ranks pool into
20 bins of 50 expected ranks at 1,000 replicates for the chi-square test.

Priors.  The priors that draw the truth must not depend on the response they draw, so priors
the study does not name take the package's default family (:func:`workbench.bayes.priors.
default_priors`) resolved on the replicate's layout and predictors with the response set to 0:
response scale ``sy = 1`` and centre 0, the predictors' scales as the defaults read them.  The
resolved priors (those of the fitter, and those that draw the truth when an arm names
``truth_priors``) are frozen per replicate and handed to the fit in full, so the fit does not
rescale its defaults to the simulated response.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .. import names


def draw_truth(design, structure, priors: dict, rng: np.random.Generator):
    """One draw of every parameter from its prior, and a response from the model.

    Parameters
    ----------
    design : workbench.design.Design
        Supplies ``X``, the random-effects structure, weights and known sds (its ``y`` is unused).
    structure : workbench.structure.Structure
    priors : dict
        Resolved priors (:func:`workbench.bayes.priors.resolve_priors`); every one proper.
    rng : numpy Generator

    Returns
    -------
    y : ndarray (n,)
    truth : dict
        ``{tidy name: value}`` (``beta[..]``, ``sd[..]``, ``cor[..]``, ``sigma``).
    """
    from ..bayes.lkj import draw_lkj_cholesky
    from ..bayes.priors import FAMILIES, corr_matrix

    def one(key):
        pr = priors[key]
        fam = FAMILIES[pr.family]
        if fam.sample is None:
            raise ValueError(f"prior {key}={pr} is improper: simulation-based calibration needs "
                             "proper priors")
        return float(fam.sample(pr.args, rng, 1)[0])

    truth = {}
    beta = np.array([one(names.beta(n)) for n in design.fixed_names])
    for n, b in zip(design.fixed_names, beta):
        truth[names.beta(n)] = float(b)
    mu = design.X @ beta
    for blk in structure.blocks:
        sd = np.array([one(names.sd(blk.group, c)) for c in blk.columns])
        Lc = np.eye(blk.q)
        for label, sl in blk.terms:
            m = sl.stop - sl.start
            if m < 2:
                continue
            pr = priors[names.corr_key(label)]
            if pr.is_fixed:
                Lt = np.linalg.cholesky(corr_matrix(pr, m))
            else:
                Lt = draw_lkj_cholesky(rng, m, pr.args[0], 1)[0]
            Lc[sl, sl] = Lt
        R = Lc @ Lc.T
        for i, c in enumerate(blk.columns):
            truth[names.sd(blk.group, c)] = float(sd[i])
        for _, sl in blk.terms:
            for i in range(sl.start, sl.stop):
                for j in range(i + 1, sl.stop):
                    truth[names.cor(blk.group, blk.columns[i], blk.columns[j])] = float(R[i, j])
        b = rng.standard_normal((blk.nlevels, blk.q)) @ (sd[:, None] * Lc).T
        mu = mu + np.sum(blk.Z * b[blk.codes], axis=1)
    if design.known_sd is not None:
        scale = design.known_sd
    else:
        sigma = one("sigma")
        truth["sigma"] = sigma
        scale = np.full(design.n, sigma)
    if design.weights is not None:
        scale = scale / np.sqrt(design.weights)
    y = mu + scale * rng.standard_normal(design.n)
    if getattr(design, "offset", None) is not None:
        y = y + design.offset
    return y, truth


def rank_of_truth(draws: np.ndarray, truth: float, thin_to: int, rng: np.random.Generator) -> int:
    """Rank of ``truth`` among ``thin_to`` evenly thinned ``draws`` (0..thin_to), ties at random."""
    draws = np.asarray(draws, dtype=float).ravel()
    if draws.size < thin_to:
        raise ValueError(f"{draws.size} draws cannot be thinned to {thin_to}")
    keep = draws[np.linspace(0, draws.size - 1, thin_to).round().astype(int)]
    below = int(np.sum(keep < truth))
    ties = int(np.sum(keep == truth))
    return below + (int(rng.integers(0, ties + 1)) if ties else 0)


def sbc_pvalue(ranks, thin_to: int, bins: int | None = None) -> float:
    """Chi-square p-value of the uniformity of ranks on ``0..thin_to``.

    The ``thin_to + 1`` possible ranks are pooled into ``bins`` equal bins (default: the largest
    divisor of ``thin_to + 1`` that leaves at least 5 expected ranks per bin, at most 20).
    """
    r = np.asarray(ranks, dtype=int)
    n, K = r.size, thin_to + 1
    if bins is None:
        cands = [b for b in range(2, min(20, K) + 1) if K % b == 0 and n / b >= 5]
        bins = max(cands) if cands else 1
    if bins < 2:
        return float("nan")
    if K % bins:
        raise ValueError(f"{bins} bins do not divide the {K} possible ranks")
    counts = np.bincount(r * bins // K, minlength=bins)
    return float(stats.chisquare(counts).pvalue)


def ecdf_bands(n: int, alpha: float = 0.05, sims: int = 2000, grid: int = 100,
               rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simultaneous ``1 - alpha`` bands of ``ECDF(z) - z`` for ``n`` uniform fractional ranks
    (Säilynoja, Bürkner & Vehtari 2022, the simulation method).

    For each of ``sims`` simulated samples the smallest two-sided pointwise binomial tail
    probability over the grid is found; its ``alpha`` quantile ``gamma`` is the pointwise level
    whose band holds everywhere with probability ``1 - alpha``.

    Returns
    -------
    z, lower, upper : ndarray
        Grid on (0, 1) and the band of the ECDF difference.
    """
    rng = rng or np.random.default_rng(0)
    z = np.arange(1, grid) / grid
    u = np.sort(rng.uniform(size=(sims, n)), axis=1)
    counts = np.stack([np.searchsorted(row, z, side="right") for row in u])
    cdf = stats.binom.cdf(counts, n, z)
    sf = stats.binom.sf(counts - 1, n, z)
    gamma = float(np.quantile(2 * np.minimum(cdf, sf).min(axis=1), alpha))
    lo = stats.binom.ppf(gamma / 2, n, z) / n - z
    hi = stats.binom.ppf(1 - gamma / 2, n, z) / n - z
    return z, lo, hi


def ecdf_diff(ranks, thin_to: int, z: np.ndarray) -> np.ndarray:
    """``ECDF(z) - z`` of the fractional ranks ``(rank + 0.5) / (thin_to + 1)``."""
    f = (np.asarray(ranks, dtype=float) + 0.5) / (thin_to + 1)
    return np.searchsorted(np.sort(f), z, side="right") / f.size - z


def sbc_ranks(formula: str, data, priors: dict, replicates: int, seed: int, *,
              fit_priors: dict | None = None, thin_to: int = 99, known_sd: str | None = None,
              weights: str | None = None, **fit_options):
    """Ranks of prior-drawn truths among thinned posterior draws, replicate by replicate.

    Parameters
    ----------
    formula : str
    data : DataFrame
        The fixed design (predictors, groups, weights, known sds); the response is redrawn.
    priors : dict
        ``{key: "Dist(args)"}``: the priors that draw the truth, resolved on ``data`` (every
        prior not named takes its data-scaled default, frozen here) and handed to every fit.
    replicates, seed : int
        Replicate ``r`` draws from ``SeedSequence(seed, spawn_key=(r,))``.
    fit_priors : dict, optional
        Priors of the fitter, when they should differ from the truth's (a check that SBC fails).
    thin_to : int
        Posterior draws kept per replicate; ranks run over ``0..thin_to``.
    **fit_options
        Passed to :func:`workbench.fit` (``method="bayes"``).

    Returns
    -------
    DataFrame
        ``replicate``, ``parameter``, ``truth``, ``rank``, ``thin_to``, ``path``.
    """
    import pandas as pd

    from ..api import fit as wb_fit
    from ..bayes.draws import posterior_frame
    from ..bayes.priors import prior_strings, resolve_priors
    from ..design import build_design
    from ..formula import parse_formula
    from ..structure import build_structure

    design = build_design(parse_formula(formula), data, known_sd=known_sd, weights=weights)
    structure = build_structure(design)
    frozen = prior_strings(resolve_priors(design, structure, priors))
    fitted = frozen if fit_priors is None else prior_strings(
        resolve_priors(design, structure, {**priors, **fit_priors}))
    lhs = formula.split("~")[0].strip()
    rows = []
    for r in range(replicates):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(r,)))
        y, truth = draw_truth(design, structure, resolve_priors(design, structure, frozen), rng)
        d = data.copy()
        d[lhs] = y
        f = wb_fit(formula, d, method="bayes", priors=fitted, known_sd=known_sd, weights=weights,
                   seed=int(rng.integers(2**31)), progressbar=False, **fit_options)
        post = posterior_frame(f)
        for name, value in truth.items():
            rows.append({"replicate": r, "parameter": name, "truth": value,
                         "rank": rank_of_truth(post[name].to_numpy(), value, thin_to, rng),
                         "thin_to": thin_to, "path": f.diagnostics.get("path")})
    return pd.DataFrame(rows)


def replicate_layout(design, rng: np.random.Generator):
    """One replicate's layout and predictors from a simulation design, the response set to 0.

    Parameters
    ----------
    design : workbench.simulate.schema.SimDesign
    rng : numpy Generator
        The replicate's data stream (the nominal response it draws is discarded).

    Returns
    -------
    data : DataFrame
    model : workbench.design.Design
    structure : workbench.structure.Structure
    """
    from ..design import build_design
    from ..formula import parse_formula
    from ..simulate.generate import generate
    from ..structure import build_structure

    data = generate(design, rng)
    data[design.response] = 0.0
    known = design.residual.known_sd.column if design.residual.known_sd is not None else None
    model = build_design(parse_formula(design.formula), data, known_sd=known)
    return data, model, build_structure(model)


def frozen_priors(model, structure, user: dict | None, proper: bool) -> dict:
    """The resolved priors of a replicate (:func:`~workbench.bayes.priors.resolve_priors`).

    Raises
    ------
    SpecError
        A bad key or distribution, or (``proper``) an improper prior, which cannot draw a truth.
    """
    from ..bayes.priors import FAMILIES, resolve_priors
    from ..errors import SpecError

    priors = resolve_priors(model, structure, user or {})
    if proper:
        for key, pr in priors.items():
            if pr.family != "LKJ" and FAMILIES[pr.family].sample is None:
                raise SpecError(f"prior {key}={pr} is improper: a truth drawn from the prior "
                                "needs proper priors")
    return priors


def sbc_priors(design, fit_priors: dict | None, truth_priors: dict | None) -> list[str]:
    """The parameters a prior draw of ``design`` gives, with an arm's priors checked.

    Parameters
    ----------
    design : SimDesign
    fit_priors : dict or None
        The arm's ``options.priors``.
    truth_priors : dict or None
        The arm's ``truth_priors`` (None: the truth is drawn from ``fit_priors``).

    Raises
    ------
    SpecError
        From :func:`frozen_priors`.
    """
    _, model, structure = replicate_layout(design, np.random.default_rng(0))
    fitted = frozen_priors(model, structure, fit_priors, proper=truth_priors is None)
    drawn = fitted if truth_priors is None else frozen_priors(model, structure, truth_priors, True)
    return list(draw_truth(model, structure, drawn, np.random.default_rng(0))[1])


def sbc_batch(task) -> pd.DataFrame:
    """Draw truths from the prior, simulate, fit and rank: the replicates of one task.

    Replicate ``r`` of condition ``c`` takes its layout and predictors from data stream 0 of
    :func:`~workbench.study.replicate.replicate_rng` (as a study with a fixed truth does), its
    truth and response from stream 2 (which then breaks rank ties), and its sampler seed from
    stream 1; so two arms with the same truth priors see the same truths and data sets.

    Parameters
    ----------
    task : workbench.study.replicate.Task
        With ``task.sbc = {"thin_to": L, "truth_priors": dict or None}``.

    Returns
    -------
    DataFrame
        The columns of :data:`~workbench.study.replicate.COLUMNS` (``truth`` is the drawn value;
        estimate, se and interval are the posterior mean, sd and credible interval) plus
        ``rank`` (0..L; NaN when the fit failed), ``thin_to`` and ``path`` (the fit's
        ``diagnostics["path"]``: ``fast``, or ``nuts`` where the fast path declined).
    """
    import time
    import warnings

    import pandas as pd

    from ..api import fit as wb_fit
    from ..bayes.draws import posterior_frame
    from ..bayes.priors import prior_strings
    from ..errors import SpecError, WorkbenchError
    from .replicate import COLUMNS, NAN, _design, fit_values, replicate_rng, sampler_seed

    design = _design(task.design)
    thin_to = int(task.sbc["thin_to"])
    truth_user = task.sbc.get("truth_priors")
    spec = task.spec
    options = {k: v for k, v in (spec.get("options") or {}).items() if k != "priors"}
    options.setdefault("progressbar", False)
    options.setdefault("cores", 1)  # one process per Dask worker already
    known = design.residual.known_sd.column if design.residual.known_sd is not None else None
    kind = spec["intervals"][0]
    rows = []
    for rep in task.replicates:
        data, model, structure = replicate_layout(design, replicate_rng(task.seed, task.condition, rep))
        fitted = frozen_priors(model, structure, (spec.get("options") or {}).get("priors"),
                               proper=truth_user is None)
        drawn = fitted if truth_user is None else frozen_priors(model, structure, truth_user, True)
        rng = replicate_rng(task.seed, task.condition, rep, stream=2)
        y, truth = draw_truth(model, structure, drawn, rng)
        data[design.response] = y
        params = [p for p in task.parameters if p in truth]
        base = {"condition": task.condition, "replicate": rep, "method": task.method,
                "interval": kind, "level": None, "thin_to": thin_to}
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = wb_fit(design.formula, data, method="bayes", known_sd=known, label=task.method,
                           priors=prior_strings(fitted),
                           seed=sampler_seed(task.seed, task.condition, rep), **options)
        except SpecError:
            raise  # a bad option: the study is misconfigured, not this data set
        except (WorkbenchError, np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            msg = " ".join(str(exc).split())[:300] or type(exc).__name__
            dt = time.perf_counter() - t0
            rows.extend({**base, "parameter": p, "truth": truth[p], "estimate": NAN, "se": NAN,
                         "lower": NAN, "upper": NAN, "converged": False, "singular": False,
                         "divergences": NAN, "fit_time": dt, "error": msg, "rank": NAN,
                         "path": None}
                        for p in params)
            continue
        dt = time.perf_counter() - t0
        post = posterior_frame(f)
        vals = fit_values(f, kind, task.level)
        diag = f.diagnostics or {}
        divergences = float(diag.get("divergences", NAN))
        for p in params:
            est, se, lo, hi = vals.get(p, (NAN, NAN, NAN, NAN))
            rows.append({**base, "parameter": p, "truth": truth[p], "estimate": est, "se": se,
                         "lower": lo, "upper": hi, "converged": bool(f.converged),
                         "singular": bool(f.singular), "divergences": divergences, "fit_time": dt,
                         "error": None, "path": diag.get("path"),
                         "rank": float(rank_of_truth(post[p].to_numpy(), truth[p], thin_to, rng))})
    frame = pd.DataFrame(rows, columns=COLUMNS + SBC_COLUMNS)
    return frame.astype({"condition": "int64", "replicate": "int64", "converged": "bool",
                         "singular": "bool", "error": "object", "level": "object",
                         "rank": "float64", "thin_to": "int64", "path": "object"})


#: The columns an SBC study adds to :data:`workbench.study.replicate.COLUMNS`.
SBC_COLUMNS = ["rank", "thin_to", "path"]


__all__ = ["sbc_batch", "replicate_layout", "frozen_priors", "sbc_priors", "SBC_COLUMNS", "sbc_ranks", "draw_truth", "rank_of_truth", "sbc_pvalue", "ecdf_bands", "ecdf_diff"]
