"""Residual correlation structures without random effects (nlme::gls) against nlme 3.1-162
(values by tests/reference/gls/make_reference.R), and the equivalences with the random-intercept
model: cs equals (1 | g) REML for a positive correlation and the nobound fit for a negative one."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import workbench
from workbench.errors import DataError, FormulaError, NotYetSupportedError, OptionError

REF_DIR = Path(__file__).resolve().parents[1] / "reference" / "gls"
REF = json.loads((REF_DIR / "gls_reference.json").read_text())
CASES = [(c, m) for c in REF["cases"] for m in ("REML", "ML")]


def rel(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("case,method", CASES)
def test_gls_correlation_equals_nlme(case, method):
    c = REF["cases"][case]
    ref = c["fits"][method]
    d = pd.read_csv(REF_DIR / c["csv"])
    fit = workbench.fit(c["formula"], d, method=method.lower(), correlation=c["correlation"])
    assert fit.converged
    assert rel(fit.loglik, ref["logLik"]) < 1e-10
    cs = fit.diagnostics["corstruct"]
    assert rel(cs[c["param"]], ref["param"]) < 1e-5
    assert rel(fit.sigma, ref["sigma"]) < 1e-5
    for k, v in ref["beta"].items():
        assert rel(fit.beta[k], v) < 1e-5
        assert rel(fit.beta_se[k], ref["beta_se"][k]) < 1e-5
    if case != "ovary_cs":
        # nlme's interval comes from a finite-difference Hessian; on the unbalanced Ovary with
        # compound symmetry nlme itself gives intervals that move by ~5% with the row order
        for a, b in zip(cs["interval"], ref["param_ci"]):
            assert rel(a, b) < 1e-4


def test_cs_equals_random_intercept_reml_when_positive():
    d = pd.read_csv(REF_DIR / "orthodont.csv")
    cs = workbench.fit("distance ~ age", d, correlation="cs(~ 1 | Subject)")
    ri = workbench.fit("distance ~ age + (1 | Subject)", d)
    assert rel(cs.criterion, ri.criterion) < 1e-12
    for k in ri.beta:
        assert rel(cs.beta[k], ri.beta[k]) < 1e-8
        assert rel(cs.beta_se[k], ri.beta_se[k]) < 1e-6
    tau2, s2 = ri.varcorr[0]["vcov"], ri.varcorr[1]["vcov"]
    assert rel(cs.sigma**2, tau2 + s2) < 1e-6
    assert rel(cs.diagnostics["corstruct"]["Rho"], tau2 / (tau2 + s2)) < 1e-6


def test_cs_equals_the_nobound_fit_when_negative():
    d = workbench.datasets.load("Dyestuff2")
    cs = workbench.fit("Yield ~ 1", d, correlation="cs(~ 1 | Batch)")
    nb = workbench.fit("Yield ~ 1 + (1 | Batch)", d, nobound=True)
    tau2, s2 = nb.varcorr[0]["vcov"], nb.varcorr[1]["vcov"]
    assert tau2 < 0
    assert rel(cs.criterion, nb.criterion) < 1e-12
    assert rel(cs.diagnostics["corstruct"]["Rho"], tau2 / (tau2 + s2)) < 1e-6
    assert rel(cs.beta_se["(Intercept)"], nb.beta_se["(Intercept)"]) < 1e-6


def test_ar1_position_column_and_row_order():
    d = pd.read_csv(REF_DIR / "ovary.csv")
    f = "follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time)"
    a = workbench.fit(f, d, correlation="ar1(~ 1 | Mare)")
    d = d.assign(pos=d.groupby("Mare").cumcount() + 1)
    b = workbench.fit(f, d.sample(frac=1.0, random_state=4), correlation="ar1(~ pos | Mare)")
    assert rel(a.criterion, b.criterion) < 1e-12
    assert rel(a.diagnostics["corstruct"]["Phi"], b.diagnostics["corstruct"]["Phi"]) < 1e-6


def test_correlation_errors_are_plain():
    d = pd.read_csv(REF_DIR / "orthodont.csv")
    with pytest.raises(FormulaError, match="cannot read correlation"):
        workbench.fit("distance ~ age", d, correlation="cs(Subject)")
    with pytest.raises(NotYetSupportedError, match="'exp' is not implemented"):
        workbench.fit("distance ~ age", d, correlation="exp(~ 1 | Subject)")
    with pytest.raises(DataError, match="not identifiable beside the random effects"):
        workbench.fit("distance ~ age + (1 | Subject)", d, correlation="cs(~ 1 | Subject)")
    with pytest.raises(DataError, match="'Patient' is not in the data"):
        workbench.fit("distance ~ age", d, correlation="cs(~ 1 | Patient)")
    with pytest.raises(DataError, match="integer-valued"):
        workbench.fit("distance ~ age", d.assign(t=d.age / 3), correlation="ar1(~ t | Subject)")
    with pytest.raises(DataError, match="repeats within a group"):
        workbench.fit("distance ~ age", d.assign(t=1), correlation="ar1(~ t | Subject)")
    with pytest.raises(OptionError, match="needs method 'reml' or 'ml'"):
        workbench.fit("distance ~ age", d, method="fgls", correlation="cs(~ 1 | Subject)")
