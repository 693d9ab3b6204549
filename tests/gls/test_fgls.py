"""Feasible GLS (method="fgls") against R's plm: plm(model = "random", random.method = M) on
plm's balanced Grunfeld panel and unbalanced EmplUK panel (values by
tests/reference/gls/make_reference.R, committed), and linearmodels' RandomEffects when installed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.errors import NotYetSupportedError, OptionError

REF_DIR = Path(__file__).resolve().parents[1] / "reference" / "gls"
REF = json.loads((REF_DIR / "fgls_reference.json").read_text())
CASES = [(panel, m) for panel in REF["panels"] for m in REF["panels"][panel]["fits"]]


def panel_data(panel: str) -> pd.DataFrame:
    return pd.read_csv(REF_DIR / REF["panels"][panel]["csv"])


def rel(a, b):
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("panel,estimator", CASES)
def test_fgls_equals_plm(panel, estimator):
    entry = REF["panels"][panel]
    ref = entry["fits"][estimator]
    fit = workbench.fit(entry["formula"], panel_data(panel), method="fgls", fgls=estimator)
    d = fit.diagnostics["fgls"]
    assert d["balanced"] == entry["balanced"]
    assert rel(d["sigma2_idios"], ref["sigma2_idios"]) < 1e-9
    assert rel(d["sigma2_id"], ref["sigma2_id"]) < 1e-9
    assert list(fit.beta) == list(ref["beta"])
    for k in ref["beta"]:
        assert rel(fit.beta[k], ref["beta"][k]) < 1e-9, k
        assert rel(fit.beta_se[k], ref["beta_se"][k]) < 1e-9, k
    if ref.get("theta") is not None:
        assert np.allclose(d["theta"], ref["theta"], rtol=1e-9, atol=0)
    # the record: variance components under the usual names, sigma the idiosyncratic sd
    assert fit.method == "fgls" and fit.criterion is None and fit.converged
    assert fit.sigma == pytest.approx(np.sqrt(ref["sigma2_idios"]), rel=1e-9)
    grp = [r for r in fit.varcorr if r["grp"] != "Residual"]
    assert grp[0]["vcov"] == pytest.approx(ref["sigma2_id"], rel=1e-9)


@pytest.mark.parametrize("panel", list(REF["panels"]))
def test_fgls_swar_equals_linearmodels(panel):
    lm = pytest.importorskip("linearmodels.panel")
    entry = REF["panels"][panel]
    df = panel_data(panel)
    fit = workbench.fit(entry["formula"], df, method="fgls")
    yname, rhs = entry["formula"].split("~")
    xs = [v.strip() for v in rhs.split("+")[:-1]]
    frame = df.set_index(entry["index"])
    X = frame[xs].copy()
    X.insert(0, "const", 1.0)
    res = lm.RandomEffects(frame[yname.strip()], X).fit(small_sample=True)
    np.testing.assert_allclose(list(fit.beta.values()), res.params.values, rtol=1e-9)
    np.testing.assert_allclose(list(fit.beta_se.values()), res.std_errors.values, rtol=1e-9)


def test_fgls_ranef_are_blups_at_the_components():
    entry = REF["panels"]["grunfeld"]
    df = panel_data("grunfeld")
    fit = workbench.fit(entry["formula"], df, method="fgls")
    s_nu, s_eta = fit.diagnostics["fgls"]["sigma2_idios"], fit.diagnostics["fgls"]["sigma2_id"]
    beta = np.array(list(fit.beta.values()))
    X = np.column_stack([np.ones(len(df)), df["value"], df["capital"]])
    r = pd.Series(df["inv"].to_numpy() - X @ beta).groupby(df["firm"]).agg(["mean", "size"])
    want = r["size"] * s_eta / (r["size"] * s_eta + s_nu) * r["mean"]
    got = {int(x["level"]): x["value"] for x in fit.ranef}
    for level, v in want.items():
        assert got[level] == pytest.approx(v, rel=1e-10)


@pytest.mark.parametrize("formula,needle", [
    ("Reaction ~ Days + (Days | Subject)", "random intercepts only"),
    ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", "one grouping factor"),
    ("Reaction ~ 0 + Days + (1 | Subject)", "fixed intercept"),
])
def test_fgls_names_what_it_does_not_cover(formula, needle):
    sleep = workbench.datasets.load("sleepstudy")
    with pytest.raises(NotYetSupportedError, match=needle):
        workbench.fit(formula, sleep, method="fgls")


def test_fgls_options_checked():
    sleep = workbench.datasets.load("sleepstudy")
    with pytest.raises(OptionError, match="swar"):
        workbench.fit("Reaction ~ Days + (1 | Subject)", sleep, method="fgls", fgls="gls")
    with pytest.raises(OptionError, match="nobound"):
        workbench.fit("Reaction ~ Days + (1 | Subject)", sleep, method="fgls", nobound=True)


def test_fgls_equals_reml_on_balanced_data():
    # Swamy-Arora on a balanced panel whose regressors vary only within groups is the ANOVA
    # estimator, which equals REML when it is inside the parameter space (Searle, Casella &
    # McCulloch 1992, sec. 6.8): the same variance components, fixed effects and SEs
    sleep = workbench.datasets.load("sleepstudy")
    f = "Reaction ~ Days + (1 | Subject)"
    a = workbench.fit(f, sleep, method="fgls")
    b = workbench.fit(f, sleep, method="reml")
    for k in a.beta:
        assert a.beta[k] == pytest.approx(b.beta[k], rel=1e-9)
        assert a.beta_se[k] == pytest.approx(b.beta_se[k], rel=1e-6)
    assert a.sigma == pytest.approx(b.sigma, rel=1e-6)
    assert a.varcorr[0]["sdcor"] == pytest.approx(b.varcorr[0]["sdcor"], rel=1e-6)
