"""Likelihood-ratio tests, AIC/BIC and Satterthwaite degrees of freedom."""

import dataclasses
import math

import numpy as np
import pytest
from scipy.stats import chi2, t as t_dist

import workbench
from tests.helpers import reference_data
from workbench import datasets
from workbench.reml.inference import ComparisonError, aic, bic, lrt, n_params, satterthwaite

SMALL = ["dyestuff", "dyestuff2", "sleepstudy", "sleepstudy_zerocorr", "penicillin", "pastes"]


@pytest.fixture(scope="module")
def sleep():
    return datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def sleep_fits(sleep):
    f = lambda formula, method="reml": workbench.fit(formula, sleep, method=method)  # noqa: E731
    return {
        "full": f("Reaction ~ 1 + Days + (1 + Days | Subject)"),
        "zerocorr": f("Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)"),
        "intercept": f("Reaction ~ 1 + Days + (1 | Subject)"),
        "nodays": f("Reaction ~ 1 + (1 + Days | Subject)"),
    }


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("meth", ["REML", "ML"])
def test_aic_bic_use_lme4s_parameter_count(name, meth, lme4_reference):
    entry = lme4_reference[name]
    ref = entry[meth]
    fit = workbench.fit(entry["formula"], reference_data(entry),
                        method=meth.lower())
    npar = len(ref["beta"]) + np.atleast_1d(ref["theta"]).size + 1  # lme4: attr(logLik, "df")
    assert n_params(fit) == npar
    assert aic(fit) == pytest.approx(-2 * ref["logLik"] + 2 * npar, rel=1e-6)
    assert bic(fit) == pytest.approx(-2 * ref["logLik"] + math.log(entry["nobs"]) * npar,
                                     rel=1e-6)


def test_lrt_random_effects_against_lme4_deviances(lme4_reference, sleep_fits):
    """Correlation test: lme4's ML deviances of the two sleepstudy models give the statistic."""
    res = lrt(sleep_fits["zerocorr"], sleep_fits["full"])  # REML fits: refitted by ML
    expected = (lme4_reference["sleepstudy_zerocorr"]["ML"]["deviance"]
                - lme4_reference["sleepstudy"]["ML"]["deviance"])
    assert res.refitted and res.method == "ml"
    assert res.df == 1
    assert res.statistic == pytest.approx(expected, abs=1e-5)
    assert res.p_value == pytest.approx(chi2.sf(expected, 1), rel=1e-4)
    # order of the arguments does not matter; the smaller model is the null
    again = lrt(sleep_fits["full"], sleep_fits["zerocorr"])
    assert again.statistic == pytest.approx(res.statistic)
    assert list(res.table.npar) == [5, 6]
    assert res.table.deviance.iloc[0] == pytest.approx(
        lme4_reference["sleepstudy_zerocorr"]["ML"]["deviance"], abs=1e-5)


def test_lrt_fixed_effects_refits_by_ml(sleep, sleep_fits):
    res = lrt(sleep_fits["nodays"], sleep_fits["full"])
    ml_full = workbench.fit(sleep_fits["full"].formula, sleep, method="ml")
    ml_nodays = workbench.fit(sleep_fits["nodays"].formula, sleep, method="ml")
    assert res.refitted and res.df == 1
    assert res.statistic == pytest.approx(ml_nodays.criterion - ml_full.criterion, abs=1e-6)
    # the REML criteria differ by something else entirely: the refit matters
    reml_diff = sleep_fits["nodays"].criterion - sleep_fits["full"].criterion
    assert abs(reml_diff - res.statistic) > 1.0
    with pytest.raises(ComparisonError, match="not comparable"):
        lrt(sleep_fits["nodays"], sleep_fits["full"], refit=False)


def test_lrt_without_refit_on_same_fixed_effects(sleep_fits):
    res = lrt(sleep_fits["intercept"], sleep_fits["full"], refit=False)
    assert not res.refitted and res.method == "reml" and res.df == 2
    assert res.statistic == pytest.approx(
        sleep_fits["intercept"].criterion - sleep_fits["full"].criterion)


def test_lrt_rejects_non_nested_and_different_data(sleep_fits):
    with pytest.raises(ComparisonError, match="not nested"):
        lrt(sleep_fits["intercept"], sleep_fits["nodays"])  # Days fixed vs Days random only
    d1 = datasets.load("Dyestuff")
    d2 = datasets.load("Dyestuff2")
    a = workbench.fit("Yield ~ 1 + (1 | Batch)", d1, method="ml")
    b = workbench.fit("Yield ~ 1 + (1 | Batch)", d2, method="ml")
    with pytest.raises(ComparisonError, match="different data"):
        lrt(a, b)
    with pytest.raises(ComparisonError, match="same number of parameters"):
        lrt(a, a)
    with pytest.raises(ComparisonError, match="need a REML/ML fit; this fit is bayes"):
        lrt(dataclasses.replace(a, method="bayes"), a)


def test_satterthwaite_balanced_designs_give_exact_df(sleep_fits):
    """Balanced layouts: Satterthwaite df are the classical ANOVA df (lmerTest: 17 and 5)."""
    s = satterthwaite(sleep_fits["full"]).set_index("parameter")
    assert s.loc["beta[(Intercept)]", "df"] == pytest.approx(17.0, abs=2e-3)
    assert s.loc["beta[Days]", "df"] == pytest.approx(17.0, abs=2e-3)
    fit = sleep_fits["full"]
    row = s.loc["beta[Days]"]
    assert row.se == pytest.approx(fit.beta_se["Days"], rel=1e-6)
    assert row.t == pytest.approx(fit.beta["Days"] / fit.beta_se["Days"], rel=1e-6)
    assert row.p == pytest.approx(2 * t_dist.sf(abs(row.t), row.df), rel=1e-6)
    dye = workbench.fit("Yield ~ 1 + (1 | Batch)", datasets.load("Dyestuff"))
    d = satterthwaite(dye).set_index("parameter")
    assert d.loc["beta[(Intercept)]", "df"] == pytest.approx(5.0, abs=2e-3)  # 6 batches - 1


def test_satterthwaite_boundary_fits():
    """Dyestuff2's batch sd is 0: the intercept's variance is sigma^2/30, so df = 30 - 1.
    Eight schools with known sds and tau 0: nothing is estimated in V, df infinite (z test)."""
    from scipy.stats import norm

    d2 = workbench.fit("Yield ~ 1 + (1 | Batch)", datasets.load("Dyestuff2"))
    assert satterthwaite(d2).df.iloc[0] == pytest.approx(29.0, abs=2e-3)
    es = workbench.fit("y ~ 1 + (1 | school)", datasets.load("eight_schools"),
                       known_sd="sigma")
    row = satterthwaite(es).iloc[0]
    assert math.isinf(row.df)
    assert row.p == pytest.approx(2 * norm.sf(abs(row.t)), rel=1e-9)
