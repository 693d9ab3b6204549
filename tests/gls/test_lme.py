"""Random effects with a residual correlation structure (workbench.gls.lme): the equivalence
with the plain REML/ML fit when the structure's parameter is held at 0, the whitening, the
errors, the verbs that do not handle the structure yet, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.cli import main
from workbench.design import build_design
from workbench.errors import DataError, NotYetSupportedError
from workbench.formula import parse_formula
from workbench.gls.corstruct import CorrelationSpec, correlation_rows, parse_correlation
from workbench.gls.lme import LmeProblem, whitened_design
from workbench.gls.residual import STRUCTURES

REF_DIR = Path(__file__).resolve().parents[1] / "reference" / "gls"
OVARY = "follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time) + (1 + sin(2 * pi * Time) | Mare)"


def rel(a, b):
    return abs(a - b) / abs(b)


@pytest.fixture(scope="module")
def ovary():
    return pd.read_csv(REF_DIR / "ovary.csv", dtype={"Mare": str})


@pytest.fixture(scope="module")
def orthodont():
    return pd.read_csv(REF_DIR / "orthodont.csv")


def problem(formula, data, correlation, reml=True):
    spec, corr = parse_formula(formula), parse_correlation(correlation)
    data, codes, pos = correlation_rows(spec, data, corr)
    wh = STRUCTURES[corr.kind](codes, pos)
    return LmeProblem(build_design(spec, data), wh, reml), wh


@pytest.mark.parametrize("correlation", ["ar1(~ 1 | Mare)", "cs(~ 1 | Mare)"])
@pytest.mark.parametrize("reml", [True, False])
def test_parameter_held_at_zero_is_the_plain_fit(ovary, correlation, reml):
    prob, wh = problem(OVARY, ovary, correlation, reml)
    plain = workbench.fit(OVARY, ovary, method="reml" if reml else "ml")
    u0 = wh.unconstrained(np.array([0.0]))
    theta = plain.reml_state("tests").theta
    assert rel(prob.joint(theta, u0), plain.criterion) < 1e-12
    assert rel(prob.profiled(u0), plain.criterion) < 1e-9


def test_whitening_keeps_levels_and_decorrelates(ovary):
    prob, wh = problem(OVARY, ovary, "ar1(~ 1 | Mare)")
    u = wh.unconstrained(np.array([0.6]))
    white, logdet = whitened_design(prob.design, wh, u)
    d = prob.design
    assert white.n == d.n and white.fixed_names == d.fixed_names
    np.testing.assert_array_equal(white.terms[0].codes, d.terms[0].codes)
    rows = wh.blocks[0]
    L = np.linalg.cholesky(wh.block(rows, u))
    np.testing.assert_allclose(L @ white.y[rows], d.y[rows], rtol=1e-12)
    np.testing.assert_allclose(L @ white.terms[0].Z[rows], d.terms[0].Z[rows], atol=1e-12)
    expect = sum(np.linalg.slogdet(wh.block(r, u))[1] for r in wh.blocks)
    assert rel(logdet, expect) < 1e-12


def test_row_order_does_not_matter(ovary):
    d = ovary.assign(pos=ovary.groupby("Mare").cumcount() + 1)
    a = workbench.fit(OVARY, d, correlation="ar1(~ pos | Mare)")
    b = workbench.fit(OVARY, d.sample(frac=1.0, random_state=3), correlation="ar1(~ pos | Mare)")
    assert rel(a.criterion, b.criterion) < 1e-9
    assert rel(a.diagnostics["corstruct"]["Phi"], b.diagnostics["corstruct"]["Phi"]) < 1e-5


def test_ml_and_reml_records(ovary):
    fit = workbench.fit(OVARY, ovary, method="ml", correlation="ar1(~ 1 | Mare)")
    assert fit.method == "ml" and fit.converged
    cs = fit.diagnostics["corstruct"]
    assert cs["groups"] == 11 and cs["interval"][0] < cs["Phi"] < cs["interval"][1]
    assert [r["grp"] for r in fit.varcorr] == ["Mare", "Mare", "Mare", "Residual"]
    assert fit.diagnostics["optimizer"]["outer"]["success"]
    assert len(fit.ranef) == 2 * 11
    assert fit.vcov().shape == (3, 3)
    assert "Correlation structure: ar1(~ 1 | Mare), Phi =" in fit.summary()
    # the structure's parameter is counted in AIC (nlme's df: 3 + 3 + Phi + sigma)
    assert f"{fit.criterion + 2 * 8:.1f}" in fit.summary()


def test_correlation_groups_must_nest_in_the_random_effects(orthodont):
    with pytest.raises(DataError, match="not nested in the random-effects grouping 'Subject'"):
        workbench.fit("distance ~ age + (1 | Subject)", orthodont, correlation="cs(~ 1 | Sex)")


def test_random_intercept_on_the_cs_groups_is_refused(orthodont):
    for formula in ("distance ~ age + (1 | Subject)", "distance ~ age + (age | Subject)"):
        with pytest.raises(DataError, match="Rho of cs\\(~ 1 \\| Subject\\) is not identifiable"):
            workbench.fit(formula, orthodont, correlation="cs(~ 1 | Subject)")


def test_nested_outer_grouping_is_fitted(orthodont):
    fit = workbench.fit("distance ~ age + (1 | Sex)", orthodont, correlation="ar1(~ 1 | Subject)")
    assert fit.converged and fit.ngroups == {"Sex": 2}


def test_verbs_without_the_structure_refuse_plainly(ovary):
    fit = workbench.fit(OVARY, ovary, correlation="ar1(~ 1 | Mare)")
    # what the structure does not change: conditional fitted values X beta + Z b
    assert np.allclose(fit.residuals(), fit.design.y - fit.predict())
    for call in (lambda: fit.confint("profile"), lambda: fit.confint("bootstrap", n=2),
                 lambda: fit.anova(), lambda: fit.anova("Kenward-Roger"),
                 lambda: workbench.lrt(fit, fit), lambda: fit.save("unused.json")):
        with pytest.raises(NotYetSupportedError, match="residual structure"):
            call()


def run(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return (0 if info.value.code is None else info.value.code), out, err


def test_cli_fit_with_correlation_and_random_effects(capsys, ovary):
    ref = json.loads((REF_DIR / "lme_reference.json").read_text())["cases"]["ovary_ar1"]
    code, out, err = run(capsys, "fit", ref["formula"], "--data", REF_DIR / "ovary.csv",
                         "--correlation", ref["correlation"], "--method", "ml", "--json", "-")
    assert code == 0, err
    rec = json.loads(out)
    assert abs(rec["loglik"] - ref["fits"]["ML"]["logLik"]) < 1e-6
    assert rel(rec["diagnostics"]["corstruct"]["Phi"], ref["fits"]["ML"]["param"]) < 1e-5
    code, out, err = run(capsys, "fit", ref["formula"], "--data", REF_DIR / "ovary.csv",
                         "--correlation", ref["correlation"], "--ci", "profile")
    assert code != 0 and err.startswith("error: profiles") and "Traceback" not in err


def dense_criterion(fit, wh, reml):
    """-2 log L from the dense n x n V = Z G Z' + sigma^2 R at the fit's estimates (one
    grouping factor), independent of the whitening and the engine."""
    from workbench.structure import build_structure

    st = build_structure(fit.design)
    (blk,) = st.blocks
    Z = st.stacked_Z().toarray()
    q = blk.q
    Gq = np.zeros((q, q))
    for r in fit.varcorr:
        if r["grp"] == "Residual":
            continue
        i = blk.columns.index(r["var1"])
        j = i if r["var2"] is None else blk.columns.index(r["var2"])
        Gq[i, j] = Gq[j, i] = r["vcov"]
    G = np.kron(np.eye(blk.nlevels), Gq)
    n = fit.nobs
    R = np.zeros((n, n))
    u = wh.unconstrained(np.array([fit.diagnostics["corstruct"][n_] for n_ in wh.names]))
    for rows in wh.blocks:
        R[np.ix_(rows, rows)] = wh.block(rows, u)
    V = Z @ G @ Z.T + fit.sigma**2 * R
    X, y = fit.design.X, fit.design.y
    beta = np.array([fit.beta[k] for k in fit.design.fixed_names])
    r = y - X @ beta
    val = n * np.log(2 * np.pi) + np.linalg.slogdet(V)[1] + r @ np.linalg.solve(V, r)
    if reml:
        p = X.shape[1]
        val += np.linalg.slogdet(X.T @ np.linalg.solve(V, X))[1] - p * np.log(2 * np.pi)
    return val


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_criterion_equals_the_dense_marginal_likelihood(ovary, method):
    fit = workbench.fit(OVARY, ovary, method=method, correlation="ar1(~ 1 | Mare)")
    _, wh = problem(OVARY, ovary, "ar1(~ 1 | Mare)")
    assert rel(dense_criterion(fit, wh, method == "reml"), fit.criterion) < 1e-9


class TwoStrataAR1(STRUCTURES["ar1"]):
    """A two-parameter structure written against the interface only: AR(1) with Phi1 in the
    groups of even code and Phi2 in the others."""

    names = ("Phi1", "Phi2")

    def start(self):
        return np.zeros(2)

    def natural(self, u):
        return np.tanh(np.asarray(u, dtype=float) / 2.0)

    def unconstrained(self, natural):
        p = np.asarray(natural, dtype=float)
        return np.log((1 + p) / (1 - p))

    def pattern(self, rows):
        return (int(self.codes[rows[0]] % 2),) + super().pattern(rows)

    def block(self, rows, u):
        k = int(self.codes[rows[0]] % 2)
        return super().block(rows, np.array([np.asarray(u, dtype=float)[k]]))


def test_a_two_parameter_structure_fits_through_the_interface(ovary):
    from workbench.gls.lme import fit_lme

    spec, corr = parse_formula(OVARY), parse_correlation("ar1(~ 1 | Mare)")
    data, codes, pos = correlation_rows(spec, ovary, corr)
    design = build_design(spec, data)
    wh = TwoStrataAR1(codes, pos)
    fit = fit_lme(design, wh, CorrelationSpec("ar1x2", None, "Mare"), reml=True)
    one = workbench.fit(OVARY, ovary, correlation="ar1(~ 1 | Mare)")
    assert fit.converged
    cs = fit.diagnostics["corstruct"]
    assert set(cs["intervals"]) == {"Phi1", "Phi2"} and "interval" not in cs
    for k in ("Phi1", "Phi2"):
        lo, hi = cs["intervals"][k]
        assert lo < cs[k] < hi
    # nested models: the two-parameter optimum is at least as good, and equal parameters give
    # the one-parameter criterion
    assert fit.criterion <= one.criterion + 1e-9
    prob = LmeProblem(design, wh, True)
    u1 = float(np.log((1 + one.diagnostics["corstruct"]["Phi"])
                      / (1 - one.diagnostics["corstruct"]["Phi"])))
    assert rel(prob.joint(one.state.theta, np.array([u1, u1])), one.criterion) < 1e-12
    assert rel(dense_criterion(fit, wh, True), fit.criterion) < 1e-9
    assert f"Phi2 = {cs['Phi2']:.4g}" in fit.summary()


def test_missing_rows_are_dropped_consistently(ovary):
    d = ovary.copy()
    d.loc[[5, 40], "follicles"] = np.nan
    with pytest.warns(UserWarning, match="2 rows with missing values dropped"):
        a = workbench.fit(OVARY, d, correlation="ar1(~ 1 | Mare)")
    b = workbench.fit(OVARY, d.dropna().reset_index(drop=True), correlation="ar1(~ 1 | Mare)")
    assert a.nobs == b.nobs == len(d) - 2
    assert rel(a.criterion, b.criterion) < 1e-10


def test_weights_with_a_correlation_are_refused(ovary):
    d = ovary.assign(w=1.0)
    with pytest.raises(NotYetSupportedError, match="prior weights or known sds"):
        workbench.fit(OVARY, d, weights="w", correlation="ar1(~ 1 | Mare)")
