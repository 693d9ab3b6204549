"""Figure 8: every variance parameter of every method, side by side (a forest by method).

Figures 1, 2 and 4 compare one likelihood fit with the posterior; this one takes the whole
comparison, so feasible GLS, IGLS, RIGLS and nlme's GLS with a residual correlation structure
are drawn beside REML, ML and the posterior: one panel per parameter (``sd[...]``, ``cor[...]``,
``sigma``, ``corstruct[Rho]``, ...), one row per method, the estimate and its 95% interval
where the method gives one.  A panel names the methods that do not report its parameter, so
no method is dropped silently; the ``sigma`` of a fit with a residual correlation structure
(nlme's GLS) is the marginal residual sd, sqrt(var[g] + sigma^2) of the random-intercept model,
and its row says so.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import WorkbenchError
from ..names import kind as name_kind
from . import style

#: Parameter kinds drawn (everything but the fixed effects, which figure 3 draws).
VARIANCE_KINDS = ("sd", "cor", "sigma", "corstruct", "varstruct")
_SPARE = [style.OKABE_ITO[k] for k in ("green", "orange", "grey")]


def method_rows(parameters: pd.DataFrame) -> pd.DataFrame:
    """The rows figure 8 draws: non-fixed-effect parameters, one row per (parameter, method)
    (a method's first interval kind when it has several, e.g. a fit plus its profile table)."""
    p = parameters[parameters["parameter"].map(name_kind).isin(VARIANCE_KINDS)]
    return p.drop_duplicates(["parameter", "method"], keep="first").reset_index(drop=True)


def plot_parameters_by_method(comparison, marginal_sigma=()):
    """Variance parameters by method: estimate and 95% interval, one panel per parameter.

    Parameters
    ----------
    comparison : Comparison
        From :func:`workbench.compare`; its ``methods`` give the rows' order.
    marginal_sigma : iterable of str
        Methods whose ``sigma`` is a marginal residual sd (fits with a residual correlation
        structure); their ``sigma`` row is labelled so.  By default, the methods that report a
        ``corstruct[...]`` parameter.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    WorkbenchError
        When no method reports a variance parameter.
    """
    import matplotlib.pyplot as plt

    p = method_rows(comparison.parameters)
    if p.empty:
        raise WorkbenchError("no variance parameters to draw")
    methods = list(comparison.methods)
    marginal = set(marginal_sigma) or set(
        p.loc[p["parameter"].map(name_kind) == "corstruct", "method"])
    params = list(dict.fromkeys(p["parameter"]))
    spare = iter(_SPARE * len(methods))  # methods without a colour of their own (nlme's GLS)
    colors = {m: style.COLORS.get(m.split("#")[0].lower()) or next(spare) for m in methods}
    ncol = min(3, len(params))
    nrow = int(math.ceil(len(params) / ncol))
    with style.context():
        fig, axes = plt.subplots(nrow, ncol, squeeze=False,
                                 figsize=(4.2 * ncol, (0.42 * len(methods) + 1.6) * nrow))
        for ax, name in zip(axes.flat, params):
            sub = p[p["parameter"] == name].set_index("method")
            shown = [m for m in methods if m in sub.index]
            for i, m in enumerate(shown):
                h = sub.loc[m]
                c = colors[m]
                if np.isfinite(h["lower"]) and np.isfinite(h["upper"]):
                    ax.plot([h["lower"], h["upper"]], [i, i], color=c, lw=2.2,
                            solid_capstyle="butt")
                ax.plot(h["estimate"], i, marker=style.MARKERS.get(m, "o"), color=c, ms=6)
            labels = [style.label(m) + (" (marginal sd)" if name == "sigma" and m in marginal
                                        else "") for m in shown]
            ax.set_yticks(range(len(shown)), labels)
            ax.set_ylim(len(shown) - 0.5, -0.5)
            ax.grid(axis="y", visible=False)
            missing = [m for m in methods if m not in sub.index]
            title = name if not missing else f"{name}\nnot reported by: {', '.join(missing)}"
            ax.set_title(title, fontsize=9 if missing else None)
            ax.set_xlabel("estimate (95% interval where the method gives one)")
        for ax in list(axes.flat)[len(params):]:
            ax.set_visible(False)
        fig.suptitle("Variance parameters by method", y=1.0)
        fig.tight_layout()
    return fig


__all__ = ["plot_parameters_by_method", "method_rows", "VARIANCE_KINDS"]
