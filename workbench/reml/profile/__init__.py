"""Profile-likelihood intervals: lme4's ``profile()`` and ``confint(method = "profile")``.

lme4 profiles a fit on the ML deviance (a REML fit is refitted by ML first, as lme4's
``devfun2`` does), over the *sigma-scale* parameters: each random-effects term's standard
deviations and correlations, the residual sigma, and the fixed effects.  For one parameter
held at a value ``v`` the deviance is minimised over all the others; the signed square root

    zeta(v) = sign(v - v_hat) * sqrt(dev(v) - dev_hat)

is close to a standard normal quantile, and the 95% interval is where
``zeta = -+ qnorm(0.975)``.  lme4 interpolates a spline through a grid of profile points;
here each limit is found by root finding on ``zeta`` itself (the exact solution the spline
approximates).  A standard deviation whose profile reaches 0 before ``zeta`` reaches the cutoff
gets 0 as its lower limit (as lme4 reports for Dyestuff2 and Pastes' batch); a correlation whose
profile reaches +-1 first gets +-1.

Public functions: :func:`profile` (the curve, for figures), :func:`profile_ci` (the interval
table) and :func:`with_profile_ci` (a copy of a fit carrying profile intervals).

Modules, by parameter kind: :mod:`.variance` (sds, correlations, sigma on the sigma scale),
:mod:`.fixed` (fixed effects); shared machinery in :mod:`.shared` (the walk along a profile,
the limit search, the ML refit), the minimiser in :mod:`.minimize`, the public functions in
:mod:`.api`.
"""

from .api import profile, profile_ci, with_intervals, with_profile_ci
from .shared import ProfileError, ml_fit, single_threaded_blas
from .variance import SigmaScale

__all__ = ["profile", "profile_ci", "with_profile_ci", "with_intervals", "SigmaScale", "ml_fit",
           "ProfileError", "single_threaded_blas"]
