"""``workbench compare --method ... --fgls ... --gls ...``: the other GLS traditions beside REML
through the CLI (real fits, no sampler), and the plain errors where an option applies to no
method asked for."""

from __future__ import annotations

import pandas as pd
import pytest

FORMULA = "Yield ~ 1 + (1 | Batch)"


def test_compare_gls_methods_writes_tables_and_figures(run_cli, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "cmp"
    code, stdout, err = run_cli("compare", FORMULA, "-d", "Dyestuff", "-o", out, "-m", "reml",
                                "-m", "fgls", "-m", "igls", "-m", "rigls", "--fgls", "walhus",
                                "--gls", "cs(~ 1 | Batch)")
    assert code == 0, err
    side = pd.read_csv(out / "side_by_side.csv").set_index("parameter")
    assert list(side.columns) == ["reml", "fgls", "igls", "rigls", "gls cs (REML)"]
    assert "corstruct[Rho]" in side.index
    params = pd.read_csv(out / "parameters.csv")
    fg = params[params["method"] == "fgls"].set_index("parameter")["estimate"]
    # Dyestuff is balanced: Wallace-Hussain's between form differs from REML's
    re = params[params["method"] == "reml"].set_index("parameter")["estimate"]
    assert fg["beta[(Intercept)]"] == pytest.approx(re["beta[(Intercept)]"], rel=1e-12)
    rho = params[params["parameter"] == "corstruct[Rho]"]["estimate"].item()
    # cs GLS is the random-intercept model: Rho = var[Batch] / (var[Batch] + sigma^2) by REML
    assert rho == pytest.approx(re["sd[Batch:(Intercept)]"] ** 2
                                / (re["sd[Batch:(Intercept)]"] ** 2 + re["sigma"] ** 2), rel=1e-6)
    for stem in ("fig1_shrinkage", "fig3_fixed_intervals", "fig8_methods_variance"):
        assert (out / f"{stem}.png").is_file()
    assert "fgls: Wald 95% intervals, FGLS standard errors" in stdout
    assert "figures 1, 2 and 4 draw reml; fgls, igls, rigls, gls cs (REML) appear in figures 3 and 8" \
        in stdout


def test_compare_without_a_likelihood_fit_says_which_figures_are_skipped(run_cli, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "cmp"
    code, stdout, err = run_cli("compare", FORMULA, "-d", "Dyestuff", "-o", out, "-m", "fgls",
                                "-m", "rigls")
    assert code == 0, err
    assert "figures 1, 2 and 4 draw a REML or ML fit" in stdout
    assert not (out / "fig1_shrinkage.png").exists()
    assert (out / "fig3_fixed_intervals.png").is_file() and (out / "fig8_methods_variance.png").is_file()


def test_compare_profile_ci_applies_to_reml_only(run_cli, tmp_path):
    out = tmp_path / "cmp"
    code, stdout, err = run_cli("compare", FORMULA, "-d", "Dyestuff", "-o", out, "-m", "reml",
                                "-m", "rigls", "--ci", "profile", "--no-figures")
    assert code == 0, err
    params = pd.read_csv(out / "parameters.csv")
    beta = params[params["parameter"] == "beta[(Intercept)]"]
    kinds = dict(zip(beta["method"], beta["interval"]))
    assert kinds["reml"] == "profile" and kinds["rigls"] == "wald"
    assert "rigls: Wald 95% intervals, REML (RIGLS) standard errors" in stdout


@pytest.mark.parametrize("args,needle", [
    (["-m", "fgls", "--ci", "profile"], "--ci profile applies to REML and ML fits"),
    (["-m", "reml", "--fgls", "amemiya"], "--fgls applies to the fgls fit"),
    (["-m", "reml", "--prior", "sd=HalfNormal(5)"], "--prior applies to the Bayesian fit"),
    (["-m", "reml", "--draws", "10"], "--draws applies to the Bayesian fit"),
    (["-m", "igls", "--gls", "cs(~ 1 | Batch)"], "--gls is fitted by REML or ML"),
    (["-m", "reml", "--gls", "toeplitz(~ 1 | Batch)"], "'toeplitz' is not implemented"),
    (["-m", "reml", "--gls", "cs(~ 1 | Nope)"], "'Nope' is not in the data"),
    (["-m", "reml", "-m", "reml"], "--method repeats a method"),
    (["-m", "gee"], "gee"),
])
def test_compare_option_errors(run_cli, one_line_error, tmp_path, args, needle):
    out = tmp_path / "cmp"
    code, stdout, err = run_cli("compare", FORMULA, "-d", "Dyestuff", "-o", out, *args)
    one_line_error(code, err, needle, expected_code=2 if needle == "gee" else 1)
    assert not out.exists() or not list(out.iterdir())


def test_compare_and_write_checks_methods_before_fitting(tmp_path):
    from workbench import datasets, jobs
    from workbench.errors import WorkbenchError

    d = datasets.load("Dyestuff")
    for kwargs, needle in [({"methods": []}, "at least one method"),
                           ({"methods": ["reml", "gee"]}, "unknown method 'gee'"),
                           ({"methods": ["fgls"], "ci": "bootstrap"}, "bootstrap intervals apply"),
                           ({"methods": ["reml"], "draws": 10}, "draws applies to the Bayesian")]:
        with pytest.raises(WorkbenchError, match=needle):
            jobs.compare_and_write(FORMULA, d, tmp_path / "x", figures=False, **kwargs)
    assert not (tmp_path / "x").exists()
