"""Report figures (matplotlib, one colour-blind-safe style; see :mod:`workbench.plots.style`).

========  ===================================================  =============================
figure    what                                                 function
========  ===================================================  =============================
1         shrinkage: raw -> BLUP / posterior mean vs size      :func:`plot_shrinkage`
2         group-effect intervals (caterpillar)                 :func:`plot_caterpillar`
3         fixed-effect intervals: Wald, profile, bootstrap,    :func:`plot_fixed_intervals`
          credible
4         variance components over their posterior            :func:`plot_variance_components`
5         profile likelihood vs flat-prior marginal posterior  :func:`plot_profile_posterior`
6         V = Z G Z' + sigma^2 I as a heat map                 :func:`plot_covariance`
7         prior sensitivity (eight schools)                    :func:`plot_prior_sensitivity`
========  ===================================================  =============================

:func:`workbench.jobs.make_report_figures` fits the models and regenerates all of them from
fixed seeds.  Matplotlib is imported inside the functions, so importing this package is cheap.
"""

from .covariance import compound_symmetry_V, plot_covariance
from .intervals import plot_caterpillar, plot_fixed_intervals
from .priors import plot_prior_sensitivity
from .report import FIGURES, comparison_figures
from .shrinkage import plot_shrinkage, plot_shrinkage_panels
from .variance import plot_profile_posterior, plot_variance_components

__all__ = ["plot_shrinkage", "plot_shrinkage_panels", "plot_caterpillar", "plot_fixed_intervals",
           "plot_variance_components", "plot_profile_posterior", "plot_covariance",
           "compound_symmetry_V", "plot_prior_sensitivity", "comparison_figures",
           "FIGURES"]
