"""The report figures' names, their data, and figures 1-4 of one model drawn from given fits.

Data: the Minnesota radon data (figures 1-5), a small simulated data set (figure 6) and the
eight schools (figures 5 and 7), both from :mod:`workbench.datasets`.  Fitting the models and drawing every figure is a job:
:func:`workbench.jobs.make_report_figures`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import style

FIGURES = {
    1: "fig1_shrinkage",
    2: "fig2_group_intervals",
    3: "fig3_fixed_intervals",
    4: "fig4_variance_components",
    5: "fig5_profile_vs_posterior",
    6: "fig6_covariance_V",
    7: "fig7_prior_sensitivity",
    8: "fig8_methods_variance",
    9: "fig9_igls_iterations",
}
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


def comparison_figures(reml, bayes, comparison, out_dir, formats=("png", "pdf"), profile=None,
                       truth: dict | None = None, group: str | None = None,
                       methods: bool = False) -> list[Path]:
    """Figures 1-4 of one model (shrinkage, group intervals, fixed intervals, variances), and
    with ``methods`` figure 8 (every method's variance parameters, :mod:`.methods`).

    Figures 1, 2 and 4 draw ``reml`` (a REML or ML fit with group effects; skipped when None)
    beside ``bayes``; figures 3 and 8 draw every method of ``comparison``.

    Returns
    -------
    list of Path
    """
    from .intervals import plot_caterpillar, plot_fixed_intervals
    from .methods import plot_parameters_by_method
    from .shrinkage import plot_shrinkage, plot_shrinkage_panels
    from .variance import plot_variance_components

    out = Path(out_dir)
    files = []
    if reml is not None:
        effects = {(r["group"], r["term"]) for r in reml.ranef}
        shrink = (plot_shrinkage_panels(reml, bayes) if group is None and len(effects) > 1
                  else plot_shrinkage(reml, bayes, group=group))
        files += style.save(shrink, out / FIGURES[1], formats)
        files += style.save(plot_caterpillar(reml, bayes, group=group), out / FIGURES[2], formats)
    files += style.save(plot_fixed_intervals(comparison, truth=truth), out / FIGURES[3], formats)
    if reml is not None:
        files += style.save(plot_variance_components(reml, bayes, profile=profile),
                            out / FIGURES[4], formats)
    if methods:
        files += style.save(plot_parameters_by_method(comparison), out / FIGURES[8], formats)
    return files
