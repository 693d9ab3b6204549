"""Study arms from the other GLS traditions: fgls (with its estimator), igls, rigls, and nlme's
compound-symmetry GLS scored as the random-intercept model it equals; Wald intervals for the
fixed effects only, and plain errors for the arms that cannot be scored."""

from __future__ import annotations

import math

import numpy as np
import pytest

import workbench
from workbench.errors import SpecError
from workbench.study.replicate import fit_values, random_intercept_varcorr
from workbench.study.run import run_study
from workbench.study.spec import study_from_dict
from workbench.study.store import Store

DESIGN = {"formula": "y ~ 1 + x + (1 | g)",
          "factors": {"g": {"levels": 10, "size": 5}},
          "predictors": {"x": {"level": "obs"}},
          "fixed": {"(Intercept)": 1.0, "x": 0.5},
          "random": {"g": {"terms": ["(Intercept)"], "sd": [0.7]}},
          "residual": {"sd": 1.0}}
ARMS = {"reml": {"method": "reml", "options": {"vc_se": "expected"}},
        "swar": {"method": "fgls", "options": {"fgls": "swar"}},
        "amemiya": {"method": "fgls", "options": {"fgls": "amemiya"}},
        "igls": {"method": "igls"},
        "rigls": {"method": "rigls"},
        "gls_cs": {"method": "reml", "options": {"correlation": "cs(~ 1 | g)"}}}


def study(methods=ARMS, design=DESIGN, **extra):
    return study_from_dict({"name": "gls_arms", "design": design, "replicates": 4, "seed": 11,
                            "methods": methods, **extra})


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("gls_arms")
    run_study(study(summary={"compare": ["reml", "swar"]}), out, workers=0, progress=False)
    return Store(out).results()


def test_arms_default_to_fixed_effect_wald_intervals():
    s = study()
    assert {k: m.intervals for k, m in s.spec.methods.items()} == {
        "reml": ["wald_var"], "swar": ["wald"], "amemiya": ["wald"], "igls": ["wald"],
        "rigls": ["wald"], "gls_cs": ["wald"]}


def test_every_arm_fits_and_is_scored(results):
    r = results.set_index(["method", "replicate", "parameter"])
    assert results["error"].isna().all() and results["converged"].all()
    for arm in ARMS:
        sub = results[results["method"] == arm]
        assert set(sub["parameter"]) == {"beta[(Intercept)]", "beta[x]", "sd[g:(Intercept)]",
                                         "var[g:(Intercept)]", "sigma", "var[Residual]"}
        beta = sub[sub["parameter"].str.startswith("beta")]
        assert np.isfinite(beta[["lower", "upper"]]).all().all()
        if arm != "reml":  # no standard errors for these variance components: no interval
            vc = sub[~sub["parameter"].str.startswith("beta")]
            assert vc[["lower", "upper"]].isna().all().all()
    # RIGLS converges to REML, and cs GLS is the random-intercept model (Rho > 0 here)
    for arm in ("rigls", "gls_cs"):
        for rep in range(4):
            for p in ("beta[x]", "var[g:(Intercept)]", "var[Residual]", "sd[g:(Intercept)]"):
                a, b = r.loc[(arm, rep, p), "estimate"], r.loc[("reml", rep, p), "estimate"]
                assert a == pytest.approx(b, rel=1e-5), (arm, rep, p)


def test_fgls_arm_equals_a_direct_fit(results):
    from workbench.simulate.generate import generate
    from workbench.simulate.schema import design_from_dict
    from workbench.study.replicate import replicate_rng

    data = generate(design_from_dict(DESIGN), replicate_rng(11, 0, 2))
    f = workbench.fit(DESIGN["formula"], data, method="fgls", fgls="amemiya")
    r = results[(results["method"] == "amemiya") & (results["replicate"] == 2)]
    got = dict(zip(r["parameter"], r["estimate"]))
    assert got["beta[x]"] == f.beta["x"]
    assert got["var[g:(Intercept)]"] == pytest.approx(f.diagnostics["fgls"]["sigma2_id"], rel=1e-12)
    assert got["var[Residual]"] == pytest.approx(f.diagnostics["fgls"]["sigma2_idios"], rel=1e-12)


def test_cs_fit_mapped_to_random_intercept_parameters():
    d = workbench.datasets.load("Dyestuff")
    cs = workbench.fit("Yield ~ 1", d, correlation="cs(~ 1 | Batch)")
    rho, s2 = cs.diagnostics["corstruct"]["Rho"], cs.sigma**2
    rows = random_intercept_varcorr(cs)
    assert rows[0]["grp"] == "Batch" and rows[0]["vcov"] == pytest.approx(rho * s2)
    assert rows[1]["vcov"] == pytest.approx((1 - rho) * s2)
    vals = fit_values(cs, "wald")
    assert vals["sd[Batch:(Intercept)]"][0] == pytest.approx(math.sqrt(rho * s2))
    assert math.isnan(vals["sigma"][2])
    # a negative within-group correlation: negative var[g], sd 0 (Dyestuff2, as the nobound fit)
    neg = workbench.fit("Yield ~ 1", workbench.datasets.load("Dyestuff2"),
                        correlation="cs(~ 1 | Batch)")
    vals = fit_values(neg, "wald")
    assert neg.diagnostics["corstruct"]["Rho"] < 0
    assert vals["var[Batch:(Intercept)]"][0] < 0 and vals["sd[Batch:(Intercept)]"][0] == 0.0
    assert random_intercept_varcorr(workbench.fit("Yield ~ 1 + (1 | Batch)", d)) is None


@pytest.mark.parametrize("arm,needle", [
    ({"method": "fgls", "intervals": ["wald_var"]}, "a fgls arm has intervals = [\"wald\"] only"),
    ({"method": "igls", "options": {"fgls": "swar"}}, "unknown option(s) for method 'igls'"),
    ({"method": "bayes", "options": {"correlation": "cs(~ 1 | g)"}}, "needs method = 'reml' or 'ml'"),
    ({"method": "reml", "options": {"correlation": "ar1(~ 1 | g)"}}, "must be cs(~ 1 | g)"),
    ({"method": "reml", "options": {"correlation": "cs(~ 1 | h)"}}, "must be cs(~ 1 | g)"),
    ({"method": "reml", "options": {"correlation": "cs(1 | g)"}}, "cannot read correlation"),
])
def test_arms_that_cannot_be_scored_are_refused(arm, needle):
    with pytest.raises(SpecError) as info:
        study({"x": arm})
    assert needle in str(info.value)


def test_cs_arm_needs_a_random_intercept_truth():
    slopes = dict(DESIGN, formula="y ~ 1 + x + (1 + x | g)",
                  random={"g": {"terms": ["(Intercept)", "x"], "sd": [0.7, 0.2]}})
    with pytest.raises(SpecError, match="single random intercept"):
        study({"cs": ARMS["gls_cs"]}, design=slopes)
