"""The refitting interval methods of ``Fit.confint``: profile likelihood and parametric bootstrap.

Registered with :mod:`workbench.accessors` on import (``import workbench`` imports this
module): they build Fit records, so the record cannot import them itself.
"""

from __future__ import annotations

from ..accessors import register_interval


def _profile(fit, level, parameters, **_):
    from .profile import profile_ci

    return profile_ci(fit, level=level, parameters=parameters)


def _bootstrap(fit, level, parameters, n=1000, seed=0, workers=None, **_):
    from .bootstrap import bootstrap

    return bootstrap(fit, n, seed, workers=workers).ci(level)


register_interval("profile", _profile)
register_interval("bootstrap", _bootstrap)
