"""workbench: fit a hierarchical linear model by GLS/REML and by PyMC, and compare the two.

The data flow reads top to bottom::

    formula + DataFrame -> ModelSpec (formula.py) -> Design (design.py)
        -> REML criterion -> optimizer -> Fit       (reml/)
        -> feasible / iterated GLS -> Fit            (gls/)
        -> PyMC model -> sampler -> InferenceData   (bayes/)
        -> compare (compare.py) -> figures (plots/)

Importing this package does not import PyMC; the Bayesian fitter loads it on first use.
"""

from .api import criterion, fit
from .compare import compare
from .design import Design, build_design
from .errors import WorkbenchError
from .formula import ModelSpec, parse_formula
from .gls.reconcile import reconcile
from .restore import load
from .reml import intervals as _intervals  # noqa: F401  (registers profile/bootstrap confint)
from .record import Fit
from .reml.bootstrap import bootstrap
from .reml.inference import lrt
from .reml.profile import profile_ci
from . import datasets, simulate

__all__ = ["fit", "Fit", "Design", "build_design", "ModelSpec", "parse_formula", "WorkbenchError",
           "simulate", "datasets", "compare", "bootstrap", "lrt", "profile_ci", "criterion",
           "reconcile", "load"]
__version__ = "0.1.0"
