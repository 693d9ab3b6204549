"""The analytic gradient of the profiled criterion (one grouping factor) against finite differences."""

import numpy as np
import pytest

from workbench import datasets
from workbench.design import build_design
from workbench.reml.blocked import BlockedSystem
from workbench.reml.criterion import make_criterion, make_objective

CASES = [
    ("Reaction ~ Days + (Days | Subject)", "sleepstudy", None, [0.8, 0.1, 0.3]),
    ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", "sleepstudy", None, [0.7, 0.2]),
    ("Yield ~ 1 + (1 | Batch)", "Dyestuff", None, [0.6]),
    ("y ~ 1 + (1 | school)", "eight_schools", "sigma", [8.0]),
]


@pytest.mark.parametrize("formula,dataset,known,theta", CASES)
@pytest.mark.parametrize("reml", [True, False])
def test_gradient_matches_central_differences(formula, dataset, known, theta, reml):
    data = datasets.load(dataset)
    system = BlockedSystem(build_design(formula, data, known_sd=known))
    crit, obj = make_criterion(system, reml), make_objective(system, reml)
    theta = np.array(theta)
    value, grad = obj(theta)
    assert value == crit(theta)
    h = 1e-5 * np.maximum(1.0, np.abs(theta))
    fd = np.array([(crit(theta + e) - crit(theta - e)) / (2 * e.max()) for e in np.diag(h)])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(fd).max()))


def test_no_analytic_gradient_for_crossed_factors():
    system = BlockedSystem(build_design("diameter ~ 1 + (1 | plate) + (1 | sample)",
                                        datasets.load("Penicillin")))
    assert make_objective(system) is None
