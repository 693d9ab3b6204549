"""IGLS/RIGLS iterates on the likelihood surface of a two-parameter model.

For a random-intercept model the variance parameters are (var[g], var[Residual]); the figure
draws the criterion the iteration descends (ML deviance for IGLS, the REML criterion for
RIGLS, each with the fixed effects at their GLS values) as contours on a grid of the two
variances, and the iterates of ``fit.diagnostics["iterations"]`` from the OLS start, so the
reader sees what each alternation of the two GLS steps does (Goldstein 1986, 1989).
"""

from __future__ import annotations

import numpy as np

from ..errors import WorkbenchError
from ..record import Fit


def iteration_path(fit: Fit) -> np.ndarray:
    """The iterates (var[g], var[Residual]) of an IGLS/RIGLS fit with one random intercept,
    shape (iterations + 1, 2)."""
    trace = (fit.diagnostics or {}).get("iterations")
    if fit.method not in ("igls", "rigls") or not trace:
        raise WorkbenchError(f"the iteration figure needs an igls or rigls fit; this fit is "
                             f"{fit.method}")
    keys = list(trace[0]["variance"])
    if len(keys) != 2:
        raise WorkbenchError("the iteration figure draws two variance parameters (one random "
                             f"intercept and the residual); this model has {len(keys)}")
    return np.array([[t["variance"][k] for k in keys] for t in trace])


def criterion_surface(fit: Fit, var_group: np.ndarray, var_resid: np.ndarray) -> np.ndarray:
    """The criterion of ``fit``'s iteration on a grid, shape (len(var_resid), len(var_group)).

    Points where some V_j is not positive definite are NaN.
    """
    from ..gls.igls import _Groups, _outer_block, _state
    from ..structure import build_structure

    iteration_path(fit)
    st = build_structure(fit.design)
    layout = [(f, [(int(r), int(c)) for r, c in b.positions]) for f, b in enumerate(st.blocks)]
    gr = _Groups(fit.design, st, _outer_block(st), layout)
    reml = fit.method == "rigls"
    out = np.full((len(var_resid), len(var_group)), np.nan)
    for i, s2 in enumerate(var_resid):
        for j, vg in enumerate(var_group):
            try:
                out[i, j] = _state(gr, np.array([vg, s2]), reml)[2]
            except np.linalg.LinAlgError:
                pass
    return out


def plot_iterations(fit: Fit, size: int = 60, ax=None):
    """Contours of the criterion and the IGLS/RIGLS iterates on them.

    Parameters
    ----------
    fit : Fit
        ``method="igls"`` or ``"rigls"``, one random intercept.
    size : int
        Grid points per axis.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Figure
    """
    import matplotlib.pyplot as plt

    from .style import color, context

    path = iteration_path(fit)
    lo = np.minimum(path.min(axis=0), 0.0)
    hi = path.max(axis=0)
    span = hi - lo
    vg = np.linspace(max(lo[0] - 0.1 * span[0], -0.5 * hi[1]), hi[0] + 0.25 * span[0], size)
    vr = np.linspace(max(0.3 * path[:, 1].min(), 1e-12), hi[1] + 0.25 * span[1], size)
    surf = criterion_surface(fit, vg, vr)
    best = np.nanmin(surf)
    with context():
        if ax is None:
            fig, ax = plt.subplots(figsize=(5.5, 4.5))
        else:
            fig = ax.figure
        levels = best + np.array([0.5, 2, 5, 10, 20, 50, 100, 200, 500])
        cs = ax.contour(vg, vr, surf, levels=levels, colors="0.55", linewidths=0.8)
        ax.clabel(cs, fmt=lambda v: f"+{v - best:g}", fontsize=7)
        key = "reml" if fit.method == "rigls" else "ml"
        ax.plot(path[:, 0], path[:, 1], "-o", color=color(key), ms=4,
                label=f"{fit.method.upper()} iterates ({len(path) - 1} iterations)")
        ax.plot(*path[0], "s", color="k", ms=6, label="start (OLS)")
        ax.plot(*path[-1], "*", color=color(key), ms=12, label="converged")
        keys = list(fit.diagnostics["iterations"][0]["variance"])
        ax.set_xlabel(keys[0])
        ax.set_ylabel(keys[1])
        what = "REML criterion" if fit.method == "rigls" else "ML deviance"
        ax.set_title(f"{fit.method.upper()} on the {what} (contours: above its minimum)")
        ax.legend(loc="upper right")
    return fig


__all__ = ["iteration_path", "criterion_surface", "plot_iterations"]
