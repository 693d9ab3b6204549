"""Random effects with a residual variance function, alone or with a correlation
(nlme::lme with weights= and correlation=) against nlme 3.1-162: values made by
tests/reference/gls/make_lme_variance_reference.R."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import workbench

REF_DIR = Path(__file__).resolve().parents[1] / "reference" / "gls"
REF = json.loads((REF_DIR / "lme_variance_reference.json").read_text())
CASES = [(c, m) for c in REF["cases"] for m in ("REML", "ML")]


def rel(a, b):
    return abs(a - b) / abs(b)


@pytest.fixture(scope="module")
def fits():
    out = {}
    for case, method in CASES:
        c = REF["cases"][case]
        d = pd.read_csv(REF_DIR / c["csv"])
        out[case, method] = workbench.fit(c["formula"], d, method=method.lower(),
                                          variance=c["variance"], correlation=c["correlation"])
    return out


@pytest.mark.parametrize("case,method", CASES)
def test_lme_with_a_variance_function_equals_nlme(fits, case, method):
    ref = REF["cases"][case]["fits"][method]
    fit = fits[case, method]
    assert fit.converged
    assert abs(fit.loglik - ref["logLik"]) < 1e-6
    assert rel(fit.sigma, ref["sigma"]) < 1e-5
    for k, v in ref["beta"].items():
        assert rel(fit.beta[k], v) < 1e-5
        assert rel(fit.beta_se[k], ref["beta_se"][k]) < 1e-5
    vs = fit.diagnostics["varstruct"]
    for k, v in ref["varstruct"].items():
        assert rel(vs[k], v) < 1e-5
        lo, hi = vs["intervals"][k]
        assert lo < vs[k] < hi
    for k, v in (ref["corstruct"] or {}).items():
        assert rel(fit.diagnostics["corstruct"][k], v) < 1e-5
    sds = {r["var1"]: r["sdcor"] for r in fit.varcorr
           if r["grp"] != "Residual" and r["var2"] is None}
    for k, v in ref["sd"].items():
        assert rel(sds[k], v) < 1e-5


def test_varident_reference_level_follows_nlme_lme(fits):
    """nlme::lme sorts the rows by the grouping factor before reading varIdent's first
    stratum: Orthodont's subjects F01... come first, so Female is the reference whatever the
    data order."""
    vs = fits["orthodont_ident", "REML"].diagnostics["varstruct"]
    assert vs["reference"] == "Female" and "Male" in vs
