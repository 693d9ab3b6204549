"""The prior-family registry: each entry's numpy sampler draws what its PyMC distribution draws,
and every family parses, prints back and builds a PyMC variable."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from workbench.bayes.model import prior_variable
from workbench.bayes.priors import FAMILIES, Prior, families_for, parse_prior
from workbench.errors import SpecError

# arguments that exercise each argument (not the defaults of 1)
ARGS = {"Normal": (1.5, 2.0), "StudentT": (4.0, -1.0, 0.5), "HalfNormal": (3.0,),
        "HalfCauchy": (2.0,), "HalfStudentT": (3.0, 1.5), "Exponential": (0.5,),
        "Uniform": (-1.0, 3.0), "InverseGamma": (3.0, 2.0), "Fixed": (0.25,), "LKJ": (2.0,),
        "Flat": (), "HalfFlat": ()}
PROPER = [name for name, f in FAMILIES.items() if f.sample is not None and f.pymc is not None]
N = 4000


def test_the_argument_table_covers_every_family():
    assert set(ARGS) == set(FAMILIES)


def _pymc_draws(name: str, args, seed: int) -> np.ndarray:
    import pymc as pm

    fam = FAMILIES[name]
    dist = getattr(pm, fam.pymc).dist(**dict(zip(fam.args, args)))
    x = pm.draw(dist, draws=N, random_seed=seed)
    return np.sqrt(x) if fam.on_variance else x


@pytest.mark.parametrize("name", PROPER)
def test_numpy_sampler_matches_pymc(name):
    """Two-sample Kolmogorov-Smirnov test on seeded draws of the parameter."""
    fam = FAMILIES[name]
    ours = fam.sample(ARGS[name], np.random.default_rng(11), N)
    theirs = _pymc_draws(name, ARGS[name], 12)
    assert ours.shape == (N,)
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3


@pytest.mark.parametrize("name", PROPER)
def test_the_comparison_would_see_a_wrong_sampler(name):
    """The same test rejects draws on a scale 1.3 times too wide (it can fail)."""
    fam = FAMILIES[name]
    ours = fam.sample(ARGS[name], np.random.default_rng(11), N)
    centre = np.median(ours)
    wrong = centre + 1.3 * (ours - centre)
    theirs = _pymc_draws(name, ARGS[name], 12)
    assert stats.ks_2samp(wrong, theirs).pvalue < 1e-3


def test_fixed_sampler_is_a_point_mass():
    assert np.all(FAMILIES["Fixed"].sample((0.25,), np.random.default_rng(0), 5) == 0.25)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_parses_and_prints_back(name):
    args = ARGS[name]
    text = f"{name}({', '.join(str(a) for a in args)})"
    prior = parse_prior(text)
    assert prior == Prior(name, args)
    assert parse_prior(str(prior)) == prior
    if FAMILIES[name].args:
        with pytest.raises(SpecError, match=f"{name} takes {len(FAMILIES[name].args)}"):
            parse_prior(f"{name}({', '.join(['1'] * (len(FAMILIES[name].args) + 1))})")


@pytest.mark.parametrize("name", [n for n, f in FAMILIES.items() if f.positive])
def test_positive_arguments_are_checked(name):
    fam = FAMILIES[name]
    for bad in fam.positive:
        args = tuple(0.0 if a == bad else ARGS[name][i] for i, a in enumerate(fam.args))
        with pytest.raises(SpecError, match=f"argument {bad} must be positive"):
            Prior(name, args)


@pytest.mark.parametrize("name", [n for n, f in FAMILIES.items() if f.pymc is not None])
def test_every_pymc_family_builds(name):
    import pymc as pm

    fam = FAMILIES[name]
    with pm.Model() as model:
        v = prior_variable(name, "p", dict(zip(fam.args, ARGS[name])), (2,))
    assert v is not None
    var = "p_var" if fam.on_variance else "p"
    assert var in model.named_vars


def test_families_for_each_kind():
    assert families_for("beta") == ["Normal", "StudentT", "Flat", "Uniform"]
    assert families_for("corr") == ["LKJ"]
    assert set(families_for("sd")) == set(families_for("sigma")) == {
        "HalfNormal", "HalfCauchy", "HalfStudentT", "Exponential", "HalfFlat", "Uniform",
        "InverseGamma"}
