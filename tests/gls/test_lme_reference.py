"""Random effects with a residual correlation structure (nlme::lme with correlation=) against
nlme 3.1-162: values by tests/reference/gls/make_lme_reference.R on Ovary, Orthodont and
BodyWeight, REML and ML."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench import names

REF_DIR = Path(__file__).resolve().parents[1] / "reference" / "gls"
REF = json.loads((REF_DIR / "lme_reference.json").read_text())
CASES = [(c, m) for c in REF["cases"] for m in ("REML", "ML")]
GROUPS = {k: str for k in ("Mare", "Subject", "Rat", "Diet")}  # read as R's factors

def rel(a, b):
    return abs(a - b) / abs(b)


def load(case):
    return pd.read_csv(REF_DIR / REF["cases"][case]["csv"], dtype=GROUPS)


@pytest.fixture(scope="module")
def fits():
    out = {}
    for case, method in CASES:
        c = REF["cases"][case]
        out[case, method] = workbench.fit(c["formula"], load(case), method=method.lower(),
                                          correlation=c["correlation"])
    return out


@pytest.mark.parametrize("case,method", CASES)
def test_lme_correlation_equals_nlme(fits, case, method):
    c = REF["cases"][case]
    ref = c["fits"][method]
    fit = fits[case, method]
    assert fit.converged
    assert abs(fit.loglik - ref["logLik"]) < 1e-6
    cs = fit.diagnostics["corstruct"]
    assert cs["structure"] == c["correlation"].split("(")[0] and cs["form"] == c["correlation"]
    assert rel(cs[c["param"]], ref["param"]) < 1e-5
    assert rel(fit.sigma, ref["sigma"]) < 1e-5
    for k, v in ref["beta"].items():
        assert rel(fit.beta[k], v) < 1e-5
        assert rel(fit.beta_se[k], ref["beta_se"][k]) < 1e-5
    params = fit.params().set_index("parameter")["estimate"]
    group = fit.design.terms[0].group
    for term, sd in ref["sd"].items():
        assert rel(params[names.sd(group, term)], sd) < 1e-5
    for pair, cor in (ref["cor"] or {}).items():
        t1, t2 = pair.split(",", 1)
        key = names.cor(group, t1, t2)
        if key in params.index:
            assert rel(params[key], cor) < 1e-5
        else:  # pdDiag: no correlation parameter, nlme's is 0
            assert cor == 0
    # BLUPs: within 1e-5 of their term's sd (a BLUP near 0 has no relative precision)
    blups = {(r["term"], r["level"]): r["value"] for r in fit.ranef}
    for term, levels in ref["blup"].items():
        for level, v in levels.items():
            assert abs(blups[term, level] - v) < 1e-5 * ref["sd"][term]
    np.testing.assert_allclose(fit.fitted()[:6], ref["fitted"], rtol=1e-6)


@pytest.mark.parametrize("case,method", CASES)
def test_lme_interval_equals_nlme(fits, case, method):
    if not REF["cases"][case]["fits"][method]["param_ci_stable"]:
        # nlme's interval comes from a finite-difference Hessian (fdHess), and its two
        # optimizers, at the same optimum, give intervals further apart than 1e-3 of the width
        # here; test_interval_is_the_profile_curvature checks ours
        pytest.skip("nlme's finite-difference interval is not stable here")
    ref = REF["cases"][case]["fits"][method]["param_ci"]
    got = fits[case, method].diagnostics["corstruct"]["interval"]
    width = ref[1] - ref[0]
    for a, b in zip(got, ref):
        assert abs(a - b) < 1e-3 * width


@pytest.mark.parametrize("case,method", CASES)
def test_interval_is_the_profile_curvature(fits, case, method):
    """se(u) from the interval equals the one from a second difference of the profiled
    criterion (each point a full optimisation over theta)."""
    from workbench.design import build_design
    from workbench.formula import parse_formula
    from workbench.gls.corstruct import correlation_rows, parse_correlation
    from workbench.gls.lme import LmeProblem
    from workbench.gls.residual import STRUCTURES

    c = REF["cases"][case]
    fit = fits[case, method]
    spec, corr = parse_formula(c["formula"]), parse_correlation(c["correlation"])
    data, codes, pos = correlation_rows(spec, load(case), corr)
    wh = STRUCTURES[corr.kind](codes, pos)
    prob = LmeProblem(build_design(spec, data), wh, method == "REML")
    cs = fit.diagnostics["corstruct"]
    u = wh.unconstrained(np.array([cs[c["param"]]]))
    h = 3e-3
    d2 = (prob.profiled(u + h) - 2 * prob.profiled(u) + prob.profiled(u - h)) / h**2
    se = math.sqrt(2.0 / d2)
    lo, hi = (float(wh.unconstrained(np.array([x]))[0]) for x in cs["interval"])
    # the profile's points carry the inner optimisation's noise (~1e-7) over h^2 = 1e-5
    assert rel((hi - lo) / (2 * 1.959963984540054), se) < 1e-3
