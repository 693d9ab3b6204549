"""Priors by name: parsing, validation, key resolution, data-scaled defaults (no sampling)."""

import numpy as np
import pandas as pd
import pytest

from workbench import datasets

from workbench import WorkbenchError
from workbench.api import fit
from workbench.bayes.priors import Fixed, Prior, default_priors, parse_prior, resolve_priors
from workbench.design import build_design
from workbench.errors import SpecError
from workbench.structure import build_structure


@pytest.mark.parametrize("text, family, args", [
    ("Normal(0, 5)", "Normal", (0.0, 5.0)),
    ("StudentT(3, 0, 2.5)", "StudentT", (3.0, 0.0, 2.5)),
    ("HalfNormal(5)", "HalfNormal", (5.0,)),
    (" HalfCauchy( 5 ) ", "HalfCauchy", (5.0,)),
    ("HalfStudentT(3, 2.5)", "HalfStudentT", (3.0, 2.5)),
    ("Exponential(1)", "Exponential", (1.0,)),
    ("Uniform(0, 100)", "Uniform", (0.0, 100.0)),
    ("InverseGamma(0.001, 0.001)", "InverseGamma", (0.001, 0.001)),
    ("LKJ(2)", "LKJ", (2.0,)),
    ("Flat()", "Flat", ()),
    ("HalfFlat()", "HalfFlat", ()),
    ("Fixed(-1e-1)", "Fixed", (-0.1,)),
])
def test_parse_known_distributions(text, family, args):
    p = parse_prior(text)
    assert p.family == family and p.args == args
    assert parse_prior(str(p)) == p  # the printed form reads back


@pytest.mark.parametrize("text, words", [
    ("Gaussian(0, 1)", ["unknown prior distribution 'Gaussian'"]),
    ("halfnormal(5)", ["did you mean HalfNormal"]),
    ("Normal(0)", ["Normal takes 2 arguments", "mu, sigma"]),
    ("Normal(0, -1)", ["sigma must be positive"]),
    ("Normal(0, x)", ["'x' is not a number"]),
    ("Uniform(3, 1)", ["lower must be below upper"]),
    ("HalfNormal 5", ["Name(arguments)"]),
    ("LKJ(0)", ["eta must be positive"]),
])
def test_parse_errors_are_clear(text, words):
    with pytest.raises(SpecError) as e:
        parse_prior(text)
    for w in words:
        assert w in str(e.value)


@pytest.fixture(scope="module")
def design(slopes):
    return build_design("y ~ 1 + x + (1 + x | g)", slopes)


def _resolve(design, user):
    return resolve_priors(design, build_structure(design), user)


def test_defaults_are_data_scaled(design, slopes):
    pri = default_priors(design, build_structure(design))
    sy = np.std(slopes.y, ddof=1)
    sx = np.std(slopes.x)
    assert pri["beta[x]"].family == "Normal"
    assert pri["beta[x]"].args[1] == pytest.approx(2.5 * sy / sx, rel=1e-3)
    assert pri["beta[(Intercept)]"].args[0] == pytest.approx(np.mean(slopes.y), rel=1e-3)
    assert pri["sd[g:(Intercept)]"].args[0] == pytest.approx(2.5 * sy, rel=1e-3)
    assert pri["sigma"] == Prior("Exponential", (float(f"{1 / sy:.4g}"),))
    assert pri["corr[g]"] == Prior("LKJ", (2.0,))
    # scaling the response scales the priors
    d2 = build_design("y ~ 1 + x + (1 + x | g)", slopes.assign(y=10 * slopes.y))
    p2 = default_priors(d2, build_structure(d2))
    assert p2["sd[g:x]"].args[0] == pytest.approx(10 * pri["sd[g:x]"].args[0], rel=1e-3)


def test_most_specific_key_wins(design):
    pri = _resolve(design, {"sd": "HalfCauchy(5)", "sd[g:x]": "Exponential(2)",
                            "beta": "Flat()", "beta[x]": "StudentT(3, 0, 2.5)",
                            "corr[g]": "LKJ(4)", "sigma": "InverseGamma(1, 1)"})
    assert list(pri) == ["beta[(Intercept)]", "beta[x]", "sd[g:(Intercept)]", "sd[g:x]",
                         "corr[g]", "sigma"]
    assert str(pri["sd[g:(Intercept)]"]) == "HalfCauchy(5)"
    assert str(pri["sd[g:x]"]) == "Exponential(2)"
    assert str(pri["beta[(Intercept)]"]) == "Flat()"
    assert str(pri["beta[x]"]) == "StudentT(3, 0, 2.5)"
    assert str(pri["corr[g]"]) == "LKJ(4)"
    assert str(pri["sigma"]) == "InverseGamma(1, 1)"
    # order of the user's dict does not matter
    pri2 = _resolve(design, {"sd[g:x]": "Exponential(2)", "sd": "HalfCauchy(5)"})
    assert str(pri2["sd[g:x]"]) == "Exponential(2)"


@pytest.mark.parametrize("user, words", [
    ({"beta[z]": "Normal(0, 1)"}, ["beta[z]", "names no parameter", "beta[x]"]),
    ({"sd[h]": "HalfNormal(1)"}, ["sd[h]", "valid", "sd[g]"]),
    ({"tau": "HalfNormal(1)"}, ["unknown prior key 'tau'"]),
    ({"sigma[g]": "HalfNormal(1)"}, ["sigma"]),
    ({"sd": "Normal(0, 1)"}, ["sd needs a positive distribution"]),
    ({"beta": "HalfNormal(1)"}, ["beta needs a real-line distribution"]),
    ({"corr": "HalfNormal(1)"}, ["corr needs LKJ"]),
    ({"sd": "Uniform(-1, 1)"}, ["cannot be negative"]),
    ({"corr": "Fixed(1.5)"}, ["(-1, 1)"]),
    ({"sigma": "Fixed(0)"}, ["sigma must be positive"]),
])
def test_bad_keys_and_values(design, user, words):
    with pytest.raises(SpecError) as e:
        _resolve(design, user)
    for w in words:
        assert w in str(e.value)


def test_fixed_correlation_matrix(design):
    pri = _resolve(design, {"corr[g]": Fixed([[1, 0.2], [0.2, 1]])})
    assert pri["corr[g]"].is_fixed
    with pytest.raises(SpecError, match="positive definite"):
        _resolve(design, {"corr[g]": Fixed([[1, 2.0], [2.0, 1]])})


def test_sigma_prior_rejected_with_known_sd():
    data = datasets.load("eight_schools")
    d = build_design("y ~ 1 + (1 | school)", data, known_sd="sigma")
    pri = resolve_priors(d, build_structure(d), {"sd": "HalfCauchy(5)"})
    assert "sigma" not in pri
    with pytest.raises(SpecError, match="known"):
        resolve_priors(d, build_structure(d), {"sigma": "HalfNormal(1)"})


def test_errors_come_before_sampling_through_the_api(slopes):
    """Bad priors and options fail fast (no compile, no sampling) with WorkbenchErrors."""
    f = "y ~ 1 + x + (1 + x | g)"
    with pytest.raises(WorkbenchError, match="Gaussian"):
        fit(f, slopes, method="bayes", priors={"beta": "Gaussian(0, 1)"})
    with pytest.raises(WorkbenchError, match="drawz"):
        fit(f, slopes, method="bayes", drawz=10)
    with pytest.raises(WorkbenchError, match="parameterization"):
        fit(f, slopes, method="bayes", parameterization="funnel")
    with pytest.raises(WorkbenchError, match="sampler"):
        fit(f, slopes, method="bayes", sampler="stan")
    with pytest.raises(WorkbenchError, match="target_accept"):
        fit(f, slopes, method="bayes", target_accept=1.5)
    with pytest.raises(WorkbenchError, match="chains"):
        fit(f, slopes, method="bayes", chains=0)


def test_dense_marginal_limit_is_a_clear_error():
    rng = np.random.default_rng(0)
    n = 1200
    data = pd.DataFrame({"y": rng.normal(size=n), "a": rng.integers(0, 300, n),
                         "b": rng.integers(0, 280, n)})
    with pytest.raises(WorkbenchError, match="marginal.*noncentered"):
        fit("y ~ 1 + (1 | a) + (1 | b)", data, method="bayes", parameterization="marginal")
