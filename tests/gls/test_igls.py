"""Iterated GLS: IGLS converges to the ML fit, RIGLS to the REML fit (Goldstein 1986, 1989).

Checked against lme4's reference fits (tests/reference/lme4) and against the engine's own
ML/REML fits and criterion on sleepstudy, Dyestuff and Orthodont (nlme's data, in
tests/reference/formula)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.errors import NotYetSupportedError, OptionError
from workbench.gls.igls import IglsWarning
from tests.helpers import lme4_reference, reference_data

FORMULA_DIR = Path(__file__).resolve().parents[1] / "reference" / "formula"
LME4 = lme4_reference()
METHODS = [("igls", "ML"), ("rigls", "REML")]


def rel(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("model", ["dyestuff", "sleepstudy", "sleepstudy_zerocorr", "pastes"])
@pytest.mark.parametrize("method,kind", METHODS)
def test_iterated_gls_equals_lme4(model, method, kind):
    entry = LME4[model]
    ref = entry[kind]
    fit = workbench.fit(entry["formula"], reference_data(entry), method=method)
    assert fit.converged and not fit.singular
    assert rel(fit.criterion, ref["deviance"]) < 1e-9
    assert rel(fit.loglik, ref["logLik"]) < 1e-9
    for k, v in ref["beta"].items():
        assert rel(fit.beta[k], v) < 1e-6
        assert rel(fit.beta_se[k], ref["beta_se"][k]) < 1e-6
    assert rel(fit.sigma, ref["sigma"]) < 1e-6
    for got, want in zip(fit.varcorr, ref["varcorr"]):
        assert (got["grp"], got["var1"], got["var2"]) == (want["grp"], want["var1"], want["var2"])
        assert rel(got["sdcor"], want["sdcor"]) < 1e-5
    if "ranef" in ref:  # lme4's BLUPs and conditional sds (REML fits)
        got = {(r["group"], r["term"], str(r["level"])): r for r in fit.ranef}
        for r in ref["ranef"]:
            g = got[(r["group"], r["term"], str(r["level"]))]
            for key in ("value", "cond_sd"):
                assert abs(g[key] - r[key]) / max(1.0, abs(r[key])) < 1e-5, (r, key)


ENGINE_CASES = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("sleepstudy", "Reaction ~ Days + (1 | Subject)"),
    ("dyestuff", "Yield ~ 1 + (1 | Batch)"),
    ("pastes", "strength ~ 1 + (1 | batch/cask)"),
    ("orthodont", "distance ~ age + (age | Subject)"),
    ("orthodont", "distance ~ age * Sex + (age | Subject)"),
]


def _data(name):
    if name == "orthodont":
        return pd.read_csv(FORMULA_DIR / "orthodont.csv")
    return workbench.datasets.load(name)


@pytest.mark.parametrize("data,formula", ENGINE_CASES)
@pytest.mark.parametrize("method,kind", METHODS)
def test_iterated_gls_equals_the_engine(data, formula, method, kind):
    d = _data(data)
    reml = kind == "REML"
    it = workbench.fit(formula, d, method=method)
    eng = workbench.fit(formula, d, method=kind.lower())
    assert it.converged
    # the same optimum: IGLS's fixed point is a stationary point of the engine's criterion,
    # never above the engine's optimum beyond rounding
    crit = workbench.criterion(formula, d, reml=reml)
    assert rel(crit(np.array(it.diagnostics["theta"])), it.criterion) < 1e-12
    assert it.criterion <= eng.criterion + 1e-11 * abs(eng.criterion)
    assert rel(it.criterion, eng.criterion) < 1e-10
    for k in eng.beta:
        assert rel(it.beta[k], eng.beta[k]) < 1e-6
        # pastes by ML: the engine's SE is 1.4e-6 from lme4's (IGLS's 9e-9), so 1e-5 here
        assert rel(it.beta_se[k], eng.beta_se[k]) < 1e-5
    assert rel(it.sigma, eng.sigma) < 1e-6
    for a, b in zip(it.varcorr, eng.varcorr):
        # in flat directions the engine stops up to ~6e-6 away (sleepstudy's correlation,
        # pastes' batch sd by ML, where IGLS is 1.1e-7 from lme4 and the engine 5.7e-6)
        assert rel(a["sdcor"], b["sdcor"]) < 1e-5
    ra, rb = it.ranef_frame(), eng.ranef_frame()
    assert list(zip(ra["group"], ra["term"], ra["level"])) == \
        list(zip(rb["group"], rb["term"], rb["level"]))
    # BLUPs and conditional sds: the README's tolerance against lme4 (1e-4 scaled by
    # max(1, |value|)); they follow the engine's flat-direction offsets above
    np.testing.assert_allclose(ra["value"], rb["value"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ra["cond_sd"], rb["cond_sd"], rtol=1e-4, atol=1e-4)


def test_trace_is_kept_and_descends():
    sleep = workbench.datasets.load("sleepstudy")
    fit = workbench.fit("Reaction ~ Days + (Days | Subject)", sleep, method="rigls")
    trace = fit.diagnostics["iterations"]
    assert trace[0]["iteration"] == 0 and trace[-1]["iteration"] == len(trace) - 1
    assert set(trace[0]["variance"]) == {"var[Subject:(Intercept)]", "cov[Subject:(Intercept),Days]",
                                         "var[Subject:Days]", "var[Residual]"}
    # the start is OLS: no random-effects variance
    assert trace[0]["variance"]["var[Subject:(Intercept)]"] == 0.0
    assert set(trace[-1]["beta"]) == {"(Intercept)", "Days"}
    assert trace[-1]["criterion"] == fit.criterion
    crits = [t["criterion"] for t in trace]
    assert crits[-1] <= min(crits) + 1e-12 * abs(crits[-1])
    assert crits[0] > crits[-1] + 100  # OLS start is far from the optimum
    assert fit.state.iterations is trace
    assert fit.to_dict()["diagnostics"]["iterations"][-1]["criterion"] == pytest.approx(fit.criterion)


def test_rigls_negative_variance_equals_the_nobound_fit():
    # Dyestuff2: the REML optimum over all PD V has a negative batch variance (MLwiN's RIGLS
    # reports it); the engine's nobound fit finds the same point
    d = workbench.datasets.load("Dyestuff2")
    with pytest.warns(IglsWarning, match="not positive semidefinite"):
        it = workbench.fit("Yield ~ 1 + (1 | Batch)", d, method="rigls")
    nb = workbench.fit("Yield ~ 1 + (1 | Batch)", d, method="reml", nobound=True)
    assert it.singular
    assert it.varcorr[0]["vcov"] < 0
    assert rel(it.varcorr[0]["vcov"], nb.varcorr[0]["vcov"]) < 1e-6
    assert rel(it.sigma, nb.sigma) < 1e-6


def test_maxiter_reached_is_not_converged():
    sleep = workbench.datasets.load("sleepstudy")
    with pytest.warns(IglsWarning, match="did not converge in 2 iterations"):
        fit = workbench.fit("Reaction ~ Days + (Days | Subject)", sleep, method="rigls", maxiter=2)
    assert not fit.converged


def test_iterated_gls_names_what_it_does_not_cover():
    pen = workbench.datasets.load("Penicillin")
    with pytest.raises(NotYetSupportedError, match="plate, sample are crossed"):
        workbench.fit("diameter ~ 1 + (1 | plate) + (1 | sample)", pen, method="igls")
    with pytest.raises(OptionError, match="maxiter"):
        workbench.fit("diameter ~ 1 + (1 | plate)", pen, method="igls", maxiter=0)


def test_compare_takes_the_gls_methods():
    sleep = workbench.datasets.load("sleepstudy")
    f = "Reaction ~ Days + (1 | Subject)"
    fits = [workbench.fit(f, sleep, method=m) for m in ("reml", "fgls", "igls", "rigls")]
    comp = workbench.compare(*fits)
    assert comp.methods == ["reml", "fgls", "igls", "rigls"]
    p = comp.parameters.set_index(["parameter", "method"])["estimate"]
    assert p[("sd[Subject:(Intercept)]", "rigls")] == pytest.approx(
        p[("sd[Subject:(Intercept)]", "reml")], rel=1e-6)
    assert p[("sigma", "fgls")] == pytest.approx(p[("sigma", "reml")], rel=1e-6)
