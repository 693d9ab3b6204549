"""The analytic gradient of the profiled criterion against central finite differences, on every
structure kind: one factor, crossed and nested factors, correlated slopes on a later factor,
several terms on one factor, weights, known residual sds, no fixed effects."""

import numpy as np
import pandas as pd
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


def _random_data() -> pd.DataFrame:
    rng = np.random.default_rng(20261129)
    n = 300
    d = pd.DataFrame({"g": rng.integers(0, 20, n).astype(str), "h": rng.integers(0, 7, n).astype(str),
                      "k": rng.integers(0, 4, n).astype(str), "x": rng.normal(size=n),
                      "z": rng.normal(size=n), "w": rng.uniform(0.5, 2, n),
                      "s": rng.uniform(0.5, 2, n)})
    gi, hi = d.g.astype(int).to_numpy(), d.h.astype(int).to_numpy()
    d["y"] = (d.x + rng.normal(size=n) + rng.normal(size=20)[gi]
              + rng.normal(size=7)[hi] * (1 + d.x))
    return d


SEVERAL = [
    ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", {}),
    ("strength ~ 1 + (1 | batch/cask)", "Pastes", {}),
    ("y ~ x + (x | g) + (1 | h)", None, {}),
    ("y ~ x + (1 | g) + (x | h)", None, {}),
    ("y ~ x + (x | g) + (x + z | h)", None, {}),
    ("y ~ x + (x | g) + (x + z | h) + (1 | k)", None, {}),
    ("y ~ x + (1 | g) + (1 | h) + (0 + x | h)", None, {}),
    ("y ~ x + (x | g) + (1 | h)", None, {"weights": "w"}),
    ("y ~ x + (x | g) + (1 | h)", None, {"known_sd": "s"}),
    ("y ~ 0 + (1 | g) + (1 | h)", None, {}),
]


@pytest.mark.parametrize("formula,dataset,kw", SEVERAL)
@pytest.mark.parametrize("reml", [True, False])
def test_gradient_several_factors(formula, dataset, kw, reml):
    data = _random_data() if dataset is None else datasets.load(dataset)
    system = BlockedSystem(build_design(formula, data, **kw))
    crit, obj = make_criterion(system, reml), make_objective(system, reml)
    st = system.structure
    rng = np.random.default_rng(7)
    theta = st.theta0 + 0.3 * rng.uniform(size=st.ntheta)
    value, grad = obj(theta)
    assert value == crit(theta)
    h = 1e-5 * np.maximum(1.0, np.abs(theta))
    fd = np.array([(crit(theta + e) - crit(theta - e)) / (2 * e.max()) for e in np.diag(h)])
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(fd).max()))


@pytest.mark.parametrize("name", ["penicillin", "pastes"])
def test_several_factors_search_on_the_gradient(name):
    """Crossed and nested fits search with L-BFGS-B on the analytic gradient and reach lme4's
    REML criterion in a few dozen evaluations (the derivative-free search needed 45-60)."""
    import workbench
    from tests.helpers import lme4_reference, reference_data

    ref = lme4_reference()[name]
    fit = workbench.fit(ref["formula"], reference_data(ref))
    opt = fit.diagnostics["optimizer"]
    assert opt["method"].startswith("L-BFGS-B")
    assert opt["evaluations"] <= 30
    assert fit.converged
    assert fit.criterion <= ref["REML"]["deviance"] + 1e-6 * abs(ref["REML"]["deviance"])
