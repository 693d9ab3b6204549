"""Every report figure from fixed seeds: ``make_report_figures(out_dir="figures")``.

Data: the Minnesota radon data (figures 1-5), a small simulated data set (figure 6) and the
eight schools (figures 5 and 7), both from :mod:`workbench.datasets`.  Bayesian fits are
optional (``bayes=False`` draws every figure from the REML side and the exact grid curves only).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import datasets
from . import style

RADON_FORMULA = "log_radon ~ floor + log_uppm + (1 | county)"
SCHOOLS_FORMULA = "y ~ 1 + (1 | school)"
FIGURES = {
    1: "fig1_shrinkage",
    2: "fig2_group_intervals",
    3: "fig3_fixed_intervals",
    4: "fig4_variance_components",
    5: "fig5_profile_vs_posterior",
    6: "fig6_covariance_V",
    7: "fig7_prior_sensitivity",
}
#: Prior strings (``workbench.bayes.priors``) matching :data:`workbench.plots.priors.PRIORS`.
PRIOR_STRINGS = {
    "half-Cauchy(0, 25)": "HalfCauchy(25)",
    "half-normal(0, 10)": "HalfNormal(10)",
    "inverse-gamma(0.001, 0.001) on tau^2": "InverseGamma(0.001, 0.001)",
    "uniform(0, 100)": "Uniform(0, 100)",
}
FLAT_PRIORS = {"beta": "Flat()", "sd": "HalfFlat()", "sigma": "HalfFlat()"}


def small_data(seed: int = 5) -> pd.DataFrame:
    """A small unbalanced data set (5 groups, 22 rows) with random intercepts and slopes."""
    rng = np.random.default_rng(seed)
    sizes = [3, 5, 4, 6, 4]
    rows = []
    for j, m in enumerate(sizes):
        a, b = rng.normal(0, 1.0), rng.normal(0, 0.8)
        x = np.sort(rng.uniform(-1, 1, m))
        y = 1.0 + a + (0.5 + b) * x + rng.normal(0, 0.4, m)
        rows += [{"g": f"g{j + 1}", "x": xi, "y": yi} for xi, yi in zip(x, y)]
    return pd.DataFrame(rows)


def _bayes_available() -> bool:
    try:
        from ..bayes import fit as _  # noqa: F401
    except ImportError:
        return False
    return True


def _profile_table(fit):
    """lme4-style profile intervals when the profile module exists (else None)."""
    try:
        from ..reml.profile import profile_ci
    except ImportError:
        return None
    t = profile_ci(fit)
    t["method"] = fit.name
    t["interval"] = "profile"
    est = fit.params().set_index("parameter")["estimate"]
    t["estimate"] = t["parameter"].map(est)
    return t


def _bootstrap_table(fit, seed: int, n: int = 400):
    """Parametric-bootstrap percentile intervals (``workbench.reml.bootstrap``), else None."""
    try:
        from ..reml.bootstrap import bootstrap
    except ImportError:
        return None
    t = bootstrap(fit, n=n, seed=seed).ci(0.95)
    t = t[["parameter", "estimate", "lower", "upper"]].copy()
    t["method"] = fit.name
    t["interval"] = "bootstrap"
    return t


def comparison_figures(reml, bayes, comparison, out_dir, formats=("png", "pdf"), profile=None,
                       truth: dict | None = None, group: str | None = None) -> list[Path]:
    """Figures 1-4 of one model (shrinkage, group intervals, fixed intervals, variances).

    Returns
    -------
    list of Path
    """
    from .intervals import plot_caterpillar, plot_fixed_intervals
    from .shrinkage import plot_shrinkage
    from .variance import plot_variance_components

    out = Path(out_dir)
    files = []
    files += style.save(plot_shrinkage(reml, bayes, group=group), out / FIGURES[1], formats)
    files += style.save(plot_caterpillar(reml, bayes, group=group), out / FIGURES[2], formats)
    files += style.save(plot_fixed_intervals(comparison, truth=truth), out / FIGURES[3], formats)
    files += style.save(plot_variance_components(reml, bayes, profile=profile), out / FIGURES[4],
                        formats)
    return files


def make_report_figures(out_dir="figures", seed: int = 20261125, bayes: bool = True,
                        formats=("png", "pdf"), draws: int = 1000, tune: int = 1000,
                        chains: int = 2, progress: bool = True, only=None) -> list[Path]:
    """Regenerate every report figure (1-7) from fixed seeds.

    Parameters
    ----------
    out_dir : str or Path
    seed : int
        Seed of every Bayesian fit (and of the bootstrap when present).
    bayes : bool
        Run the Bayesian fits (PyMC); without them the figures show the REML side and the exact
        grid curves.
    formats : tuple of str
        Matplotlib formats; PNG plus PDF by default.
    draws, tune, chains : int
        Sampler settings of the Bayesian fits.
    progress : bool
        Print a line per figure and show the sampler's progress.
    only : iterable of int, optional
        Figure numbers to draw (default all).

    Returns
    -------
    list of Path
        Files written.
    """
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "cairo"):
        matplotlib.use("Agg")
    from ..api import fit as fit_model
    from ..compare import compare
    from .covariance import plot_covariance
    from .priors import plot_prior_sensitivity
    from .variance import plot_profile_posterior

    want = set(only or FIGURES)
    out = Path(out_dir)
    files: list[Path] = []
    say = print if progress else (lambda *a, **k: None)
    use_bayes = bayes and _bayes_available()
    if bayes and not use_bayes:
        say("workbench.bayes is not available: drawing the REML side only")
    bopts = dict(draws=draws, tune=tune, chains=chains, seed=seed, progressbar=progress)
    t0 = time.perf_counter()

    if want & {1, 2, 3, 4, 5}:
        radon = datasets.load("radon")
        reml = fit_model(RADON_FORMULA, radon, method="reml")
        ml = fit_model(RADON_FORMULA, radon, method="ml")
        post = fit_model(RADON_FORMULA, radon, method="bayes", **bopts) if use_bayes else None
        prof = _profile_table(reml)
        boot = _bootstrap_table(reml, seed)
        comp = compare(*[f for f in (reml, ml, post) if f is not None],
                       *[t for t in (prof, boot) if t is not None])
        from .intervals import plot_caterpillar, plot_fixed_intervals
        from .shrinkage import plot_shrinkage
        from .variance import plot_variance_components

        if 1 in want:
            files += style.save(plot_shrinkage(reml, post, response_label="county intercept "
                                               "(log radon, basement, log uranium 0)"),
                                out / FIGURES[1], formats)
        if 2 in want:
            files += style.save(plot_caterpillar(reml, post), out / FIGURES[2], formats)
        if 3 in want:
            files += style.save(plot_fixed_intervals(comp), out / FIGURES[3], formats)
        if 4 in want:
            files += style.save(plot_variance_components(reml, post, profile=prof),
                                out / FIGURES[4], formats)
        say(f"figures 1-4 (radon) done, {time.perf_counter() - t0:.0f} s")

    schools = datasets.load("eight_schools")
    s_reml = fit_model(SCHOOLS_FORMULA, schools, method="reml", known_sd="sigma")
    if 5 in want:
        flat_radon = flat_schools = None
        if use_bayes:
            radon1 = datasets.load("radon")
            flat_radon = fit_model("log_radon ~ floor + (1 | county)", radon1, method="bayes",
                                   priors=FLAT_PRIORS, **bopts)
            flat_schools = fit_model(SCHOOLS_FORMULA, schools, method="bayes", known_sd="sigma",
                                     priors={"beta": "Flat()", "sd": "Uniform(0, 1000)"},
                                     target_accept=0.95, **bopts)
        r1 = fit_model("log_radon ~ floor + (1 | county)", datasets.load("radon"))
        fig = plot_profile_posterior([(r1, "(a) radon: sd of county intercepts", flat_radon),
                                      (s_reml, "(b) eight schools: tau", flat_schools)])
        files += style.save(fig, out / FIGURES[5], formats)
        say(f"figure 5 done, {time.perf_counter() - t0:.0f} s")
    if 6 in want:
        small = small_data()
        fi = fit_model("y ~ 1 + x + (1 | g)", small)
        fs = fit_model("y ~ 1 + x + (1 + x | g)", small)
        files += style.save(plot_covariance(fi, fs), out / FIGURES[6], formats)
    if 7 in want:
        fits = {}
        if use_bayes:
            for lab, prior in PRIOR_STRINGS.items():
                fits[lab] = fit_model(SCHOOLS_FORMULA, schools, method="bayes", known_sd="sigma",
                                      priors={"sd": prior}, target_accept=0.95, **bopts)
        files += style.save(plot_prior_sensitivity(s_reml, bayes_fits=fits), out / FIGURES[7],
                            formats)
        say(f"figures 6-7 done, {time.perf_counter() - t0:.0f} s")
    return files
