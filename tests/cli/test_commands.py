"""The ``workbench`` commands, run in-process through the real entry point ``main``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import workbench
from workbench.cli import _WorkbenchGroup, app, parse_priors
from workbench.errors import WorkbenchError

SLEEP_FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "sleepstudy.csv"
    workbench.datasets.load("sleepstudy").to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def lme4_ref(lme4_reference):
    return lme4_reference


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    """40 rows, 8 groups of 5, with columns for each kind of bad input."""
    rng = np.random.default_rng(11)
    n = 40
    d = pd.DataFrame({
        "y": rng.normal(size=n), "x": rng.normal(size=n), "g": np.repeat(np.arange(8), 5),
        "one": 1, "label": ["a", "b"] * 20, "id": np.arange(n), "se": 1.0,
    })
    d.loc[3, "se"] = 0.0
    d["x2"] = 2.0 * d["x"]
    path = tmp_path_factory.mktemp("data") / "small.csv"
    d.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------------- success paths
def test_version_and_help_through_clirunner():
    runner = CliRunner()
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.output.strip() == f"workbench {workbench.__version__}"
    res = runner.invoke(app, ["fit", "--help"])
    assert res.exit_code == 0
    for flag in ("--data", "--method", "--known-sd", "--prior", "--json", "--ci", "--sampler",
                 "--parameterization", "--draws", "--tune", "--chains", "--seed"):
        assert flag in res.output
    res = runner.invoke(app, ["--help"])
    for cmd in ("fit", "simulate", "demo", "figures", "compare", "study"):
        assert cmd in res.output


def test_fit_summary_through_clirunner(sleep_csv):
    res = CliRunner().invoke(app, ["fit", SLEEP_FORMULA, "--data", str(sleep_csv)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("Linear mixed model fit by REML")
    assert "Number of obs: 180, groups:  Subject, 18" in res.output


def test_fit_json_stdout_is_the_record(run_cli, sleep_csv, lme4_ref):
    code, out, err = run_cli("fit", SLEEP_FORMULA, "--data", sleep_csv, "--method", "ml", "--json", "-")
    assert code == 0, err
    rec = json.loads(out)  # stdout holds the JSON record and nothing else
    for key in ("method", "formula", "nobs", "ngroups", "criterion", "loglik", "beta", "beta_se",
                "beta_ci", "sigma", "varcorr", "ranef", "converged", "singular", "diagnostics"):
        assert key in rec
    ref = lme4_ref["sleepstudy"]["ML"]
    assert rec["method"] == "ml"
    assert rec["ngroups"] == {"Subject": 18}
    assert rec["criterion"] == pytest.approx(ref["deviance"], rel=1e-6)
    assert rec["sigma"] == pytest.approx(ref["sigma"], rel=1e-5)
    assert list(rec["beta"]) == ["(Intercept)", "Days"]
    assert rec["varcorr"][-1]["grp"] == "Residual"


def test_fit_json_to_file_also_prints_summary(run_cli, sleep_csv, tmp_path, lme4_ref):
    target = tmp_path / "out" / "fit.json"
    code, out, err = run_cli("fit", SLEEP_FORMULA, "-d", sleep_csv, "--json", target)
    assert code == 0, err
    assert out.startswith("Linear mixed model fit by REML")
    rec = json.loads(target.read_text())
    assert rec["criterion"] == pytest.approx(lme4_ref["sleepstudy"]["REML"]["deviance"], rel=1e-6)
    assert [p.name for p in target.parent.iterdir()] == ["fit.json"]


def test_fit_profile_intervals_match_lme4(run_cli, sleep_csv, tmp_path, lme4_ref):
    target = tmp_path / "fit.json"
    code, out, err = run_cli("fit", SLEEP_FORMULA, "-d", sleep_csv, "--ci", "profile", "--json", target)
    assert code == 0, err
    rec = json.loads(target.read_text())
    prof = lme4_ref["sleepstudy"]["REML"]["profile_ci95"]
    assert rec["interval"] == "profile"
    assert rec["beta_ci"]["Days"] == pytest.approx(prof["Days"], rel=1e-3)
    sd_int = next(r for r in rec["varcorr"] if r["var1"] == "(Intercept)" and r["var2"] is None)
    assert sd_int["sdcor_ci"] == pytest.approx(prof["sd_(Intercept)|Subject"], rel=1e-3)
    assert "profile 95% intervals" in out


def test_known_sd_option(run_cli, data_file):
    code, out, err = run_cli("fit", "y ~ 1 + (1 | school)", "-d", data_file("eight_schools"),
                             "--known-sd", "sigma", "--json", "-")
    assert code == 0, err
    rec = json.loads(out)
    assert rec["sigma"] is None
    assert rec["singular"] is True  # eight schools: the REML estimate of tau is 0 (metafor)
    assert rec["varcorr"][0]["sdcor"] == pytest.approx(0.0, abs=1e-6)


def test_warnings_become_one_line_each(run_cli, small_csv, tmp_path):
    d = pd.read_csv(small_csv)
    d.loc[[0, 5], "y"] = np.nan
    path = tmp_path / "na.csv"
    d.to_csv(path, index=False)
    code, out, err = run_cli("fit", "y ~ x + x2 + (1 | g)", "-d", path)
    assert code == 0, err
    assert "warning: 2 rows with missing values dropped" in err.splitlines()
    assert any(ln.startswith("warning: fixed-effect model matrix is rank deficient") for ln in err.splitlines())
    assert "Rows dropped for missing values: 2" in out
    assert "Traceback" not in err


def test_parse_priors():
    assert parse_priors(["sd=HalfNormal(5)", " beta[x] = Normal(0, 1) "]) == {
        "sd": "HalfNormal(5)", "beta[x]": "Normal(0, 1)"}
    assert parse_priors(None) == {}
    for bad in (["sd"], ["=Normal(0,1)"], ["sd="], ["sd=HalfNormal(1)", "sd=HalfCauchy(2)"]):
        with pytest.raises(WorkbenchError):
            parse_priors(bad)


def test_bayes_options_are_passed_through(run_cli, sleep_csv, monkeypatch):
    seen = {}

    def fake_fit(formula, data, method="reml", known_sd=None, **options):
        seen.update(formula=formula, method=method, known_sd=known_sd, options=options, n=len(data))
        raise WorkbenchError("stop here")

    monkeypatch.setattr(workbench, "fit", fake_fit)
    code, out, err = run_cli("fit", SLEEP_FORMULA, "-d", sleep_csv, "--method", "bayes", "--seed", 3,
                             "--draws", 50, "--tune", 60, "--chains", 2, "--prior", "sd=HalfNormal(5)",
                             "--prior", "beta[Days]=Normal(0, 20)", "--parameterization", "marginal",
                             "--sampler", "nutpie", "--target-accept", 0.9)
    assert code == 1 and "error: stop here" in err
    assert seen["method"] == "bayes" and seen["n"] == 180
    assert seen["options"] == {"seed": 3, "draws": 50, "tune": 60, "chains": 2, "target_accept": 0.9,
                               "parameterization": "marginal", "sampler": "nutpie",
                               "priors": {"sd": "HalfNormal(5)", "beta[Days]": "Normal(0, 20)"}}


# ---------------------------------------------------------------------------- bad input (issue 2 s. 8, issue 3)
BAD_FIT = [
    (["y x"], "exactly one '~'"),
    (["y ~ x + (1 | g"], "unbalanced parentheses"),
    (["y ~ x + (1 | )"], "no grouping factor"),
    (["y ~ nothere + (1 | g)"], "'nothere'"),
    (["y ~ x + (1 | nothere)"], "'nothere' not found"),
    (["label ~ x + (1 | g)"], "not numeric"),
    (["y ~ x + (1 | one)"], "only 1 level"),
    (["y ~ x + (1 | id)"], "40 levels for 40 observations"),
    (["y ~ x + (1 + x | g)", "--known-sd", "se"], "positive"),
    (["y ~ x + (1 | g)", "--known-sd", "nothere"], "'nothere' not found"),
    (["y ~ C(id) + (1 | g)"], "fewer fixed-effect columns than observations"),
    (["y ~ x + foo(x) + (1 | g)"], "unknown function 'foo'"),
    (["y ~ x + (1 | g)", "--weights", "x"], "must be positive"),
    (["y ~ x + (1 | g)", "--draws", "10"], "--draws"),
    (["y ~ x + (1 | g)", "--prior", "sd=HalfNormal(1)"], "--prior"),
    (["y ~ x + (1 | g)", "--prior", "nonsense"], "KEY=DIST"),
    (["y ~ x + (1 | g)", "--method", "bayes", "--ci", "profile"], "--ci"),
]


@pytest.mark.parametrize("args, needle", BAD_FIT, ids=[a[0][0] + " " + " ".join(a[0][1:]) for a in BAD_FIT])
def test_bad_fit_input_is_one_line(run_cli, one_line_error, small_csv, tmp_path, args, needle):
    target = tmp_path / "fit.json"
    code, out, err = run_cli("fit", *args, "--data", small_csv, "--json", target)
    one_line_error(code, err, needle)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_more_random_effects_than_observations(run_cli, one_line_error, tmp_path):
    # 6 groups x 2 columns = 12 random effects for 12 rows.
    d = pd.DataFrame({"y": np.arange(12.0) ** 1.5, "x": np.tile([0.0, 1.0], 6), "g": np.repeat(range(6), 2)})
    path = tmp_path / "d.csv"
    d.to_csv(path, index=False)
    code, _, err = run_cli("fit", "y ~ x + (1 + x | g)", "-d", path)
    one_line_error(code, err, "12 random effects for 12 observations")


@pytest.mark.parametrize(
    "content, needle",
    [(None, "does not exist"), (b"", "is empty"), (b"y,g\n", "no data rows"),
     (b'y,g\n1,"2\n', "cannot parse"), (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\xfa", "not UTF-8")],
)
def test_bad_data_file(run_cli, one_line_error, tmp_path, content, needle):
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_bytes(content)
    code, _, err = run_cli("fit", "y ~ 1 + (1 | g)", "--data", path)
    one_line_error(code, err, needle, "data.csv")


@pytest.mark.parametrize(
    "args, needle",
    [(["fit", "y ~ 1 + (1|g)"], "Missing option '--data'"),
     (["fit", "y ~ 1 + (1|g)", "-d", "x.csv", "--method", "gls"], "'gls' is not one of"),
     (["fit", "y ~ 1 + (1|g)", "-d", "x.csv", "--draws", "0"], "--draws"),
     (["fit", "y ~ 1 + (1|g)", "-d", "x.csv", "--bogus"], "--bogus"),
     (["nocommand"], "nocommand")],
)
def test_command_line_errors_exit_2(run_cli, one_line_error, args, needle):
    code, _, err = run_cli(*args)
    one_line_error(code, err, needle, expected_code=2)


def test_existing_output_untouched_on_failure(run_cli, small_csv, tmp_path):
    target = tmp_path / "fit.json"
    target.write_text("previous record\n")
    code, _, _ = run_cli("fit", "y ~ x + (1 | one)", "-d", small_csv, "--json", target)
    assert code == 1
    assert target.read_text() == "previous record\n"


# ---------------------------------------------------------------------------- simulate
DESIGN = """
formula = "y ~ 1 + x + (1 + x | g)"

[factors.g]
levels = 12
size = { low = 4, high = 9 }

[predictors.x]
level = "obs"

[fixed]
"(Intercept)" = 1.0
x = 0.5

[random.g]
terms = ["(Intercept)", "x"]
sd = [0.8, 0.3]
cor = [[1.0, 0.3], [0.3, 1.0]]

[residual]
sd = 1.0
"""


def test_simulate_writes_data_and_truth_reproducibly(run_cli, tmp_path):
    design = tmp_path / "design.toml"
    design.write_text(DESIGN)
    a, b, truth = tmp_path / "a.csv", tmp_path / "b.parquet", tmp_path / "truth.json"
    code, _, err = run_cli("simulate", design, "--seed", 5, "--out", a, "--truth", truth)
    assert code == 0, err
    code, _, err = run_cli("simulate", design, "--seed", 5, "--out", b)
    assert code == 0, err
    da, db = pd.read_csv(a), pd.read_parquet(b)
    assert {"y", "x", "g"} <= set(da.columns)
    assert da["g"].nunique() == 12 and 48 <= len(da) <= 108
    np.testing.assert_allclose(da["y"].to_numpy(), db["y"].to_numpy(), rtol=1e-12)
    t = json.loads(truth.read_text())
    assert t["beta[x]"] == 0.5 and t["sd[g:(Intercept)]"] == 0.8 and t["sigma"] == 1.0

    # The simulated data fit through the CLI, and the fit names its parameters as the truth does.
    code, out, err = run_cli("fit", "y ~ 1 + x + (1 + x | g)", "-d", a, "--json", "-")
    assert code == 0, err
    rec = json.loads(out)
    assert {f"beta[{k}]" for k in rec["beta"]} <= set(t)


def test_simulate_bad_design_writes_nothing(run_cli, one_line_error, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(DESIGN.replace("levels = 12", "levels = 12\nflavour = 'mint'"))
    out = tmp_path / "d.csv"
    code, _, err = run_cli("simulate", bad, "--seed", 1, "--out", out)
    one_line_error(code, err, "flavour")
    code, _, err = run_cli("simulate", tmp_path / "missing.toml", "--seed", 1, "--out", out)
    one_line_error(code, err, "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


# ---------------------------------------------------------------------------- thin wrappers
def test_demo_and_figures_call_their_jobs(run_cli, monkeypatch, tmp_path):
    import workbench.jobs

    calls = []
    monkeypatch.setattr(workbench.jobs, "run_demo", lambda **kw: calls.append(("demo", kw)))
    monkeypatch.setattr(workbench.jobs, "make_report_figures",
                        lambda out_dir, **kw: calls.append(("figures", out_dir, kw)) or [])
    assert run_cli("demo", "--out", tmp_path / "d", "--seed", 9)[0] == 0
    assert run_cli("demo")[0] == 0
    assert run_cli("figures", "--out", tmp_path / "f", "--no-bayes")[0] == 0
    assert calls == [("demo", {"out_dir": tmp_path / "d", "seed": 9, "progress": True}),
                     ("demo", {"progress": True}),
                     ("figures", tmp_path / "f", {"bayes": False})]


def test_wrappers_match_the_real_signatures():
    """The keywords the CLI passes exist on the real jobs."""
    import inspect

    import workbench.jobs

    for name, keywords in [
        ("run_demo", {"out_dir", "seed", "progress", "draws", "tune", "chains"}),
        ("make_report_figures", {"out_dir", "seed", "bayes"}),
        ("compare_and_write", {"formula", "data", "out_dir", "priors", "seed", "figures",
                               "known_sd", "progress"}),
    ]:
        params = inspect.signature(getattr(workbench.jobs, name)).parameters
        assert keywords <= set(params), (name, keywords - set(params))


def test_compare_calls_compare_and_write(run_cli, monkeypatch, sleep_csv, tmp_path):
    import workbench.jobs

    seen = {}

    def compare_and_write(formula, data, out_dir, **kwargs):
        seen.update(formula=formula, n=len(data), out_dir=out_dir, **kwargs)
        return {"side_by_side": pd.DataFrame({"parameter": ["sigma"], "reml": [1.0]}), "files": ["a"]}

    monkeypatch.setattr(workbench.jobs, "compare_and_write", compare_and_write)
    code, out, err = run_cli("compare", SLEEP_FORMULA, "-d", sleep_csv, "--prior", "sd=HalfCauchy(5)",
                             "--out", tmp_path, "--seed", 4, "--draws", 100)
    assert code == 0, err
    assert seen["formula"] == SLEEP_FORMULA and seen["n"] == 180 and seen["out_dir"] == tmp_path
    assert seen["priors"] == {"sd": "HalfCauchy(5)"} and seen["seed"] == 4 and seen["draws"] == 100
    assert "sigma" in out


def test_study_group_is_mounted_when_present(run_cli):
    pytest.importorskip("workbench.study.cli")
    _WorkbenchGroup._study = None
    code, out, err = run_cli("study", "--help")
    assert code == 0, err
    assert "run" in out


def test_fit_bootstrap_intervals(run_cli, data_file, tmp_path):
    data = data_file("Dyestuff")
    code, out, err = run_cli("fit", "Yield ~ 1 + (1 | Batch)", "-d", data, "--ci", "bootstrap",
                             "--nboot", 40, "--seed", 3, "--json", "-")
    assert code == 0, err
    assert "parametric bootstrap: 40 replicates, seed 3" in err
    rec = json.loads(out)
    assert rec["interval"] == "bootstrap"
    lo, hi = rec["beta_ci"]["(Intercept)"]
    wald_half = 1.959964 * rec["beta_se"]["(Intercept)"]
    assert lo < rec["beta"]["(Intercept)"] < hi
    assert 0.5 * wald_half < (hi - lo) / 2 < 1.5 * wald_half  # same scale as the Wald interval
    assert all(r["sdcor_ci"] is not None for r in rec["varcorr"])
