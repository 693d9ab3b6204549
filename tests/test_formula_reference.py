"""The formula language against lme4: names, offsets, weights, transformed terms, contrasts.

Reference values: ``tests/reference/formula/reference.json``, written with the data sets beside
it by ``make_reference.R`` (R 4.2 with Debian's r-cran-lme4 1.1-31).  Each case is fitted by REML
and ML and checked against lme4's criterion, fixed effects (names and values), their standard
errors, sigma, the variance components and the conditional modes with their sds.
"""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.design import build_design

HERE = Path(__file__).parent / "reference" / "formula"
REF = json.loads((HERE / "reference.json").read_text(encoding="utf-8"))


def load(case):
    """The case's data, with R's level order (and ordered flag) for the factors that need it."""
    df = pd.read_csv(HERE / f"{case['data']}.csv", encoding="utf-8")
    for col, spec in (case.get("factors") or {}).items():
        df[col] = pd.Categorical(df[col].astype(str), categories=spec["levels"],
                                 ordered=spec["ordered"])
    return df


def options(case):
    return {"weights": case.get("weights"), "offset": case.get("offset"),
            "contrasts": case.get("contrasts")}


def fit(case, method):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return workbench.fit(case["formula"], load(case), method=method, **options(case))


def rel(a, b):
    return abs(a - b) / max(1.0, abs(b))


@pytest.mark.parametrize("name", sorted(REF["cases"]))
def test_fixed_effect_names_are_lme4s(name):
    case = REF["cases"][name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = build_design(case["formula"], load(case), **options(case))
    assert list(d.fixed_names) == case["colnames"]


@pytest.mark.parametrize("method", ["reml", "ml"])
@pytest.mark.parametrize("name", sorted(REF["cases"]))
def test_fit_matches_lme4(name, method):
    case = REF["cases"][name]
    r = case[method]
    f = fit(case, method)
    assert f.nobs == r["nobs"]
    assert f.ngroups == r["ngroups"]
    assert abs(f.criterion - r["criterion"]) <= 1e-6 * abs(r["criterion"])
    assert list(f.beta) == list(r["beta"])
    for k, v in r["beta"].items():
        assert rel(f.beta[k], v) < 1e-5, k
        assert abs(f.beta_se[k] - r["beta_se"][k]) < 1e-5 * r["beta_se"][k], k
    assert abs(f.sigma - r["sigma"]) < 1e-5 * r["sigma"]
    ours = {(v["grp"], v["var1"], v["var2"]): v["sdcor"] for v in f.varcorr}
    assert set(ours) == {(v["grp"], v["var1"], v["var2"]) for v in r["varcorr"]}
    for v in r["varcorr"]:
        assert rel(ours[(v["grp"], v["var1"], v["var2"])], v["sdcor"]) < 1e-4, v
    re = r["ranef"]
    ours = {(b["term"], b["level"]): (b["value"], b["cond_sd"]) for b in f.ranef}
    for term, level, val, sd in zip(re["term"], re["level"], re["value"], re["cond_sd"]):
        got = ours[(term, level)]
        assert rel(got[0], val) < 1e-4 and rel(got[1], sd) < 1e-4, (term, level)


def test_offset_is_held_at_one():
    """``offset(off)``, ``offset=`` and fitting y - off without an offset give one fit."""
    case = REF["cases"]["offset_term"]
    data = load(case)
    a = workbench.fit(case["formula"], data)
    b = workbench.fit("Reaction ~ Days + (Days | Subject)", data, offset="off")
    c = workbench.fit("I(Reaction - off) ~ Days + (Days | Subject)", data)
    assert "off" not in a.beta and "offset(off)" not in a.beta
    for k in a.beta:
        assert a.beta[k] == pytest.approx(b.beta[k], rel=1e-12)
        assert a.beta[k] == pytest.approx(c.beta[k], rel=1e-12)
