"""workbench.summary.format_fit: the readable summary, checked against lme4's printed numbers."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

import workbench
from workbench.record import Fit
from workbench.summary import format_column, format_scaled, bayes_warnings, format_fit

@pytest.fixture(scope="module")
def sleep_reml(ref_data):
    return workbench.fit("Reaction ~ Days + (Days | Subject)", ref_data("sleepstudy"))


def _line(text: str, start: str) -> str:
    hits = [ln for ln in text.splitlines() if ln.lstrip().startswith(start)]
    assert hits, f"no line starting with {start!r} in\n{text}"
    return hits[0]


def _numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d+(?:e[-+]\d+)?|-?\d+(?![\d.])", line)]


def test_reml_summary_matches_lme4_print(sleep_reml, lme4_reference):
    ref = lme4_reference["sleepstudy"]["REML"]
    text = format_fit(sleep_reml)
    assert text.splitlines()[0] == "Linear mixed model fit by REML"
    assert "Formula: Reaction ~ Days + (Days | Subject)" in text
    crit = float(_line(text, "REML criterion at convergence:").split(":")[1])
    assert crit == pytest.approx(ref["deviance"], abs=1e-4)

    vc = {(r["grp"], r["var1"], r["var2"]): r for r in ref["varcorr"]}
    subj = _numbers(_line(text, "Subject  (Intercept)"))
    assert subj == pytest.approx([vc["Subject", "(Intercept)", None]["vcov"],
                                  vc["Subject", "(Intercept)", None]["sdcor"]], abs=0.01)
    days = _numbers(_line(text, "Days "))
    assert days[:2] == pytest.approx([vc["Subject", "Days", None]["vcov"],
                                      vc["Subject", "Days", None]["sdcor"]], abs=0.01)
    assert days[2] == pytest.approx(vc["Subject", "(Intercept)", "Days"]["sdcor"], abs=0.005)
    resid = _numbers(_line(text, "Residual"))
    assert resid == pytest.approx([ref["sigma"] ** 2, ref["sigma"]], abs=0.01)
    assert "Number of obs: 180, groups:  Subject, 18" in text

    # Fixed effects: estimate, se, t value, Wald interval (lme4 prints 251.405, 6.825, 36.838).
    b = ref["beta"]["(Intercept)"]
    se = ref["beta_se"]["(Intercept)"]
    row = _numbers(_line(text, "(Intercept)  "))
    assert row[:3] == pytest.approx([b, se, b / se], abs=1.5e-3)
    assert row[3:] == pytest.approx([b - 1.959964 * se, b + 1.959964 * se], abs=1.5e-3)
    assert "boundary (singular)" not in text


def test_reml_information_criteria(sleep_reml, lme4_reference):
    ref = lme4_reference["sleepstudy"]["REML"]
    text = format_fit(sleep_reml)
    header = _line(text, "AIC")
    values = _numbers(text.splitlines()[text.splitlines().index(header) + 1])
    k = 6  # 2 fixed effects, 3 covariance parameters, sigma
    assert values == pytest.approx([ref["deviance"] + 2 * k, ref["deviance"] + k * math.log(180),
                                    ref["logLik"], 180 - k], abs=0.06)


def test_ml_summary_prints_lme4s_aic_row(lme4_reference, ref_data):
    ref = lme4_reference["sleepstudy"]["ML"]
    fit = workbench.fit("Reaction ~ Days + (Days | Subject)", ref_data("sleepstudy"),
                        method="ml")
    text = format_fit(fit)
    assert text.splitlines()[0] == "Linear mixed model fit by maximum likelihood"
    lines = text.splitlines()
    i = lines.index(_line(text, "AIC"))
    assert lines[i].split() == ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    # lme4 prints: 1763.9 1783.1 -876.0 1751.9 174
    assert _numbers(lines[i + 1]) == pytest.approx([1763.9, 1783.1, -876.0, 1751.9, 174], abs=0.051)
    assert ref["deviance"] == pytest.approx(1751.9, abs=0.05)
    assert "REML criterion" not in text


def test_singular_fit_is_noted(lme4_reference, ref_data):
    assert lme4_reference["dyestuff2"]["REML"]["singular"]
    fit = workbench.fit("Yield ~ 1 + (1 | Batch)", ref_data("Dyestuff2"))
    text = format_fit(fit)
    assert "boundary (singular) fit" in text
    assert _numbers(_line(text, "Batch    (Intercept)")) == pytest.approx([0.0, 0.0], abs=1e-6)


def test_nested_groups_line_and_rows(ref_data):
    fit = workbench.fit("strength ~ 1 + (1 | batch/cask)", ref_data("Pastes"))
    text = format_fit(fit)
    assert "Number of obs: 60, groups:  cask:batch, 30; batch, 10" in text  # lme4's labels
    assert _line(text, "cask:batch").split()[:2] == ["cask:batch", "(Intercept)"]


def test_known_sd_summary_has_no_residual_row(ref_data):
    data = ref_data("eight_schools")
    fit = workbench.fit("y ~ 1 + (1 | school)", data, known_sd="sigma")
    text = format_fit(fit)
    assert "known standard deviations" in text
    assert not any(ln.lstrip().startswith("Residual ") for ln in text.splitlines())
    assert "Number of obs: 8, groups:  school, 8" in text


def test_nonconvergence_and_dropped_rows_are_reported(ref_data):
    import warnings

    data = ref_data("sleepstudy")
    data.loc[[3, 7], "Reaction"] = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = workbench.fit("Reaction ~ Days + (Days | Subject)", data)
    text = format_fit(dataclasses.replace(fit, converged=False))
    assert "Rows dropped for missing values: 2" in text
    assert "Number of obs: 178" in text
    assert "warning: the optimizer did not converge" in text


def test_fit_summary_method_uses_format_fit(sleep_reml):
    assert sleep_reml.summary() == format_fit(sleep_reml)


def _bayes_fit(diagnostics: dict) -> Fit:
    return Fit(
        method="bayes", formula="y ~ 1 + x + (1 + x | g)", nobs=150, ngroups={"g": 30},
        criterion=None, loglik=None,
        beta={"(Intercept)": 2.01, "x": 0.49}, beta_se={"(Intercept)": 0.151, "x": 0.062},
        beta_ci={"(Intercept)": [1.71, 2.30], "x": [0.37, 0.61]}, sigma=0.98,
        varcorr=[
            {"grp": "g", "var1": "(Intercept)", "var2": None, "vcov": 0.70, "sdcor": 0.81,
             "sdcor_ci": [0.58, 1.10], "sdcor_se": 0.13},
            {"grp": "g", "var1": "x", "var2": None, "vcov": 0.10, "sdcor": 0.29,
             "sdcor_ci": [0.10, 0.47], "sdcor_se": 0.09},
            {"grp": "g", "var1": "(Intercept)", "var2": "x", "vcov": 0.05, "sdcor": 0.21,
             "sdcor_ci": [-0.38, 0.71], "sdcor_se": 0.28},
            {"grp": "Residual", "var1": None, "var2": None, "vcov": 0.96, "sdcor": 0.98,
             "sdcor_ci": [0.86, 1.11], "sdcor_se": 0.06},
        ],
        ranef=[], converged=True, singular=False, diagnostics=diagnostics, interval="credible",
    )


def test_bayes_summary_shows_posterior_priors_and_diagnostics():
    d = {"max_rhat": 1.003, "min_ess_bulk": 812.0, "min_ess_tail": 640.0, "divergences": 0,
         "chains": 2, "draws": 1000, "tune": 1000, "sampler": "nutpie", "parameterization": "marginal",
         "priors": {"beta": "Normal(0, 10)", "sd": "HalfNormal(2.5)", "corr": "LKJ(2)",
                    "sigma": "HalfStudentT(3, 2.5)"},
         "warnings": []}
    text = format_fit(_bayes_fit(d))
    assert text.splitlines()[0].startswith("Bayesian linear mixed model fit by PyMC")
    assert "nutpie" in text.splitlines()[0] and "marginal" in text.splitlines()[0]
    assert "Priors:" in text
    for key, dist in d["priors"].items():
        assert re.search(rf"^\s+{re.escape(key)}\s+{re.escape(dist)}$", text, re.M), key
    assert _line(text, "(Intercept) 2").split()[1:] == ["2.010", "0.151", "1.710", "2.300"]
    assert "equal-tailed credible 95%" in text
    assert re.search(r"cor\[g:\(Intercept\),x\]\s+0\.21", text)
    assert "max R-hat 1.003" in text and "divergences 0" in text
    assert "warning:" not in text
    assert "REML criterion" not in text


def test_bayes_warnings_from_fitter_are_printed_verbatim():
    fit = _bayes_fit({"max_rhat": 1.2, "warnings": ["chain 2 stuck near sd[g:x] = 0"]})
    assert bayes_warnings(fit) == ["chain 2 stuck near sd[g:x] = 0"]
    assert "warning: chain 2 stuck near sd[g:x] = 0" in format_fit(fit)


@pytest.mark.parametrize(
    "diag, expected",
    [
        ({"max_rhat": 1.0105, "min_ess_bulk": 400, "divergences": 0}, ["R-hat"]),
        ({"max_rhat": 1.01, "min_ess_bulk": 399.5, "divergences": 0}, ["ESS"]),
        ({"max_rhat": 1.0, "min_ess_bulk": 1000, "divergences": 2}, ["2 divergent"]),
        ({"max_rhat": 1.0, "min_ess_bulk": 1000, "divergences": 0}, []),
    ],
)
def test_derived_bayes_warnings_thresholds(diag, expected):
    got = bayes_warnings(_bayes_fit(diag))
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert e in g


def test_number_formatting():
    # lme4-style: a column shares its decimals, the smallest value keeps 4 significant digits.
    assert format_column([612.0899, 35.0717, 654.941]) == ["612.09", "35.07", "654.94"]
    assert format_column([24.7407, 5.9221, 25.5918]) == ["24.741", "5.922", "25.592"]
    assert format_column([1.0, None, float("nan")]) == ["1.000", "", "NA"]
    # Estimates to the precision of their standard errors (lme4 prints 251.405 and 10.467).
    assert format_scaled([251.405105, 10.467286], [6.8246, 1.5458]) == ["251.405", "10.467"]
    assert format_column([1e-9, 2e8])[1] == "2.000e+08"
