"""lme4's verbs on a fit (predict, fitted, residuals, vcov, confint) against lme4 1.1-31.

Reference values and data: ``tests/reference/verbs/make_reference.R`` (``verbs_reference.json``).
Tolerances follow the engine's agreement with lme4 (tests/reml/test_reference.py): BLUP-based
quantities 1e-5 relative, fixed-effect covariances 5e-5 relative to their largest entry.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench as wb
from workbench.errors import DataError, FormulaError, WorkbenchError

REF_DIR = Path(__file__).resolve().parent / "reference" / "verbs"
MODELS = ["sleepstudy", "sleepstudy_unb_quad", "machines", "machines_unb", "oats"]


@functools.cache
def _ref() -> dict:
    return json.loads((REF_DIR / "verbs_reference.json").read_text())


def ref_data(name: str) -> pd.DataFrame:
    if name == "sleepstudy":
        return wb.datasets.load("sleepstudy")
    return pd.read_csv(REF_DIR / name)


@functools.cache
def ref_fit(model: str):
    r = _ref()[model]
    contrasts = ({"factor(nitro)": "sum", "Variety": "sum"}
                 if model == "oats_interaction_sum" else None)
    return wb.fit(r["formula"], ref_data(r["data"]), contrasts=contrasts)


def offset_data() -> pd.DataFrame:
    d = wb.datasets.load("sleepstudy")
    return d.assign(exposure=1 + ((d["Subject"].cat.codes.to_numpy() + 1) % 3) / 10)


@pytest.mark.parametrize("model", MODELS)
def test_vcov_fitted_residuals_wald(model):
    r, fit = _ref()[model], ref_fit(model)
    V = fit.vcov()
    assert list(V.index) == list(V.columns) == r["vcov_names"]
    ref_v = np.array(r["vcov"])
    np.testing.assert_allclose(V.to_numpy(), ref_v, rtol=0, atol=5e-5 * np.abs(ref_v).max())
    np.testing.assert_allclose(fit.fitted(), r["fitted"], rtol=1e-5)
    scale = np.abs(fit.design.y).max()
    np.testing.assert_allclose(fit.residuals(), r["residuals"], rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(fit.residuals("pearson"), r["residuals_pearson"], rtol=0,
                               atol=1e-5 * scale)
    ci = fit.confint()
    assert list(ci["parameter"]) == [f"beta[{n}]" for n in r["confint_wald"]["names"]]
    np.testing.assert_allclose(ci["lower"], r["confint_wald"]["lower"], rtol=1e-5)
    np.testing.assert_allclose(ci["upper"], r["confint_wald"]["upper"], rtol=1e-5)
    assert set(ci["interval"]) == {"wald"} and set(ci["likelihood"]) == {"REML"}


@pytest.mark.parametrize("model", ["sleepstudy", "oats", "sleepstudy_offset"])
def test_predict_newdata_matches_lme4(model):
    r = _ref()[model]
    if model == "sleepstudy_offset":
        fit = wb.fit(r["formula"], offset_data())
    else:
        fit = ref_fit(model)
    nd = pd.DataFrame(r["newdata"])
    np.testing.assert_allclose(fit.predict(nd, allow_new_levels=True),
                               r["predict_conditional"], rtol=1e-5)
    np.testing.assert_allclose(fit.predict(nd, re_form="~0"), r["predict_marginal"], rtol=1e-10)
    np.testing.assert_allclose(fit.predict(nd, re_form="NA"), r["predict_marginal"], rtol=1e-10)
    if model == "oats":
        np.testing.assert_allclose(fit.predict(nd, re_form="~ (1 | Block)", allow_new_levels=True),
                                   r["predict_block_only"], rtol=1e-5)


def test_predict_default_is_fitted_and_train_conditional():
    r, fit = _ref()["sleepstudy"], ref_fit("sleepstudy")
    np.testing.assert_allclose(fit.predict(), r["predict_train_conditional"], rtol=1e-5)
    np.testing.assert_array_equal(fit.predict(), fit.fitted())


def test_predict_errors_name_the_problem():
    fit = ref_fit("sleepstudy")
    nd = pd.DataFrame({"Days": [1.0], "Subject": ["999"]})
    with pytest.raises(DataError, match="'999'.*allow_new_levels"):
        fit.predict(nd)
    with pytest.raises(DataError, match="'Days'"):
        fit.predict(pd.DataFrame({"Subject": ["308"]}))
    with pytest.raises(WorkbenchError, match="needs a Bayesian fit"):
        fit.predict(kind="draws")
    with pytest.raises(FormulaError, match="not a random-effects term"):
        fit.predict(nd, re_form="~ (1 | Other)")
    # the grouping column is not needed for a marginal prediction
    assert np.isfinite(fit.predict(pd.DataFrame({"Days": [3.0]}), re_form="~0")).all()
    oats = ref_fit("oats")
    with pytest.raises(DataError, match="level '0.3' of 'factor\\(nitro\\)'"):
        oats.predict(pd.DataFrame({"nitro": [0.3], "Variety": ["Victory"], "Block": ["I"]}))
    with pytest.raises(DataError, match="level 'Nope' of 'Variety'"):
        oats.predict(pd.DataFrame({"nitro": [0.2], "Variety": ["Nope"], "Block": ["I"]}))


def test_predict_missing_values_give_nan():
    fit = ref_fit("sleepstudy")
    p = fit.predict(pd.DataFrame({"Days": [1.0, np.nan], "Subject": ["308", "308"]}))
    assert np.isfinite(p[0]) and np.isnan(p[1])


def test_predict_poly_and_scale_use_the_fit_basis():
    d = wb.datasets.load("sleepstudy")
    fit = wb.fit("Reaction ~ poly(Days, 2) + (1 | Subject)", d)
    sub = d.iloc[[5, 17, 40]]
    # a prediction on some of the fit's rows is their fitted value, not a new basis
    np.testing.assert_allclose(fit.predict(sub), fit.fitted()[[5, 17, 40]], rtol=1e-12)
    # scale(Days) is Days reparameterised: the same predictions, on new values too
    new = pd.DataFrame({"Days": [12.0, -3.0], "Subject": ["308", "309"]})
    fit2 = wb.fit("Reaction ~ scale(Days) + (1 | Subject)", d)
    plain = wb.fit("Reaction ~ Days + (1 | Subject)", d)
    np.testing.assert_allclose(fit2.predict(new), plain.predict(new), rtol=1e-8)
    # a value outside the fit's range extrapolates the fitted polynomial
    new = pd.DataFrame({"Days": [12.0]})
    lin = wb.fit("Reaction ~ Days + I(Days^2) + (1 | Subject)", d)
    np.testing.assert_allclose(fit.predict(new, re_form="~0"), lin.predict(new, re_form="~0"),
                               rtol=1e-8)


def test_confint_profile_is_labelled_ml_deviance():
    fit = wb.fit("Yield ~ 1 + (1 | Batch)", wb.datasets.load("Dyestuff"))
    ci = fit.confint("profile", parameters=["sigma"])
    assert list(ci["parameter"]) == ["sigma"]
    assert ci["likelihood"].iloc[0] == "ML" and "ML deviance" in ci.attrs["note"]
    with pytest.raises(WorkbenchError, match="method must be one of"):
        fit.confint("nope")


# ---------------------------------------------------------------------------- anova
@pytest.mark.parametrize("model", MODELS + ["oats_interaction_sum"])
@pytest.mark.parametrize("ddf,key", [("Satterthwaite", "anova_satterthwaite"),
                                     ("Kenward-Roger", "anova_kenward_roger")])
def test_anova_matches_lmertest_and_pbkrtest(model, ddf, key):
    ref = _ref()[model][key]
    table = ref_fit(model).anova(ddf)
    assert table.attrs["ddf"] == ddf
    assert list(table["term"]) == list(np.atleast_1d(ref["term"]))
    np.testing.assert_array_equal(table["NumDF"], np.atleast_1d(ref["NumDF"]))
    np.testing.assert_allclose(table["DenDF"], np.atleast_1d(ref["DenDF"]), rtol=1e-4)
    np.testing.assert_allclose(table["F"], np.atleast_1d(ref["F"]), rtol=1e-5)
    np.testing.assert_allclose(table["p"], np.atleast_1d(ref["p"]), rtol=1e-3)


@pytest.mark.parametrize("model", MODELS)
def test_kenward_roger_adjusted_vcov_matches_pbkrtest(model):
    from workbench.anova import vcov_kenward_roger

    ref = np.array(_ref()[model]["vcov_kr"])
    PhiA = vcov_kenward_roger(ref_fit(model))[0]
    np.testing.assert_allclose(PhiA, ref, rtol=0, atol=5e-5 * np.abs(ref).max())


def test_anova_errors():
    fit = ref_fit("sleepstudy")
    with pytest.raises(WorkbenchError, match="ddf must be"):
        fit.anova("Wald")
    ml = wb.fit("Reaction ~ Days + (Days | Subject)", wb.datasets.load("sleepstudy"), method="ml")
    with pytest.raises(WorkbenchError, match="REML fit"):
        ml.anova("Kenward-Roger")
    assert ml.anova().shape[0] == 1


# ---------------------------------------------------------------------------- display
def test_repr_is_short_and_html_is_valid():
    from html.parser import HTMLParser

    fit = ref_fit("sleepstudy")
    text = repr(fit)
    assert len(text) < 200 and "Reaction ~ Days" in text and "n=180" in text
    page = fit._repr_html_()
    assert len(page) < 20_000

    class Check(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack = []

        def handle_starttag(self, tag, attrs):
            if tag != "br":
                self.stack.append(tag)

        def handle_endtag(self, tag):
            assert self.stack.pop() == tag

    for doc in (page, wb.compare(fit, ref_fit("sleepstudy"))._repr_html_()):
        c = Check()
        c.feed(doc)
        assert c.stack == []
    assert "Days" in page and "Subject" in page and "Wald" in page


# ---------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("case", ["reml", "ml", "no_random", "weights_offset_contrasts"])
def test_save_load_round_trip(case, tmp_path):
    d = wb.datasets.load("sleepstudy")
    if case == "reml":
        fit = ref_fit("sleepstudy")
    elif case == "ml":
        fit = wb.fit("Reaction ~ Days + (Days | Subject)", d, method="ml", label="ML fit")
    elif case == "no_random":
        fit = wb.fit("Reaction ~ Days", d)
    else:
        oats = ref_data("oats.csv").assign(w=lambda f: 1 + f["nitro"], o=lambda f: f["nitro"] / 3)
        fit = wb.fit("yield ~ factor(nitro) * Variety + offset(2 * o) + (1 | Block/Variety)", oats,
                     weights="w", contrasts={"Variety": "sum"})
    path = tmp_path / "fit.json"
    fit.save(path)
    back = wb.load(path)
    assert back.to_dict() == fit.to_dict()
    assert back.label == fit.label and repr(back) == repr(fit) and str(back) == str(fit)
    np.testing.assert_array_equal(back.predict(), fit.predict())
    np.testing.assert_array_equal(back.vcov().to_numpy(), fit.vcov().to_numpy())
    if fit.design.terms:
        pd.testing.assert_frame_equal(back.anova(), fit.anova())
    pd.testing.assert_frame_equal(wb.compare(back, fit).parameters.iloc[:, 2:].head(3),
                                  wb.compare(fit, fit).parameters.iloc[:, 2:].head(3))


def test_load_refuses_data_that_are_not_the_fits(tmp_path):
    fit = ref_fit("sleepstudy")
    path = tmp_path / "fit.json"
    fit.save(path)
    d = wb.datasets.load("sleepstudy")
    d.assign(Reaction=d["Reaction"] + 1.0).to_parquet(tmp_path / "fit.data.parquet", index=False)
    with pytest.raises(DataError, match="do not reproduce the saved fit"):
        wb.load(path)
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(DataError, match="not a fit saved by workbench"):
        wb.load(tmp_path / "other.json")
    with pytest.raises(DataError, match="cannot read"):
        wb.load(tmp_path / "missing.json")


def test_predict_matches_levels_by_label_and_offset_column():
    d = wb.datasets.load("sleepstudy")
    d_int = d.assign(Subject=d["Subject"].astype(int).astype("category"))
    fit, fit_int = ref_fit("sleepstudy"), wb.fit("Reaction ~ Days + (Days | Subject)", d_int)
    nd = pd.DataFrame({"Days": [2.0, 4.0], "Subject": [309, 372]})
    np.testing.assert_allclose(fit_int.predict(nd), fit.predict(nd.astype({"Subject": str})),
                               rtol=1e-10)
    # offset= column and offset() in the formula predict alike
    od = offset_data()
    a = wb.fit("Reaction ~ Days + (1 | Subject)", od, offset="exposure")
    b = wb.fit("Reaction ~ Days + offset(exposure) + (1 | Subject)", od)
    new = pd.DataFrame({"Days": [1.0, 3.0], "Subject": ["308", "new"], "exposure": [5.0, 7.0]})
    np.testing.assert_allclose(a.predict(new, allow_new_levels=True),
                               b.predict(new, allow_new_levels=True), rtol=1e-10)
    with pytest.raises(DataError, match="'exposure'"):
        a.predict(new.drop(columns="exposure"))


def test_confint_bootstrap_is_labelled():
    fit = wb.fit("Yield ~ 1 + (1 | Batch)", wb.datasets.load("Dyestuff"))
    ci = fit.confint("bootstrap", n=20, seed=3, workers=1)
    assert set(ci["interval"]) == {"bootstrap"} and set(ci["likelihood"]) == {"REML"}
    assert list(ci["parameter"]) == ["beta[(Intercept)]", "sd[Batch:(Intercept)]", "sigma"]
    assert (ci["lower"] < ci["estimate"]).all() and (ci["estimate"] < ci["upper"]).all()
    again = fit.confint("bootstrap", n=20, seed=3, workers=1)
    pd.testing.assert_frame_equal(ci, again)
