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
        correlation: str | None = None, variance: str | None = None, **options) -> Fit:
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
        (``corAR1``, t an integer position), ``"car1(~ t | g)"`` (``corCAR1``, t continuous),
        ``"symm(~ t | g)"`` (``corSymm``, general, t an integer position); REML or ML.  Without
        random-effects terms the model is ``nlme::gls`` (:mod:`workbench.gls.corstruct`); with
        them ``nlme::lme`` with that residual structure, var(y) = Z G Z' + sigma^2 R
        (:mod:`workbench.gls.lme`; the correlation groups nested in every grouping factor).
    variance : str, optional
        A residual variance function written as nlme writes it: ``"ident(~ 1 | f)"``
        (``varIdent``, an sd ratio per level of f) or ``"power(~ x)"`` (``varPower``, sd
        proportional to |x|^power); alone or with ``correlation``, with or without
        random-effects terms.  ``method="bayes"`` takes a cs or ar1 ``correlation`` (no
        variance function), with or without random effects on one grouping factor in which
        the correlation groups are nested (:mod:`workbench.bayes.corfit`; prior key ``rho``
        or ``phi``).
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
    _check_columns(data)
    if correlation is not None or variance is not None:
        return _fit_correlated(spec, data, method, opts, correlation, label,
                               dict(known_sd=known_sd, weights=weights, offset=offset),
                               contrasts, options, variance=variance)
    limit = contextlib.nullcontext()
    if method in ("reml", "ml"):
        from .reml.fit import blas_limits

        # the design's products (X'X for the rank check, the OLS residual check) under the
        # fit's BLAS limit too: on a busy machine threaded BLAS on small matrices costs
        # milliseconds (a 224 x 50 lstsq took 0.26 s under load with two threads)
        limit = blas_limits(opts.blas_threads)
    with limit:
        design = build_design(spec, data, known_sd=known_sd, weights=weights, offset=offset,
                              contrasts=contrasts)
        if method in ("reml", "ml") and design.terms and known_sd is None:
            _check_residual_variance(design)
        if method in ("reml", "ml") and design.terms:
            from .reml.fit import fit_reml

            # inside the same BLAS limit (fit_reml's own is then a no-op)
            fit = fit_reml(design, reml=(method == "reml"), label=label, **opts.kwargs())
            _check_residual_collapse(fit)
            return fit
    if method in ("reml", "ml"):
        if not design.terms:  # no random effects: weighted least squares, as nlme::gls
            from .reml.linear import fit_linear

            extra = sorted(k for k in options if k not in ("level", "blas_threads"))
            if extra:
                raise OptionError(f"option(s) {', '.join(extra)} need a random-effects term; "
                                  "a model without one takes only level")
            return fit_linear(design, reml=(method == "reml"), label=label, level=opts.level)
    if method == "fgls":
        from .gls.fgls import fit_fgls

        return fit_fgls(design, estimator=opts.fgls, level=opts.level, label=label)
    if method in ("igls", "rigls"):
        from .gls.igls import fit_igls

        return fit_igls(design, reml=(method == "rigls"), label=label, **opts.kwargs())
    from .bayes.fit import fit_bayes

    _check_draws_memory(design, opts)
    return fit_bayes(design, label=label, **opts.kwargs())


def _fit_correlated(spec, data, method, opts, correlation, label, columns, contrasts, options,
                    variance=None):
    """A residual structure (a correlation, a variance function or both): REML/ML as
    ``nlme::gls`` without random-effects terms and ``nlme::lme`` with them
    (:mod:`workbench.gls.lme`); or, for a cs or ar1 correlation, a Bayesian fit
    (:mod:`workbench.bayes.corfit`)."""
    from .gls.corstruct import fit_gls, residual_structure

    what = ("correlation=" if variance is None else "variance=" if correlation is None
            else "correlation= with variance=")
    if method not in ("reml", "ml", "bayes") or (method == "bayes" and variance is not None):
        also = " (or 'bayes')" if variance is None else ""
        raise OptionError(f"{what} needs method 'reml' or 'ml'{also}, not '{method}'")
    extra = sorted(k for k in options if k not in ("level", "blas_threads"))
    if extra and method != "bayes":
        raise OptionError(f"option(s) {', '.join(extra)} do not apply with a residual "
                          "structure; it takes only level")
    data, wh, corr, var = residual_structure(spec, data, correlation, variance, **columns)
    design = build_design(spec, data, contrasts=contrasts, **columns)
    if method == "bayes":
        from .bayes.corfit import fit_bayes_correlated

        _check_draws_memory(design, opts)
        return fit_bayes_correlated(design, wh.codes, wh.pos, corr, label=label,
                                    **opts.kwargs())
    if design.terms:  # nlme::lme: random effects and a residual structure
        import numpy as np

        from .gls.lme import fit_lme

        if var is not None and var.kind == "ident" and corr is None:
            # nlme::lme reads varIdent's first stratum with the rows sorted by the groups
            order = np.lexsort(tuple(t.codes for t in reversed(design.terms)))
            _, wh, corr, var = residual_structure(spec, data, correlation, variance,
                                                  order=order, **columns)
        _check_residual_variance(design)
        fit = fit_lme(design, wh, corr=corr, var=var, reml=(method == "reml"),
                      level=opts.level, label=label, blas_threads=opts.blas_threads)
        _check_residual_collapse(fit)
        return fit
    return fit_gls(design, wh, corr=corr, var=var, reml=(method == "reml"), level=opts.level,
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

    _check_columns(data)
    design = build_design(parse_formula(formula), data, known_sd=known_sd, weights=weights,
                          offset=offset, contrasts=contrasts)
    if not design.terms:
        raise WorkbenchError(f"formula '{formula}' has no random-effects term such as '(1 | g)'")
    return _checked_length(make_criterion(design, reml=reml))


def _checked_length(f):
    """``f`` refusing a theta of the wrong length (it would index past, or ignore, entries)."""
    import functools

    import numpy as np

    from .errors import DataError

    k = len(f.system.structure.lower)

    @functools.wraps(f)
    def criterion(theta):
        t = np.asarray(theta, dtype=float)
        if t.ndim != 1 or t.size != k:
            raise DataError(f"theta must be a vector of length {k} (the model's relative "
                            f"covariance parameters), got shape {t.shape}")
        return f(t)

    criterion.system = f.system
    criterion.reml = f.reml
    return criterion


def _check_draws_memory(design, opts) -> None:
    """Refuse draws x chains whose posterior would not fit in memory, before sampling.

    Per draw the sampler keeps every parameter: the fixed effects, each group's effects (on
    both the sampled and the reported scale) and the variance parameters, as float64; the
    estimate is doubled for the sampler's own copies and statistics.
    """
    import os

    q = [len(t.columns) for t in design.terms]
    per_draw = design.X.shape[1] + sum(2 * k * len(t.levels) for k, t in zip(q, design.terms)) \
        + sum(k * (k + 1) // 2 for k in q) + 1
    need = 2 * 8 * per_draw * opts.draws * opts.chains
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        have = 16e9
    if need > have / 2:
        raise OptionError(f"{opts.draws:,} draws x {opts.chains} chains of {per_draw:,} "
                          f"parameters need about {need / 1e9:,.1f} GB, more than half of this "
                          f"machine's {have / 1e9:,.1f} GB; ask for fewer draws or chains")


def _check_columns(data) -> None:
    """Refuse a DataFrame whose column names repeat (a formula could not tell them apart)."""
    from .errors import DataError

    cols = getattr(data, "columns", None)
    if cols is not None and cols.duplicated().any():
        rep = list(dict.fromkeys(str(c) for c in cols[cols.duplicated()]))
        raise DataError(f"the data repeat the column name(s) {', '.join(map(repr, rep))}; "
                        "give every column its own name")


def _check_residual_collapse(fit) -> None:
    """Refuse a fit whose residual sd collapsed: the random effects reproduce the response
    exactly (e.g. y constant within every group), so the likelihood grows without bound as
    sigma goes to 0 and there is no optimum to report (lme4 warns that the model is nearly
    unidentifiable).
    """
    import numpy as np

    from .errors import DataError

    design = fit.design
    if fit.sigma is None or design is None:
        return
    y = design.y if design.offset is None else design.y - design.offset
    if y.size == 0 or fit.sigma > 1e-6 * float(np.max(np.abs(y))):  # sd(y) <= max |y|
        return
    # against the spread the fixed effects leave (a response they fit to a few parts in a
    # million has a small sigma that is right, not a collapse)
    w = np.ones_like(y) if design.weights is None else np.sqrt(design.weights)
    spread = float(np.sqrt(np.mean((w * _ols_residual(design.X, y, w)) ** 2)))
    if spread > 0 and fit.sigma <= 1e-6 * spread:
        raise DataError(f"the random effects fit the response exactly (residual sd {fit.sigma:.3g} "
                        f"against {spread:.3g} around the fixed effects): the residual variance "
                        "cannot be estimated; the data need variation within the groups")


def _check_residual_variance(design) -> None:
    """Refuse a response the fixed effects fit exactly: no residual variance to estimate.

    lme4 returns a degenerate fit there (a criterion of -Inf or 0 sds, with convergence
    warnings); the likelihood has no maximum, so an error is the honest answer.
    """
    import numpy as np

    from .errors import DataError

    y = design.y if design.offset is None else design.y - design.offset
    X = design.X
    scale = float(np.max(np.abs(y))) if y.size else 0.0
    if scale > 0.0 and _clearly_not_fitted(X, y, design.weights):
        return
    w = np.ones_like(y) if design.weights is None else np.sqrt(design.weights)
    r = _ols_residual(X, y, w)
    if scale == 0.0 or float(np.max(np.abs(r))) <= 1e-10 * scale:
        raise DataError("the fixed effects fit the response exactly (zero residual variance): "
                        "there is no variation left to estimate variance components from")


def _ols_residual(X, y, w):
    """``y - X b`` with b the least-squares fit on the rows scaled by ``w`` (sqrt weights)."""
    import numpy as np

    if not X.shape[1]:
        return y
    return y - X @ np.linalg.lstsq(X * w[:, None], y * w, rcond=None)[0]


def _clearly_not_fitted(X, y, weights) -> bool:
    """Whether the weighted least-squares residual of y on X is far from zero, from the
    cross-products of the unit-scaled ``[X, y]`` (no pass beyond forming them).

    With the columns scaled to unit length, the last Cholesky pivot squared of
    ``[X, y]' W [X, y]`` is ``rho = RSS_w / y'Wy``.  When the scaled X'WX has condition number
    below 1e6, rho is computed to well within (p + 1) 1e6 eps, so ``rho > 1e-4`` is a true
    lower bound to a few digits; and then ``max |r_i| >= sqrt(rho) max |y_i| >= 1e-2 max
    |y_i|``, far above the 1e-10 of an exact fit.  Otherwise (ill-conditioned or nearly
    fitted) the caller decides on the rows.
    """
    import numpy as np

    p = X.shape[1]
    if p > 200:  # the eigenvalues of a large X'X cost more than the row pass they save
        return False
    if weights is None:
        XtX, Xty, yty = X.T @ X, X.T @ y, float(y @ y)
    else:
        Xw = X * weights[:, None]
        XtX, Xty, yty = X.T @ Xw, Xw.T @ y, float(y @ (weights * y))
    A = np.empty((p + 1, p + 1))
    A[:p, :p], A[:p, p], A[p, :p], A[p, p] = XtX, Xty, Xty, yty
    d = np.sqrt(np.diagonal(A))
    if not np.all(np.isfinite(A)) or np.any(d == 0.0):
        return False
    A = A / np.outer(d, d)
    try:
        if p:
            eig = np.linalg.eigvalsh(A[:p, :p])
            if not eig[0] > 1e-6 * eig[-1]:
                return False
        rho = np.linalg.cholesky(A)[p, p] ** 2
    except np.linalg.LinAlgError:
        return False
    return bool(rho > 1e-4)
