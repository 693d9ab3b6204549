"""Jobs: fit models, then write tables and figures (``workbench demo``, ``compare``, ``figures``).

A job fits first and writes after, each file atomically, so a failure leaves no half-written
output.  The modules it calls stay single-purpose: :mod:`workbench.compare` only compares,
:mod:`workbench.plots` only draws from fits it is given.

=========================  ===========================================================
``run_demo``               simulate the demo design, fit REML, ML and Bayes, write all
``compare_and_write``      fit one model every way, write the tables and figures
``make_report_figures``    every report figure (1-7) from fixed seeds
=========================  ===========================================================
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import api, datasets
from .progress import Stages
from .compare import compare, interval_likelihood
from .errors import WorkbenchError
from .demo import demo_design
from .formula import parse_formula
from .io import atomic_write_text
from .reml.bootstrap import bootstrap
from .reml.profile import profile_ci, with_profile_ci
from .simulate import simulate
from .plots import style
from .plots.report import FIGURES, comparison_figures, small_data
from .plots.style import use_file_backend

CI_KINDS = ("wald", "profile", "bootstrap")
RADON_FORMULA = "log_radon ~ floor + log_uppm + (1 | county)"
SCHOOLS_FORMULA = "y ~ 1 + (1 | school)"
#: Prior strings (``workbench.bayes.priors``) matching :data:`workbench.plots.priors.PRIORS`.
PRIOR_STRINGS = {
    "half-Cauchy(0, 25)": "HalfCauchy(25)",
    "half-normal(0, 10)": "HalfNormal(10)",
    "inverse-gamma(0.001, 0.001) on tau^2": "InverseGamma(0.001, 0.001)",
    "uniform(0, 100)": "Uniform(0, 100)",
}
FLAT_PRIORS = {"beta": "Flat()", "sd": "HalfFlat()", "sigma": "HalfFlat()"}


# --------------------------------------------------------------------------- demo
def run_demo(out_dir="demo-out", seed: int = 1, progress: bool = True, draws: int = 1000,
             tune: int = 1000, chains: int = 2, design=None, echo=print) -> dict:
    """Simulate the demo data, fit it by REML, ML and Bayes, print and write the comparison.

    Parameters
    ----------
    out_dir : str or Path
        Folder for ``data.csv``, the tables (CSV, Markdown, LaTeX), ``fits.json`` and the
        figures (PNG and PDF).  Every file is replaced atomically.
    seed : int
        Seed of the simulation and of the sampler.
    progress : bool
        Print the steps and show the sampler's progress bar.
    draws, tune, chains : int
        Sampler settings.
    design : str or Path, optional
        A simulation design TOML instead of the default.
    echo : callable
        Where the steps and the side-by-side table are printed (``print``).

    Returns
    -------
    dict
        ``comparison`` (:class:`~workbench.compare.Comparison`), ``table`` (side-by-side
        DataFrame with a ``truth`` column), ``fits`` (``{"reml", "ml", "bayes"}``), ``data``,
        ``truth``, ``files`` (paths written), ``seconds`` (per step) and ``out_dir``.
    """
    use_file_backend()

    say = echo if progress else (lambda *a, **k: None)
    out = Path(out_dir)
    seconds = {}
    t0 = time.perf_counter()
    sim = demo_design(design)
    data, truth = simulate(sim, seed)
    formula = sim.formula
    say(f"simulated {len(data)} rows in {data[formula_group(formula)].nunique()} groups "
        f"from {formula}")
    seconds["simulate"] = time.perf_counter() - t0

    with Stages("demo", ["REML and ML fits, profile intervals", "Bayesian fit",
                         "tables and figures"]) as bar:
        t = time.perf_counter()
        bar.start("REML and ML fits, profile intervals")
        # profile-likelihood intervals (lme4's confint default) give every parameter an interval;
        # as lme4, both profile the ML deviance, so the REML and ML columns' intervals agree
        reml = with_profile_ci(api.fit(formula, data, method="reml"))
        ml = with_profile_ci(api.fit(formula, data, method="ml"))
        seconds["reml_ml"] = time.perf_counter() - t
        say(f"REML and ML fits with profile intervals: {seconds['reml_ml']:.1f} s")

        t = time.perf_counter()
        bar.start("Bayesian fit")
        say(f"Bayesian fit: {chains} chains x ({tune} tune + {draws} draws); the first run compiles "
            "the model")
        bayes = api.fit(formula, data, method="bayes", draws=draws, tune=tune, chains=chains,
                          seed=seed, progressbar=progress)
        seconds["bayes"] = time.perf_counter() - t
        say(f"Bayesian fit: {seconds['bayes']:.1f} s (max R-hat "
            f"{bayes.diagnostics.get('max_rhat', float('nan')):.3f}, divergences "
            f"{bayes.diagnostics.get('divergences', 'n/a')})")

        comp = compare(reml, ml, bayes)
        table = comp.side_by_side()
        table.insert(1, "truth", [_fmt(truth.get(p)) for p in table["parameter"]])
        echo("")
        echo(_plain_table(table))
        for note in comp.interval_notes():
            echo(note)

        t = time.perf_counter()
        bar.start("tables and figures")
        files = []
        path = out / "data.csv"
        atomic_write_text(path, data.to_csv(index=False))
        files.append(path)
        files += comp.write(out)
        path = out / "side_by_side.csv"
        atomic_write_text(path, table.to_csv(index=False))  # with the truth column
        path = out / "fits.json"
        atomic_write_text(path, json.dumps({"truth": truth, "reml": reml.to_dict(),
                                            "ml": ml.to_dict(), "bayes": bayes.to_dict()}, indent=1))
        files.append(path)
        files += comparison_figures(reml, bayes, comp, out, truth=truth)
        seconds["write"] = time.perf_counter() - t
        seconds["total"] = time.perf_counter() - t0
        say(f"\nwrote {len(files)} files to {out}/ in {seconds['total']:.1f} s in all")
        return {"comparison": comp, "table": table, "fits": {"reml": reml, "ml": ml, "bayes": bayes},
                "data": data, "truth": truth, "files": files, "seconds": seconds, "out_dir": out}


def formula_group(formula: str) -> str:
    """The first grouping factor named in a formula (``... | g)`` -> ``g``)."""

    return parse_formula(formula).random[0].factors[0]


def _fmt(v) -> str:
    return "" if v is None else f"{v:.3f}"


def _plain_table(df: pd.DataFrame) -> str:
    """A fixed-width table for the terminal."""
    cols = [str(c) for c in df.columns]
    rows = [[str(x) for x in r] for r in df.itertuples(index=False)]
    w = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(wi) for c, wi in zip(cols, w)),
             "  ".join("-" * wi for wi in w)]
    lines += ["  ".join(x.ljust(wi) for x, wi in zip(r, w)) for r in rows]
    return "\n".join(lines)


# --------------------------------------------------------------------------- compare
#: The methods ``compare`` fits by default.
COMPARE_METHODS = ("reml", "ml", "bayes")
_STAGE = {"reml": "REML fit", "ml": "ML fit", "fgls": "feasible-GLS fit", "igls": "IGLS fit",
          "rigls": "RIGLS fit", "bayes": "Bayesian fit"}


def compare_and_write(formula: str, data: pd.DataFrame, out_dir, priors: dict | None = None,
                      seed: int = 0, figures: bool = True, known_sd: str | None = None,
                      weights: str | None = None, offset: str | None = None,
                      progress: bool = False, ci: str = "wald", nboot: int = 1000,
                      methods=COMPARE_METHODS, fgls: str | None = None,
                      gls: str | None = None, **bayes_options) -> dict:
    """Fit a model by several methods (REML, ML and Bayes by default), then write the tables
    and figures to ``out_dir``.

    Every fit is done before anything is written, and each file is replaced atomically, so a
    failure leaves no half-written output.

    Parameters
    ----------
    formula : str
    data : DataFrame
    out_dir : str or Path
    priors : dict, optional
        Passed to the Bayesian fit (e.g. ``{"sd": "HalfCauchy(5)"}``).
    seed : int
        Seed of the Bayesian fit.
    figures : bool
        Also draw the comparison figures: shrinkage, group-effect intervals and variance
        components of the REML (else ML) fit beside the posterior (figures 1, 2, 4; skipped
        without a REML or ML fit), fixed-effect intervals of every method (3) and every
        method's variance parameters (8).
    known_sd : str, optional
        Column of known residual sds.
    weights, offset : str, optional
        Columns of prior weights and of an offset (see :func:`workbench.fit`).
    progress : bool
        Show the sampler's progress bar.  A bar over the stages is shown on stderr when it is a
        terminal (:mod:`workbench.progress`).
    ci : {"wald", "profile", "bootstrap"}
        Intervals of the REML and ML random-effects fits (:func:`with_ci`): profile intervals are
        on the ML deviance for both (lme4), so they agree between the two columns; the other
        methods keep their own intervals (Wald for FGLS, IGLS, RIGLS and nlme's GLS, credible
        for Bayes), and the table notes say which each column shows.
    nboot : int
        Bootstrap refits for ``ci="bootstrap"`` (seeded by ``seed``).
    methods : sequence of str
        Which of ``workbench.options.METHODS`` to fit, in column order.
    fgls : {"swar", "walhus", "amemiya", "nerlove"}, optional
        The feasible-GLS estimator (needs ``"fgls"`` in ``methods``; default ``swar``).
    gls : str, optional
        A residual correlation structure written as nlme writes it (``"cs(~ 1 | g)"``): also fit
        the formula's fixed part with it (``nlme::gls``), by REML when ``"reml"`` is among the
        methods and by ML when ``"ml"`` is; the columns are ``gls cs (REML)``, ``gls cs (ML)``.
        With ``cs`` this is the random-intercept model written as a residual correlation.
    **bayes_options
        ``draws``, ``tune``, ``chains``, ... for the Bayesian fit.

    Returns
    -------
    dict
        ``{"parameters", "group_effects", "variance_components", "side_by_side"}`` DataFrames,
        plus ``"comparison"`` (the :class:`~workbench.compare.Comparison`), ``"fits"``,
        ``"files"`` and ``"notes"`` (which interval each column shows, on which likelihood, and
        which figures leave a method out).

    Raises
    ------
    WorkbenchError
        An unknown or repeated method, an interval kind or option that applies to no method
        asked for (``ci="profile"`` without REML or ML, ``fgls`` without ``"fgls"``, priors or
        sampler options without ``"bayes"``, ``gls`` without REML or ML), before any fitting.
    """
    methods = _check_compare_methods(methods, ci, fgls, gls, priors, bayes_options)
    if ci not in CI_KINDS:
        raise WorkbenchError(f"unknown interval kind '{ci}'; choose one of {', '.join(CI_KINDS)}")
    cols = {"known_sd": known_sd, "weights": weights, "offset": offset}
    opts = dict(bayes_options)
    opts.setdefault("seed", seed)
    if priors:
        opts["priors"] = priors
    opts.setdefault("progressbar", progress)
    likelihood = [m for m in methods if m in ("reml", "ml")]
    gls_fits = {f"gls {_gls_kind(gls)} ({m.upper()})": m for m in likelihood} if gls else {}
    stages = [_STAGE[m] for m in methods] + ([f"{ci} intervals"] if ci != "wald" else []) \
        + [f"{k} fit" for k in gls_fits] + ["tables" + (" and figures" if figures else "")]
    with Stages("compare", stages) as bar:
        fits = {}
        for m in methods:
            bar.start(_STAGE[m])
            if m == "bayes":
                fits[m] = api.fit(formula, data, method=m, **cols, **opts)
            elif m == "fgls":
                fits[m] = api.fit(formula, data, method=m, **cols,
                                  **({"fgls": fgls} if fgls else {}))
            else:
                fits[m] = api.fit(formula, data, method=m, **cols)
        if ci != "wald":
            bar.start(f"{ci} intervals")
            fits.update({m: with_ci(fits[m], ci, nboot=nboot, seed=seed) for m in likelihood})
        if gls_fits:
            spec = parse_formula(formula)
            fixed = f"{spec.response} ~ {spec.fixed}"
        for label, m in gls_fits.items():
            bar.start(f"{label} fit")
            fits[label] = api.fit(fixed, data, method=m, correlation=gls, label=label, **cols)
        bar.start(stages[-1])
        comp = compare(*fits.values())
        out = Path(out_dir)
        notes = comp.interval_notes()
        if figures:
            use_file_backend()
            base_key = next((m for m in ("reml", "ml") if m in fits), None)
            drawn = [k for k in (base_key, "bayes") if k in fits]
            others = [name for name, k in zip(comp.methods, fits) if k not in drawn]
            if base_key is None:
                notes.append("figures 1, 2 and 4 draw a REML or ML fit beside the posterior; "
                             "with neither they are not drawn (figures 3 and 8 show every method)")
            elif others:
                notes.append(f"figures 1, 2 and 4 draw {' and '.join(drawn)}; "
                             f"{', '.join(others)} appear in figures 3 and 8")
        files = comp.write(out)
        if figures:
            files += comparison_figures(fits.get(base_key), fits.get("bayes"), comp, out,
                                        methods=True)
    result = dict(comp.tables(), side_by_side=comp.side_by_side())
    result.update(comparison=comp, fits=fits, files=files, notes=notes)
    return result


def _gls_kind(correlation: str) -> str:
    from .gls.corstruct import parse_correlation

    return parse_correlation(correlation).kind


def _check_compare_methods(methods, ci, fgls, gls, priors, bayes_options) -> list[str]:
    """The methods of :func:`compare_and_write`, checked with the options that need one."""
    from .options import METHODS

    methods = list(methods)
    if not methods:
        raise WorkbenchError("compare needs at least one method")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise WorkbenchError(f"unknown method '{bad[0]}'; choose from {', '.join(METHODS)}")
    if len(set(methods)) != len(methods):
        raise WorkbenchError("a method is given twice")
    likelihood = {"reml", "ml"} & set(methods)
    if ci != "wald" and not likelihood:
        raise WorkbenchError(f"{ci} intervals apply to REML and ML fits; add reml or ml to the "
                             "methods (FGLS, IGLS, RIGLS report Wald intervals, Bayes credible "
                             "ones)")
    if fgls is not None and "fgls" not in methods:
        raise WorkbenchError("the fgls estimator applies to the fgls method; add fgls to the "
                             "methods")
    if gls is not None and not likelihood:
        raise WorkbenchError("a GLS correlation structure is fitted by REML or ML; add reml or "
                             "ml to the methods")
    if (priors or bayes_options) and "bayes" not in methods:
        given = sorted((["priors"] if priors else []) + list(bayes_options))
        raise WorkbenchError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to "
                             "the Bayesian fit; add bayes to the methods")
    return methods


def with_ci(fit, ci: str, nboot: int = 1000, seed: int = 0):
    """A copy of a REML/ML fit carrying ``ci`` intervals: ``wald`` (as fitted), ``profile``
    (on the ML deviance, as lme4) or ``bootstrap`` (parametric, ``nboot`` refits, seeded)."""
    from .reml.profile import with_intervals

    if ci == "wald":
        return fit
    if ci == "profile":
        return with_profile_ci(fit)
    result = bootstrap(fit, nboot, seed)
    return with_intervals(fit, result.ci(0.95), "bootstrap",
                          {"bootstrap": {"n": nboot, "seed": seed, "failures": result.failures}})


# --------------------------------------------------------------------------- report figures
def _bayes_available() -> bool:
    """Whether PyMC (an optional dependency of the figures) can be imported."""
    import importlib.util

    return importlib.util.find_spec("pymc") is not None


def _profile_table(fit):
    """lme4-style profile intervals as a comparison table."""
    t = profile_ci(fit)
    t["method"] = fit.name
    t["interval"] = "profile"
    t["likelihood"] = interval_likelihood(fit.method, "profile")
    est = fit.params().set_index("parameter")["estimate"]
    t["estimate"] = t["parameter"].map(est)
    return t


def _bootstrap_table(fit, seed: int, n: int = 400):
    """Parametric-bootstrap percentile intervals (``workbench.reml.bootstrap``)."""
    t = bootstrap(fit, n=n, seed=seed).ci(0.95)
    t = t[["parameter", "estimate", "lower", "upper"]].copy()
    t["method"] = fit.name
    t["interval"] = "bootstrap"
    t["likelihood"] = interval_likelihood(fit.method, "bootstrap")
    return t


def make_report_figures(out_dir="figures", seed: int = 20261125, bayes: bool = True,
                        formats=("png", "pdf"), draws: int = 1000, tune: int = 1000,
                        chains: int = 2, progress: bool = True, only=None) -> list[Path]:
    """Regenerate every report figure (1-9) from fixed seeds.

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
    use_file_backend()
    want = set(only or FIGURES)
    say = print if progress else (lambda *a, **k: None)
    use_bayes = bayes and _bayes_available()
    if bayes and not use_bayes:
        say("workbench.bayes is not available: drawing the REML side only")
    run = _FigureRun(Path(out_dir), tuple(formats), seed, use_bayes,
                     dict(draws=draws, tune=tune, chains=chains, seed=seed, progressbar=progress),
                     say, time.perf_counter())
    stages = (["radon: REML, ML, Bayes, profile, bootstrap", "figures 1-4"]
              if want & {1, 2, 3, 4, 5} else [])
    stages += [lab for n, lab in ((5, "figure 5: flat-prior fits"), (6, "figure 6"),
                                  (7, "figure 7: four priors"),
                                  (8, "figure 8: radon by every method"),
                                  (9, "figure 9: IGLS and RIGLS iterates")) if n in want]
    files: list[Path] = []
    with Stages("figures", stages) as bar:
        if want & {1, 2, 3, 4, 5}:
            files += _radon_figures(run, want, bar)
        schools = datasets.load("eight_schools")
        s_reml = api.fit(SCHOOLS_FORMULA, schools, method="reml", known_sd="sigma")
        if 5 in want:
            files += _figure_profile_posterior(run, schools, s_reml, bar)
        if 6 in want:
            files += _figure_covariance(run, bar)
        if 7 in want:
            files += _figure_prior_sensitivity(run, schools, s_reml, bar)
        if 8 in want:
            files += _figure_methods(run, bar)
        if 9 in want:
            files += _figure_iterations(run, bar)
    return files


@dataclass(frozen=True)
class _FigureRun:
    """What every stage of :func:`make_report_figures` shares."""

    out: Path
    formats: tuple
    seed: int
    use_bayes: bool
    bopts: dict
    say: object
    t0: float

    def save(self, fig, number: int) -> list[Path]:
        return style.save(fig, self.out / FIGURES[number], self.formats)

    def done(self, what: str) -> None:
        self.say(f"{what} done, {time.perf_counter() - self.t0:.0f} s")


def _radon_figures(run: _FigureRun, want: set, bar) -> list[Path]:
    """Figures 1-4 on the radon data: REML, ML and Bayes fits, profile and bootstrap intervals."""
    from .plots.intervals import plot_caterpillar, plot_fixed_intervals
    from .plots.shrinkage import plot_shrinkage
    from .plots.variance import plot_variance_components

    bar.start("radon: REML, ML, Bayes, profile, bootstrap")
    radon = datasets.load("radon")
    reml = api.fit(RADON_FORMULA, radon, method="reml")
    ml = api.fit(RADON_FORMULA, radon, method="ml")
    post = api.fit(RADON_FORMULA, radon, method="bayes", **run.bopts) if run.use_bayes else None
    prof = _profile_table(reml)
    boot = _bootstrap_table(reml, run.seed)
    comp = compare(*[f for f in (reml, ml, post) if f is not None],
                   *[t for t in (prof, boot) if t is not None])
    bar.start("figures 1-4")
    files: list[Path] = []
    if 1 in want:
        files += run.save(plot_shrinkage(reml, post, response_label="county intercept\n(log radon; "
                                         "basement, log uranium 0)"), 1)
    if 2 in want:
        files += run.save(plot_caterpillar(reml, post), 2)
    if 3 in want:
        files += run.save(plot_fixed_intervals(comp), 3)
    if 4 in want:
        files += run.save(plot_variance_components(reml, post, profile=prof), 4)
    run.done("figures 1-4 (radon)")
    return files


def _figure_profile_posterior(run: _FigureRun, schools, s_reml, bar) -> list[Path]:
    """Figure 5: profile likelihoods beside flat-prior marginal posteriors."""
    from .plots.variance import plot_profile_posterior

    bar.start("figure 5: flat-prior fits")
    flat_radon = flat_schools = None
    if run.use_bayes:
        radon1 = datasets.load("radon")
        flat_radon = api.fit("log_radon ~ floor + (1 | county)", radon1, method="bayes",
                             priors=FLAT_PRIORS, **run.bopts)
        flat_schools = api.fit(SCHOOLS_FORMULA, schools, method="bayes", known_sd="sigma",
                               priors={"beta": "Flat()", "sd": "Uniform(0, 1000)"},
                               target_accept=0.95, **run.bopts)
    r1 = api.fit("log_radon ~ floor + (1 | county)", datasets.load("radon"))
    # a simpler model than figures 1-4 (no log_uppm): the title names it
    fig = plot_profile_posterior([(r1, "(a) radon, log_radon ~ floor + (1 | county):\n"
                                   "sd of county intercepts", flat_radon),
                                  (s_reml, "(b) eight schools: tau", flat_schools)])
    files = run.save(fig, 5)
    run.done("figure 5")
    return files


def _figure_covariance(run: _FigureRun, bar) -> list[Path]:
    """Figure 6: V = Z G Z' + sigma^2 I for a random intercept and for random slopes."""
    from .plots.covariance import plot_covariance

    bar.start("figure 6")
    small = small_data()
    fi = api.fit("y ~ 1 + x + (1 | g)", small)
    fs = api.fit("y ~ 1 + x + (1 + x | g)", small)
    return run.save(plot_covariance(fi, fs), 6)


def _figure_prior_sensitivity(run: _FigureRun, schools, s_reml, bar) -> list[Path]:
    """Figure 7: the eight-schools posterior of tau under four priors."""
    from .plots.priors import plot_prior_sensitivity

    bar.start("figure 7: four priors")
    fits = {}
    if run.use_bayes:
        for lab, prior in PRIOR_STRINGS.items():
            fits[lab] = api.fit(SCHOOLS_FORMULA, schools, method="bayes", known_sd="sigma",
                                priors={"sd": prior}, target_accept=0.95, **run.bopts)
    files = run.save(plot_prior_sensitivity(s_reml, bayes_fits=fits), 7)
    run.done("figures 6-7")
    return files


def _figure_methods(run: _FigureRun, bar) -> list[Path]:
    """Figure 8: the radon model's variance parameters by REML, ML, feasible GLS, IGLS, RIGLS,
    nlme's compound-symmetry GLS and the posterior."""
    from .plots.methods import plot_parameters_by_method

    bar.start("figure 8: radon by every method")
    radon = datasets.load("radon")
    fits = [api.fit(RADON_FORMULA, radon, method=m) for m in ("reml", "ml", "fgls", "igls",
                                                              "rigls")]
    spec = parse_formula(RADON_FORMULA)
    fits.append(api.fit(f"{spec.response} ~ {spec.fixed}", radon,
                        correlation="cs(~ 1 | county)", label="gls cs (REML)"))
    if run.use_bayes:
        fits.append(api.fit(RADON_FORMULA, radon, method="bayes", **run.bopts))
    files = run.save(plot_parameters_by_method(compare(*fits)), 8)
    run.done("figure 8")
    return files


def _figure_iterations(run: _FigureRun, bar) -> list[Path]:
    """Figure 9: IGLS and RIGLS iterates on the ML and REML surfaces (sleepstudy, random
    intercept)."""
    import matplotlib.pyplot as plt

    from .plots.iterations import plot_iterations

    bar.start("figure 9: IGLS and RIGLS iterates")
    sleep = datasets.load("sleepstudy")
    with style.context():
        fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.5))
    for ax, method in zip(axes, ("igls", "rigls")):
        plot_iterations(api.fit("Reaction ~ Days + (1 | Subject)", sleep, method=method), ax=ax)
    fig.tight_layout()
    files = run.save(fig, 9)
    run.done("figure 9")
    return files


__all__ = ["run_demo", "compare_and_write", "make_report_figures", "FIGURES", "small_data"]
