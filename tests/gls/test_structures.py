"""nlme::gls with the residual structures beyond cs/ar1 (symm, car1; ident, power; a correlation
with a variance function) against nlme 3.1-162 (values by tests/reference/gls/make_reference.R,
gls_structures.json), and symm's equivalence with the unstructured random-effects model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.errors import DataError, FormulaError, NotYetSupportedError, OptionError
from workbench.gls.residual import STRUCTURES
from workbench.gls.variance import VARIANCES, Combined

REF_DIR = Path(__file__).resolve().parents[1] / "reference" / "gls"
REF = json.loads((REF_DIR / "gls_structures.json").read_text())
CASES = [(c, m) for c in REF["cases"] for m in ("REML", "ML")]


def rel(a, b):
    return abs(a - b) / abs(b)


def scale(kind, x):
    """nlme's scale for the Wald interval of a parameter of structure ``kind``."""
    x = np.asarray(x, dtype=float)
    if kind in ("symm", "ar1"):
        return np.log((1 + x) / (1 - x))
    if kind == "car1":
        return np.log(x / (1 - x))
    if kind == "ident":
        return np.log(x)
    return x  # power


def _close(got, ref, kind, tol):
    """Both bounds within tol of the reference interval's half-width, on nlme's scale."""
    g, r = scale(kind, got), scale(kind, ref)
    return bool(np.all(np.abs(g - r) <= tol * (r[1] - r[0]) / 2))


def assert_interval(got, ref, text):
    kind = text.split("(")[0]
    assert _close(got, ref, kind, 1e-3), (text, got, ref)


def fit_case(case, method):
    c = REF["cases"][case]
    d = pd.read_csv(REF_DIR / c["csv"], dtype={k: str for k in c["strings"]})
    return workbench.fit(c["formula"], d, method=method.lower(),
                         correlation=c.get("correlation") or None,
                         variance=c.get("variance") or None)


@pytest.mark.parametrize("case,method", CASES)
def test_structures_equal_nlme(case, method):
    ref = REF["cases"][case]["fits"][method]
    fit = fit_case(case, method)
    assert fit.converged
    assert abs(fit.loglik - ref["logLik"]) < 1e-6
    assert rel(fit.sigma, ref["sigma"]) < 1e-5
    for k, v in ref["beta"].items():
        assert rel(fit.beta[k], v) < 1e-5
        assert rel(fit.beta_se[k], ref["beta_se"][k]) < 1e-5
    for entry in ("corstruct", "varstruct"):
        if entry not in ref:
            assert entry not in fit.diagnostics
            continue
        got = fit.diagnostics[entry]
        # varPower's power is near 0 on BodyWeight (-0.007): compared on the absolute scale
        # of the sd ratio it implies over the data (|x|^power, x up to 64), 1e-5 there
        for k, v in ref[entry].items():
            if k == "power" and abs(v) < 0.05:
                assert abs(got[k] - v) < 1e-5 / np.log(64.0)
            else:
                assert rel(got[k], v) < 1e-5, (entry, k)
        # intervals: nlme's Wald formula with its Hessian at steps large enough to be stable
        # (glsControl(.relStep = 1e-4, minAbsParApVar = 1)); nlme's default steps are tested
        # below where they are stable
        kind = _kind(case, entry)
        for k, ci in ref[entry + "_ci_step"].items():
            assert_interval(got["intervals"][k], ci, kind)


def _kind(case, entry):
    return REF["cases"][case]["correlation" if entry == "corstruct" else "variance"]


def _default_steps_stable(case, ref, entry, k):
    kind = _kind(case, entry).split("(")[0]
    lo, hi = ref[entry + "_ci"][k]
    slo, shi = ref[entry + "_ci_step"][k]
    return _close((lo, hi), (slo, shi), kind, 1e-4)


@pytest.mark.parametrize("case,method", CASES)
def test_intervals_equal_nlme_default_where_stable(case, method):
    """nlme's default intervals() where they agree with its larger-step Hessian to 1e-4 (the
    others are nlme's rounding: a step of |u| * 6e-6 for u near zero)."""
    ref = REF["cases"][case]["fits"][method]
    fit = fit_case(case, method)
    for entry in ("corstruct", "varstruct"):
        for k in ref.get(entry + "_ci", {}):
            if _default_steps_stable(case, ref, entry, k):
                assert_interval(fit.diagnostics[entry]["intervals"][k], ref[entry + "_ci"][k],
                                _kind(case, entry))


def test_the_stability_split_is_not_empty():
    stable = unstable = 0
    for case, c in REF["cases"].items():
        for ref in c["fits"].values():
            for entry in ("corstruct", "varstruct"):
                for k in ref.get(entry + "_ci", {}):
                    if _default_steps_stable(case, ref, entry, k):
                        stable += 1
                    else:
                        unstable += 1
    assert stable >= 8 and unstable >= 8


def test_single_parameter_record_keeps_interval():
    fit = fit_case("bodyweight_car1", "REML")
    cs = fit.diagnostics["corstruct"]
    assert cs["structure"] == "car1" and cs["form"] == "car1(~ Time | Rat)"
    assert cs["interval"] == cs["intervals"]["Phi"]
    vs = fit_case("orthodont_ident", "REML").diagnostics["varstruct"]
    assert vs["reference"] == "8" and set(vs["intervals"]) == {"10", "12", "14"}


def _marginal_v(fit):
    """sigma^2 D^1/2 C D^1/2 of a symm(~ occ | Subject) + ident(~ 1 | age) fit on Orthodont."""
    cs, vs = fit.diagnostics["corstruct"], fit.diagnostics["varstruct"]
    sd = fit.sigma * np.array([1.0] + [vs[a] for a in ("10", "12", "14")])
    C = np.eye(4)
    for i in range(4):
        for j in range(i + 1, 4):
            C[i, j] = C[j, i] = cs[f"cor({i + 1},{j + 1})"]
    return sd[:, None] * C * sd[None, :]


def _re_v(fit):
    """G + sigma^2 I of a (0 + focc | Subject) fit (sigma^2 the known residual variance)."""
    G = np.zeros((4, 4))
    occ = {f"focc{k}": k - 1 for k in range(1, 5)}
    rows = [r for r in fit.varcorr if r["grp"] == "Subject"]
    for r in rows:
        if r["var2"] is None:
            G[occ[r["var1"]], occ[r["var1"]]] = r["vcov"]
    for r in rows:
        if r["var2"] is not None:
            i, j = occ[r["var1"]], occ[r["var2"]]
            G[i, j] = G[j, i] = r["sdcor"] * np.sqrt(G[i, i] * G[j, j])
    return G


def test_symm_ident_is_the_unstructured_random_effects_model():
    """Balanced Orthodont (4 ages per subject): symm + ident is the unstructured 4 x 4 marginal
    covariance V, the marginal model of (0 + focc | Subject) plus a residual.  That model has
    108 random effects for 108 observations and one parameter too many (only G + sigma^2 I is
    identified): the engine refuses it, as lme4 does by default (lme4 fits it when told to
    ignore the check, reaching the same REML criterion).  With the residual variance fixed at
    any c below V's smallest eigenvalue (known_sd) the engine reaches the gls criterion, fixed
    effects and SEs, with G = V - c I: every split fits equally well."""
    d = pd.read_csv(REF_DIR / "orthodont.csv").assign(focc=lambda x: x.occ.astype(str))
    gls = workbench.fit("distance ~ Sex * age", d, correlation="symm(~ occ | Subject)",
                        variance="ident(~ 1 | age)")
    lme4 = REF["unstructured_lme4"]
    assert lme4["refused"]
    assert abs(gls.criterion - lme4["REML"]) < 1e-6
    for k in gls.beta:
        assert rel(gls.beta[k], lme4["beta"][k]) < 1e-5
        assert rel(gls.beta_se[k], lme4["beta_se"][k]) < 1e-5
    with pytest.raises(DataError, match="108 random effects for 108 observations"):
        workbench.fit("distance ~ Sex * age + (0 + focc | Subject)", d)
    V = _marginal_v(gls)
    lmin = np.linalg.eigvalsh(V).min()
    for c in (0.25 * lmin, 0.75 * lmin):
        re = workbench.fit("distance ~ Sex * age + (0 + focc | Subject)",
                           d.assign(s=np.sqrt(c)), known_sd="s")
        assert re.converged
        assert abs(re.criterion - gls.criterion) < 1e-6
        for k in gls.beta:
            assert rel(re.beta[k], gls.beta[k]) < 1e-5
            assert rel(re.beta_se[k], gls.beta_se[k]) < 1e-5
        assert np.max(np.abs(_re_v(re) + c * np.eye(4) - V)) < 1e-4 * np.max(np.abs(V))


def test_structures_implement_the_interface():
    rng = np.random.default_rng(7)
    codes = np.repeat(np.arange(5), 4)
    pos = np.tile(np.arange(1, 5), 5)
    strata = np.tile(np.array(["a", "b", "c", "d"]), 5)
    x = rng.uniform(1, 3, 20)
    perm = rng.permutation(20)
    A = rng.normal(size=(20, 3))
    for wh in (STRUCTURES["symm"](codes[perm], pos[perm]),
               STRUCTURES["car1"](codes[perm], pos[perm] * 1.5),
               Combined(STRUCTURES["ar1"](codes[perm], pos[perm]),
                        VARIANCES["ident"](strata[perm]), 20),
               Combined(None, VARIANCES["power"](x[perm]), 20)):
        u = wh.start() + rng.normal(scale=0.3, size=wh.size)
        assert len(wh.names) == wh.size
        assert np.allclose(wh.unconstrained(wh.natural(u)), u)
        assert np.allclose(wh.to_interval(wh.from_interval(u)), u)
        W, logdet = wh.whiten(A[perm], u)
        # against the dense Lambda built from the blocks
        Lam = np.zeros((20, 20))
        for rows in wh.blocks:
            Lam[np.ix_(rows, rows)] = wh.block(rows, u)
        assert np.allclose(W.T @ W, A[perm].T @ np.linalg.solve(Lam, A[perm]))
        for rows in wh.blocks:  # rows sorted by position: L_g^-1 A_g
            assert np.allclose(np.linalg.cholesky(wh.block(rows, u)) @ W[rows], A[perm][rows])
        assert np.isclose(logdet, np.linalg.slogdet(Lam)[1])


def test_structure_errors_are_plain():
    d = pd.read_csv(REF_DIR / "orthodont.csv")
    f = "distance ~ age"
    with pytest.raises(FormulaError, match="cannot read variance"):
        workbench.fit(f, d, variance="ident(age)")
    with pytest.raises(NotYetSupportedError, match="'exp' is not implemented"):
        workbench.fit(f, d, variance="exp(~ age)")
    with pytest.raises(FormulaError, match="write ident as"):
        workbench.fit(f, d, variance="ident(~ age)")
    with pytest.raises(NotYetSupportedError, match="per stratum"):
        workbench.fit(f, d, variance="power(~ age | Sex)")
    with pytest.raises(DataError, match="variance column 'Age' is not in the data"):
        workbench.fit(f, d, variance="power(~ Age)")
    with pytest.raises(DataError, match="is zero in 27 rows"):
        workbench.fit(f, d.assign(z=d.occ - 1), variance="power(~ z)")
    with pytest.raises(DataError, match="must be numeric"):
        workbench.fit(f, d, variance="power(~ Sex)")
    with pytest.raises(FormulaError, match="car1 needs a time column"):
        workbench.fit(f, d, correlation="car1(~ 1 | Subject)")
    with pytest.raises(DataError, match="integer-valued"):
        workbench.fit(f, d.assign(t=d.age / 3), correlation="symm(~ t | Subject)")
    with pytest.raises(OptionError, match="needs method 'reml' or 'ml'"):
        workbench.fit(f, d, method="fgls", variance="ident(~ 1 | Sex)")
    with pytest.raises(DataError, match="not nested in the random-effects grouping"):
        workbench.fit(f + " + (1 | Subject)", d, correlation="cs(~ 1 | Sex)")


def test_a_parameter_at_its_boundary_is_not_converged():
    """car1 on independent rows spaced 3 apart: the likelihood rises towards Phi = 0, outside
    (0, 1); the fit says so instead of claiming an optimum."""
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"g": np.repeat(np.arange(30), 5), "t": np.tile(np.arange(5) * 3.0, 30),
                      "y": rng.normal(size=150)})
    with pytest.warns(UserWarning, match=r"boundary of the parameter space \(Phi = "):
        fit = workbench.fit("y ~ 1", d, correlation="car1(~ t | g)")
    assert not fit.converged
    assert fit.diagnostics["corstruct"]["Phi"] < 1e-4


def test_row_order_does_not_change_the_fit():
    """nlme's varIdent reference is the first stratum in the data sorted by group: a shuffle can
    change the reference, never the model."""
    d = pd.read_csv(REF_DIR / "bodyweight.csv", dtype={"Diet": str})
    f = "weight ~ Time * Diet"
    a = workbench.fit(f, d, correlation="car1(~ Time | Rat)", variance="ident(~ 1 | Diet)")
    s = d.sample(frac=1.0, random_state=3).assign(Diet=lambda x: x.Diet.map(
        {"1": "c", "2": "b", "3": "a"}), Rat=lambda x: "r" + x.Rat.astype(str))
    b = workbench.fit(f, s, correlation="car1(~ Time | Rat)", variance="ident(~ 1 | Diet)")
    assert abs(a.criterion - b.criterion) < 1e-8
    va, vb = a.diagnostics["varstruct"], b.diagnostics["varstruct"]
    # rat 1 (diet "1", now "c") comes first in either order; not the alphabetical first level
    assert va["reference"] == "1" and vb["reference"] == "c"
    # sd of each diet: sigma x its ratio
    sd_a = {k: a.sigma * (1.0 if k == "1" else va[k]) for k in ("1", "2", "3")}
    sd_b = {k: b.sigma * (1.0 if k == vb["reference"] else vb[k]) for k in ("a", "b", "c")}
    for old, new in (("1", "c"), ("2", "b"), ("3", "a")):
        assert rel(sd_b[new], sd_a[old]) < 1e-5
    assert rel(a.diagnostics["corstruct"]["Phi"], b.diagnostics["corstruct"]["Phi"]) < 1e-6
