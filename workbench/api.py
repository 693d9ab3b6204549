"""The public entry point: ``workbench.fit(formula, data, method=...)``."""

from __future__ import annotations

import contextlib

import pandas as pd

from .design import build_design
from .errors import OptionError, WorkbenchError
from .formula import parse_formula
from .options import METHODS, method_options
from .record import Fit

__all__ = ["fit", "criterion", "METHODS"]


def fit(formula: str, data: pd.DataFrame, method: str = "reml", *, known_sd: str | None = None,
        weights: str | None = None, offset: str | None = None,
        contrasts: dict[str, str] | None = None, label: str | None = None,
        correlation: str | None = None, **options) -> Fit:
    """Fit a linear mixed model given by an lme4-style formula.

    Parameters
    ----------
    formula : str
        e.g. ``"y ~ 1 + x + (1 + x | g)"``.
    data : DataFrame
    method : {"reml", "ml", "fgls", "igls", "rigls", "bayes"}
        REML or maximum likelihood (the GLS engine); feasible GLS with moment estimators of a
        random intercept's variance (plm's, :mod:`workbench.gls.fgls`); Goldstein's iterated
        GLS, converging to the ML (``igls``) or REML (``rigls``) fit
        (:mod:`workbench.gls.igls`); or a PyMC Bayesian fit.
    known_sd : str, optional
        Column of known residual standard deviations (meta-analysis form): no residual
        variance is estimated.
    weights : str, optional
        Column of prior weights w_i > 0: the residual variance of row i is sigma^2 / w_i
        (lme4's ``weights=``).
    offset : str, optional
        Column added to the linear predictor with coefficient 1 (as ``offset(col)`` in the
        formula).
    contrasts : dict, optional
        Factor -> ``"treatment"``, ``"sum"``, ``"helmert"`` or ``"poly"`` (R's ``contrasts=``).
    label : str, optional
        Name of the fit in comparison tables (default: the method).
    correlation : str, optional
        A residual correlation structure written as nlme writes it: ``"cs(~ 1 | g)"``
        (compound symmetry, ``corCompSymm``) or ``"ar1(~ 1 | g)"``, ``"ar1(~ t | g)"``
        (``corAR1``, t an integer position); REML or ML, a model without random effects
        (``nlme::gls``; :mod:`workbench.gls.corstruct`).
    **options
        The method's options, checked by :class:`workbench.options.RemlOptions` (``nobound``,
        ``vc_se``, ``level``, ``blas_threads``), :class:`workbench.options.FglsOptions`
        (``fgls``: ``"swar"``, ``"walhus"``, ``"amemiya"``, ``"nerlove"``; ``level``),
        :class:`workbench.options.IglsOptions` (``tol``, ``maxiter``, ``level``) or
        :class:`workbench.options.BayesOptions`
        (``draws``, ``tune``, ``chains``, ``seed``, ``priors``, ``target_accept``, ...; see
        :func:`workbench.bayes.fit.fit_bayes`).

    Returns
    -------
    Fit

    Raises
    ------
    OptionError
        An unknown method or option, or a bad option value, before any data is read.
    """
    opts = method_options(method, **options)
    spec = parse_formula(formula)
    if correlation is not None:
        return _fit_correlated(spec, data, method, opts, correlation, label,
                               dict(known_sd=known_sd, weights=weights, offset=offset),
                               contrasts, options)
    limit = contextlib.nullcontext()
    if method in ("reml", "ml"):
        from .reml.fit import blas_limits

        # the design's products (X'X for the rank check) under the fit's BLAS limit too: on a
        # busy machine threaded BLAS on small matrices costs milliseconds
        limit = blas_limits(opts.blas_threads)
    with limit:
        design = build_design(spec, data, known_sd=known_sd, weights=weights, offset=offset,
                              contrasts=contrasts)
    if method in ("reml", "ml"):
        from .reml.fit import fit_reml

        if not design.terms:  # no random effects: weighted least squares, as nlme::gls
            from .reml.linear import fit_linear

            extra = sorted(k for k in options if k not in ("level", "blas_threads"))
            if extra:
                raise OptionError(f"option(s) {', '.join(extra)} need a random-effects term; "
                                  "a model without one takes only level")
            return fit_linear(design, reml=(method == "reml"), label=label, level=opts.level)
        return fit_reml(design, reml=(method == "reml"), label=label, **opts.kwargs())
    if method == "fgls":
        from .gls.fgls import fit_fgls

        return fit_fgls(design, estimator=opts.fgls, level=opts.level, label=label)
    if method in ("igls", "rigls"):
        from .gls.igls import fit_igls

        return fit_igls(design, reml=(method == "rigls"), label=label, **opts.kwargs())
    from .bayes.fit import fit_bayes

    return fit_bayes(design, label=label, **opts.kwargs())


def _fit_correlated(spec, data, method, opts, correlation, label, columns, contrasts, options):
    """REML/ML with a residual correlation structure and no random effects (``nlme::gls``)."""
    from .errors import NotYetSupportedError
    from .gls.corstruct import correlation_rows, fit_corgls, parse_correlation

    if method not in ("reml", "ml"):
        raise OptionError(f"correlation= needs method 'reml' or 'ml', not '{method}'")
    extra = sorted(k for k in options if k not in ("level", "blas_threads"))
    if extra:
        raise OptionError(f"option(s) {', '.join(extra)} do not apply with a correlation "
                          "structure; it takes only level")
    corr = parse_correlation(correlation)
    data, codes, pos = correlation_rows(spec, data, corr, **columns)
    design = build_design(spec, data, contrasts=contrasts, **columns)
    if design.terms:
        raise NotYetSupportedError("a correlation structure with random-effects terms "
                                   "(nlme::lme) is not implemented yet; drop the '( | )' terms "
                                   "for nlme::gls")
    return fit_corgls(design, codes, pos, corr, reml=(method == "reml"), level=opts.level,
                      label=label)


def criterion(formula: str, data: pd.DataFrame, reml: bool = True, *, known_sd: str | None = None,
              weights: str | None = None, offset: str | None = None,
              contrasts: dict[str, str] | None = None):
    """The profiled REML criterion (or ML deviance) of a model as a function of theta.

    lme4's ``lmer(..., devFunOnly = TRUE)``: a pure function, evaluated without fitting.

    Parameters
    ----------
    formula, data, known_sd, weights, offset, contrasts
        As for :func:`fit`.
    reml : bool
        REML criterion (True) or ML deviance (False).

    Returns
    -------
    callable
        ``f(theta) -> float``, with attributes ``system`` (the blocked PLS system; its
        ``structure`` gives theta's layout, lower bounds and lme4's start) and ``reml``.

    Examples
    --------
    >>> f = workbench.criterion("Reaction ~ Days + (Days | Subject)", sleepstudy)
    >>> f([0.9667, 0.0152, 0.2309])  # lme4's REML optimum: 1743.628
    """
    from .reml.criterion import make_criterion

    design = build_design(parse_formula(formula), data, known_sd=known_sd, weights=weights,
                          offset=offset, contrasts=contrasts)
    if not design.terms:
        raise WorkbenchError(f"formula '{formula}' has no random-effects term such as '(1 | g)'")
    return make_criterion(design, reml=reml)
