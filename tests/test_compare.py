"""workbench.compare: tidy tables, the shrinkage identity, exports."""

import math

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.compare import (Comparison, compare, format_latex, format_markdown,
                               group_effects, shrinkage_factor)
from workbench.errors import WorkbenchError
from workbench.record import Fit

from workbench import datasets


@pytest.fixture(scope="module")
def radon():
    return datasets.load("radon")


@pytest.fixture(scope="module")
def radon_fits(radon):
    f = "log_radon ~ floor + (1 | county)"
    return workbench.fit(f, radon), workbench.fit(f, radon, method="ml")


def fake_bayes(reml: Fit) -> Fit:
    """A hand-made Bayesian record shaped as the Bayesian fitter's (credible intervals)."""
    ranef = [dict(r, value=r["value"] * 0.9, cond_sd=r["cond_sd"] * 1.1,
                  lower=r["value"] - 0.5, upper=r["value"] + 0.5) for r in reml.ranef]
    varcorr = [dict(r, sdcor_ci=[r["sdcor"] * 0.8, r["sdcor"] * 1.2]) for r in reml.varcorr]
    return Fit(method="bayes", formula=reml.formula, nobs=reml.nobs, ngroups=reml.ngroups,
               criterion=None, loglik=None, beta=dict(reml.beta), beta_se=dict(reml.beta_se),
               beta_ci={k: [v - 1, v + 1] for k, v in reml.beta.items()}, sigma=reml.sigma,
               varcorr=varcorr, ranef=ranef, converged=True, singular=False,
               interval="credible", design=reml.design)


def test_parameters_table_stacks_methods(radon_fits):
    reml, ml = radon_fits
    c = compare(reml, ml)
    assert isinstance(c, Comparison)
    p = c.parameters
    assert list(p.columns) == ["parameter", "method", "estimate", "se", "lower", "upper",
                               "interval", "likelihood"]
    assert c.methods == ["reml", "ml"]
    assert len(p) == len(reml.params()) + len(ml.params())
    # parameter-major order: both methods of a parameter sit together
    assert list(p["parameter"][:2]) == ["beta[(Intercept)]", "beta[(Intercept)]"]
    row = p[(p.parameter == "beta[floor]") & (p.method == "ml")].iloc[0]
    assert row.estimate == ml.beta["floor"]
    assert row.interval == "wald"
    assert (row.lower, row.upper) == tuple(ml.beta_ci["floor"])
    # variance components without an interval are not labelled Wald
    sd = p[(p.parameter == "sd[county:(Intercept)]") & (p.method == "reml")].iloc[0]
    assert sd.interval == "none" and math.isnan(sd.lower)


def test_variance_components_table(radon_fits):
    reml, ml = radon_fits
    vc = compare(reml, ml).variance_components
    assert set(vc["parameter"]) == {"sd[county:(Intercept)]", "sigma"}
    s = vc[(vc.parameter == "sigma") & (vc.method == "reml")].iloc[0]
    assert s.variance == pytest.approx(reml.sigma**2, rel=1e-12)


def test_shrinkage_identity_and_closed_form(radon, radon_fits):
    """For a random intercept, BLUP_j = k_j * mean_j(y - X beta), k_j = n_j sa^2/(n_j sa^2+s^2)."""
    reml, _ = radon_fits
    ge = group_effects(reml)
    sa = reml.varcorr[0]["sdcor"]
    resid = radon["log_radon"] - reml.beta["(Intercept)"] - reml.beta["floor"] * radon["floor"]
    by = resid.groupby(radon["county"].astype(str))
    ge = ge.set_index("level")
    np.testing.assert_allclose(ge["raw"], by.mean().reindex(ge.index), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(ge["n"], by.size().reindex(ge.index))
    k = shrinkage_factor(ge["n"].to_numpy(), sa, reml.sigma)
    np.testing.assert_allclose(ge["shrinkage"], k, rtol=1e-12)
    np.testing.assert_allclose(ge["estimate"], k * ge["raw"], rtol=1e-7, atol=1e-10)
    assert (ge["interval"] == "conditional").all()
    np.testing.assert_allclose(ge["upper"] - ge["lower"], 2 * 1.959964 * ge["sd"], rtol=1e-6)


def test_shrinkage_known_sd():
    """Eight schools form: k_j = tau^2 / (tau^2 + s_j^2)."""
    d = datasets.load("eight_schools")
    f = workbench.fit("y ~ 1 + (1 | school)", d, known_sd="sigma")
    # pin tau away from the boundary by rebuilding at a chosen theta
    from workbench.reml.fit import assemble_fit

    g = assemble_fit(f.state.system, np.array([6.0]))
    ge = group_effects(g)
    np.testing.assert_allclose(ge["shrinkage"], 36.0 / (36.0 + d["sigma"].to_numpy() ** 2))
    np.testing.assert_allclose(ge["estimate"], ge["shrinkage"] * ge["raw"], atol=1e-9)


def test_slopes_have_raw_but_no_scalar_shrinkage():
    d = datasets.load("sleepstudy")
    f = workbench.fit("Reaction ~ Days + (1 + Days | Subject)", d)
    ge = group_effects(f)
    assert set(ge["term"]) == {"(Intercept)", "Days"}
    assert ge["raw"].notna().all() and ge["shrinkage"].isna().all()
    # raw slope of a subject = OLS slope of its residuals on Days
    sub = d[d.Subject.astype(str) == ge.level.iloc[0]]
    r = sub.Reaction - f.beta["(Intercept)"] - f.beta["Days"] * sub.Days
    slope = np.polyfit(sub.Days, r, 1)[0]
    got = ge[(ge.term == "Days") & (ge.level == ge.level.iloc[0])]["raw"].iloc[0]
    assert got == pytest.approx(slope, rel=1e-9)


def test_bayes_rows_keep_credible_intervals(radon_fits):
    reml, ml = radon_fits
    b = fake_bayes(reml)
    c = compare(reml, b, fake_bayes(reml))
    assert c.methods == ["reml", "bayes", "bayes#2"]
    ge = c.group_effects
    gb = ge[ge.method == "bayes"]
    assert (gb["interval"] == "credible").all()
    np.testing.assert_allclose(gb["upper"] - gb["lower"], 1.0)
    p = c.parameters
    assert set(p[p.method == "bayes"]["interval"]) == {"credible"}
    wide = c.side_by_side()
    assert list(wide.columns) == ["parameter", "reml", "bayes", "bayes#2"]
    assert "[" in wide.loc[wide.parameter == "beta[floor]", "bayes"].iloc[0]


def test_interval_table_joins(radon_fits):
    reml, _ = radon_fits
    extra = pd.DataFrame({"parameter": ["beta[floor]"], "method": ["reml"], "estimate": [-0.66],
                          "lower": [-0.8], "upper": [-0.5], "interval": ["profile"]})
    p = compare(reml, extra).parameters
    rows = p[p.parameter == "beta[floor]"]
    assert list(rows["interval"]) == ["wald", "profile"]


def test_bad_input(radon_fits):
    with pytest.raises(WorkbenchError):
        compare()
    with pytest.raises(WorkbenchError, match="Fit objects"):
        compare("not a fit")
    with pytest.raises(WorkbenchError, match="lacks"):
        compare(pd.DataFrame({"parameter": ["x"]}))
    with pytest.raises(WorkbenchError, match="unknown table"):
        compare(radon_fits[0]).to_markdown("nope")


def test_exports(tmp_path, radon_fits):
    c = compare(*radon_fits)
    files = c.write(tmp_path / "out")
    names = {f.name for f in files}
    for t in ("parameters", "group_effects", "variance_components", "side_by_side"):
        assert {f"{t}.csv", f"{t}.md", f"{t}.tex"} <= names
    back = pd.read_csv(tmp_path / "out" / "parameters.csv")
    np.testing.assert_allclose(back["estimate"], c.parameters["estimate"])
    assert not list((tmp_path / "out").glob(".*tmp"))  # no temp files left
    md = (tmp_path / "out" / "parameters.md").read_text().splitlines()
    assert md[0].startswith("| parameter") and set(md[1]) <= set("|-: ")
    assert len(md) == len(c.parameters) + 2
    tex = (tmp_path / "out" / "variance_components.tex").read_text()
    assert "\\toprule" in tex and "sd[county:(Intercept)]" in tex


def test_formatters_escape():
    df = pd.DataFrame({"name": ["a_b|c", "100%"], "x": [1.23456, float("nan")]})
    md = format_markdown(df, 3)
    assert "a_b\\|c" in md and "1.235" in md
    tex = format_latex(df, 3)
    assert "a\\_b|c" in tex and "100\\%" in tex
    assert tex.splitlines()[0] == "\\begin{tabular}{lr}"


def test_compare_and_write(tmp_path, radon, monkeypatch):
    """Fits every way, writes tables and figures; a failing fit leaves nothing on disk."""
    import matplotlib

    matplotlib.use("Agg")
    import workbench.api
    from workbench.jobs import compare_and_write

    real_fit = workbench.api.fit
    seen = {}

    def fake(formula, data, method="reml", **options):
        if method != "bayes":
            return real_fit(formula, data, method=method, known_sd=options.get("known_sd"))
        seen.update(options)
        return fake_bayes(real_fit(formula, data, method="reml"))

    monkeypatch.setattr(workbench.api, "fit", fake)
    small = radon[radon.county <= 12]
    res = compare_and_write("log_radon ~ floor + (1 | county)", small, tmp_path / "c",
                            priors={"sd": "HalfCauchy(1)"}, seed=7, draws=50)
    assert seen["priors"] == {"sd": "HalfCauchy(1)"} and seen["seed"] == 7 and seen["draws"] == 50
    assert set(res["side_by_side"].columns) == {"parameter", "reml", "ml", "bayes"}
    names = {p.name for p in res["files"]}
    assert {"parameters.csv", "group_effects.tex", "fig1_shrinkage.png",
            "fig4_variance_components.pdf"} <= names

    def broken(formula, data, method="reml", **options):
        if method == "bayes":
            raise WorkbenchError("sampler failed")
        return real_fit(formula, data, method=method)

    monkeypatch.setattr(workbench.api, "fit", broken)
    with pytest.raises(WorkbenchError):
        compare_and_write("log_radon ~ floor + (1 | county)", small, tmp_path / "d")
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_compare_real_bayes_near_reml(radon):
    """Well-identified data: posterior means sit within a fraction of an SE of REML."""
    reml = workbench.fit("log_radon ~ floor + (1 | county)", radon)
    bayes = workbench.fit("log_radon ~ floor + (1 | county)", radon, method="bayes", draws=500,
                          tune=500, chains=2, seed=1, progressbar=False)
    c = compare(reml, bayes)
    p = c.parameters.pivot(index="parameter", columns="method", values="estimate")
    for k, se in reml.beta_se.items():
        assert abs(p.loc[f"beta[{k}]", "bayes"] - p.loc[f"beta[{k}]", "reml"]) < 0.3 * se
    ge = c.group_effects
    gb = ge[ge.method == "bayes"]
    assert (gb["interval"] == "credible").all() and gb["lower"].lt(gb["upper"]).all()


def test_side_by_side_keeps_each_interval_kind(radon_fits):
    reml, _ = radon_fits
    prof = pd.DataFrame({"parameter": ["beta[floor]", "sd[county:(Intercept)]"],
                         "method": ["reml", "reml"], "estimate": [-0.66, 0.31],
                         "lower": [-0.8, 0.2], "upper": [-0.5, 0.4],
                         "interval": ["profile", "profile"]})
    wide = compare(reml, prof).side_by_side(digits=2).set_index("parameter")
    assert list(wide.columns) == ["reml", "reml (profile)"]
    assert wide.loc["beta[floor]", "reml"].startswith("-0.66 [-0.80")  # Wald kept
    assert wide.loc["beta[floor]", "reml (profile)"] == "-0.66 [-0.80, -0.50]"
    assert wide.loc["sd[county:(Intercept)]", "reml (profile)"] == "0.31 [0.20, 0.40]"
    assert wide.loc["sd[county:(Intercept)]", "reml"] == "0.32"  # the estimate, no interval


def test_intervals_are_labelled_by_kind_and_likelihood(radon_fits):
    """A REML fit's profile intervals are on the ML deviance (lme4): the tables and the notes
    say so, so identical REML and ML profile columns are explained."""
    from workbench.reml.profile import with_profile_ci

    reml, ml = radon_fits
    c = compare(with_profile_ci(reml), ml)
    p = c.parameters
    lik = dict(zip(zip(p["method"], p["interval"]), p["likelihood"]))
    assert lik[("reml", "profile")].startswith("ML deviance") and "lme4" in lik[("reml", "profile")]
    assert lik[("ml", "wald")] == "ML"
    notes = c.interval_notes()
    assert notes[0].startswith("reml: profile-likelihood 95% intervals on the ML deviance")
    assert notes[1] == "ml: Wald 95% intervals, ML standard errors"
    assert "on the ML deviance" in str(c) and "on the ML deviance" in c.to_markdown("side_by_side")
    assert "on the ML deviance" in str(with_profile_ci(reml))
    assert "Wald 95% intervals, REML standard errors" in str(reml)


def test_compare_and_write_profile_intervals(tmp_path, radon, monkeypatch):
    """``ci="profile"``: REML and ML columns carry profile intervals (the same ones: both on the
    ML deviance) and the notes say so; an unknown kind is one plain error."""
    import workbench.api
    from workbench.jobs import compare_and_write
    from workbench.reml.profile import profile_ci

    real_fit = workbench.api.fit

    def fake(formula, data, method="reml", **options):
        if method != "bayes":
            return real_fit(formula, data, method=method)
        return fake_bayes(real_fit(formula, data, method="reml"))

    monkeypatch.setattr(workbench.api, "fit", fake)
    small = radon[radon.county <= 12]
    res = compare_and_write("log_radon ~ floor + (1 | county)", small, tmp_path / "c",
                            figures=False, ci="profile")
    p = res["parameters"].set_index(["parameter", "method"])
    want = profile_ci(res["fits"]["reml"]).set_index("parameter")
    for par in ("beta[floor]", "sd[county:(Intercept)]"):
        for m in ("reml", "ml"):
            assert p.loc[(par, m), "interval"] == "profile"
            assert p.loc[(par, m), "lower"] == pytest.approx(want.loc[par, "lower"], rel=1e-6)
    assert any(n.startswith("reml: profile") and "ML deviance" in n for n in res["notes"])
    assert "ML deviance" in (tmp_path / "c" / "side_by_side.md").read_text()
    with pytest.raises(WorkbenchError, match="unknown interval kind"):
        compare_and_write("log_radon ~ floor + (1 | county)", small, tmp_path / "d", ci="hpd")
    assert not (tmp_path / "d").exists()
