"""Simulation-based calibration (study/sbc.py): the right fitter passes, a fitter with a prior
other than the one that drew the truth fails; the uniformity test and the ECDF bands."""

import numpy as np
import pandas as pd
import pytest

from workbench.study import sbc

PRIORS = {"beta": "Normal(0, 1)", "sd": "HalfNormal(1)", "sigma": "Exponential(1)"}


def _template(groups=8, per=5, seed=0):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    return pd.DataFrame({"y": 0.0, "x": rng.normal(size=g.size), "g": g})


def _pvalues(ranks: pd.DataFrame) -> dict:
    return {p: sbc.sbc_pvalue(r["rank"], int(r["thin_to"].iloc[0]))
            for p, r in ranks.groupby("parameter")}


@pytest.fixture(scope="module")
def right():
    return sbc.sbc_ranks("y ~ 1 + x + (1 | g)", _template(), PRIORS, replicates=100, seed=3,
                         thin_to=19, draws=200, chains=2)


def test_right_fitter_passes(right):
    assert set(right["path"]) == {"fast"}
    assert set(right["parameter"]) == {"beta[(Intercept)]", "beta[x]", "sd[g:(Intercept)]", "sigma"}
    p = _pvalues(right)
    assert min(p.values()) > 0.01, p


def test_wrong_prior_fails():
    wrong = sbc.sbc_ranks("y ~ 1 + x + (1 | g)", _template(), PRIORS, replicates=100, seed=3,
                          thin_to=19, fit_priors={"sd": "HalfNormal(0.2)"}, draws=200, chains=2)
    p = _pvalues(wrong)
    assert p["sd[g:(Intercept)]"] < 1e-4, p
    # the too-tight prior pulls the posterior of the group sd down: the truth ranks high
    assert wrong.loc[wrong.parameter == "sd[g:(Intercept)]", "rank"].mean() > 12


def test_uniformity_test_and_bands():
    rng = np.random.default_rng(1)
    uniform = rng.integers(0, 20, size=400)
    assert sbc.sbc_pvalue(uniform, 19) > 0.01
    skewed = np.minimum(19, rng.integers(0, 20, size=400) + rng.integers(0, 4, size=400))
    assert sbc.sbc_pvalue(skewed, 19) < 1e-6
    with pytest.raises(ValueError):
        sbc.sbc_pvalue(uniform, 19, bins=3)
    z, lo, hi = sbc.ecdf_bands(200, alpha=0.05, sims=1000, rng=np.random.default_rng(2))
    assert np.all(lo < 0) and np.all(hi > 0) and np.all(lo < hi)
    # simultaneous: uniform samples stay inside on about 95% of data sets
    inside = [np.all((d >= lo) & (d <= hi)) for d in
              (sbc.ecdf_diff(rng.integers(0, 100, 200), 99, z) for _ in range(400))]
    assert 0.9 < np.mean(inside) <= 1.0


def test_rank_of_truth():
    rng = np.random.default_rng(0)
    draws = np.arange(100.0)
    assert sbc.rank_of_truth(draws, -1.0, 10, rng) == 0
    assert sbc.rank_of_truth(draws, 1000.0, 10, rng) == 10
    with pytest.raises(ValueError):
        sbc.rank_of_truth(draws[:5], 1.0, 10, rng)


def test_summary_and_figure(right, tmp_path):
    from workbench.study.figures import write_sbc_figure
    from workbench.study.summary import sbc_summary

    wrong = right.assign(method="shifted", rank=np.minimum(19, right["rank"] + 5))
    table = sbc_summary(pd.concat([right.assign(method="bayes"), wrong]))
    assert list(table.columns) == ["parameter", "method", "n", "thin_to", "mean_rank", "sbc_p"]
    assert len(table) == 8 and set(table["n"]) == {100}
    assert (table.loc[table.method == "bayes", "sbc_p"] > 0.01).all()
    assert (table.loc[table.method == "shifted", "sbc_p"] < 1e-6).all()
    path = write_sbc_figure(right, tmp_path)
    assert path.is_file() and path.stat().st_size > 1000


# ------------------------------------------------------------------ the study runner (truth = "prior")
SBC_DESIGN = """
formula = "y ~ 1 + x + (1 | g)"
[factors.g]
levels = 8
size = 5
[predictors.x]
level = "obs"
[fixed]
"(Intercept)" = 0.0
x = 0.5
[random.g]
terms = ["(Intercept)"]
sd = [0.5]
[residual]
sd = 1.0
"""

SBC_STUDY = """
name = "tiny_sbc"
design = "tiny_design.toml"
truth = "prior"
thin_to = 19
replicates = 30
seed = 7
[methods.right]
method = "bayes"
options = { draws = 200, chains = 2, priors = { beta = "Normal(0, 1)", sd = "HalfNormal(1)", sigma = "Exponential(1)" } }
batch = 10
[methods.wrong]
method = "bayes"
options = { draws = 200, chains = 2, priors = { beta = "Normal(0, 1)", sd = "HalfNormal(0.05)", sigma = "Exponential(1)" } }
truth_priors = { beta = "Normal(0, 1)", sd = "HalfNormal(1)", sigma = "Exponential(1)" }
batch = 10
"""

SBC_PARAMS = ["beta[(Intercept)]", "beta[x]", "sd[g:(Intercept)]", "sigma"]


def _cli(capsys, *args):
    from workbench.cli import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


@pytest.fixture(scope="module")
def sbc_run(tmp_path_factory):
    """The tiny SBC study run through the CLI, in this process: (study file, out dir)."""
    from .conftest import write_study

    d = tmp_path_factory.mktemp("sbc_study")
    spec = write_study(d, SBC_STUDY, SBC_DESIGN)
    out = d / "run"
    from workbench.cli import main

    with pytest.raises(SystemExit) as info:
        main(["study", "run", str(spec), "--out", str(out), "--workers", "0", "--quiet"])
    assert info.value.code == 0
    return spec, out


def test_sbc_study_ranks_every_drawn_parameter(sbc_run):
    from workbench.study.store import open_results

    manifest, res = open_results(sbc_run[1])
    assert manifest["truth"] == "prior" and manifest["thin_to"] == 19
    assert manifest["parameters"] == SBC_PARAMS
    assert res.shape[0] == 2 * 30 * len(SBC_PARAMS)
    assert res["error"].isna().all()
    assert set(res["thin_to"]) == {19} and res["rank"].between(0, 19).all()
    # a truth per replicate, the same for both arms (same truth priors, same streams)
    right = res[res.method == "right"].set_index(["replicate", "parameter"])["truth"]
    wrong = res[res.method == "wrong"].set_index(["replicate", "parameter"])["truth"]
    assert right.equals(wrong)
    assert right.xs("sd[g:(Intercept)]", level="parameter").nunique() == 30
    assert (res.loc[res.parameter == "sd[g:(Intercept)]", "truth"] > 0).all()


def test_sbc_summary_flags_the_wrong_prior(sbc_run, tmp_path, capsys):
    spec, out = sbc_run
    csv = tmp_path / "sbc.csv"
    code, text, err = _cli(capsys, "study", "summarize", out, "--sbc-csv", csv)
    assert code == 0, err
    table = pd.read_csv(csv)
    assert {"parameter", "method", "n", "sbc_p", "failures"} <= set(table.columns)
    assert len(table) == 2 * len(SBC_PARAMS) and set(table["n"]) == {30}
    assert list(table.loc[table.method == "right", "parameter"]) == SBC_PARAMS
    p = table.set_index(["method", "parameter"])["sbc_p"]
    # a group-sd prior 20 times too tight: the truth ranks above (nearly) every posterior draw
    assert p[("wrong", "sd[g:(Intercept)]")] < 1e-6
    assert p["right"].min() > 0.01
    assert "sbc_p" in text
    verdicts = {line.split()[0]: line.split()[1] for line in text.splitlines()
                if line.startswith("  ") and ("passes" in line or "FAILS" in line)}
    assert verdicts == {"right": "passes", "wrong": "FAILS"}


def test_sbc_figures(sbc_run, tmp_path, capsys):
    code, _, err = _cli(capsys, "study", "figures", sbc_run[1], "--out", tmp_path / "figs")
    assert code == 0, err
    png = tmp_path / "figs" / "sbc_ecdf.png"
    assert png.is_file() and png.stat().st_size > 1000
    assert (tmp_path / "figs" / "coverage.png").is_file()


def test_sbc_csv_of_a_study_with_a_fixed_truth_is_an_error(reference_run, tmp_path, capsys):
    code, _, err = _cli(capsys, "study", "summarize", reference_run[0], "--sbc-csv",
                        tmp_path / "x.csv")
    assert code != 0 and "error: --sbc-csv" in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()


def test_sbc_study_resumes_to_the_same_ranks(sbc_run, tmp_path):
    from workbench.study.run import run_study
    from workbench.study.spec import load_study
    from workbench.study.store import Store

    from .conftest import comparable

    study = load_study(sbc_run[0])
    out = tmp_path / "resumed"
    run_study(study, out, replicates=10, methods=["right"], workers=0, progress=False)
    run_study(study, out, replicates=20, methods=["right"], workers=0, progress=False)
    resumed = comparable(Store(out).results())
    whole = comparable(Store(sbc_run[1]).results())
    whole = whole[(whole.method == "right") & (whole.replicate < 20)].reset_index(drop=True)
    pd.testing.assert_frame_equal(resumed, whole)


def test_sbc_run_with_other_thinning_is_refused(sbc_run, tmp_path):
    from workbench.errors import StoreError
    from workbench.study.run import run_study
    from workbench.study.spec import study_from_dict
    from workbench.simulate.schema import read_toml

    data = read_toml(sbc_run[0], "study file")
    data["thin_to"] = 9
    study = study_from_dict(data, source="x", base_dir=sbc_run[0].parent)
    with pytest.raises(StoreError, match="thin_to differs"):
        run_study(study, sbc_run[1], methods=["right"], workers=0, progress=False)


@pytest.mark.parametrize("edit, needle", [
    (("batch = 10\n[methods.wrong]", "batch = 10\n[methods.reml]\nmethod = \"reml\"\n[methods.wrong]"),
     "needs Bayesian arms only; methods.reml is method 'reml'"),
    (('truth = "prior"\nthin_to = 19\n', ""), "methods.wrong.truth_priors needs truth = 'prior'"),
    (('truth = "prior"\n', 'truth = "drawn"\n'), "truth"),
    (('beta = "Normal(0, 1)", sd = "HalfNormal(1)"', 'beta = "Flat()", sd = "HalfNormal(1)"'),
     "methods.right: prior beta[(Intercept)]=Flat() is improper"),
    (('truth_priors = { beta = "Normal(0, 1)"', 'truth_priors = { beta = "Flat()"'),
     "methods.wrong: prior beta[(Intercept)]=Flat() is improper"),
    (('truth_priors = { beta', 'truth_priors = { betta'), "unknown prior key"),
    (("thin_to = 19", "thin_to = 0"), "thin_to"),
])
def test_bad_sbc_study_fails_naming_the_key(tmp_path, edit, needle):
    from workbench.errors import SpecError
    from workbench.study.spec import load_study

    from .conftest import write_study

    old, new = edit
    assert old in SBC_STUDY
    spec = write_study(tmp_path, SBC_STUDY.replace(old, new, 1), SBC_DESIGN)
    with pytest.raises(SpecError, match=None) as info:
        load_study(spec)
    assert needle in str(info.value) and str(spec) in str(info.value)


def test_thin_to_needs_a_prior_truth(tmp_path):
    from workbench.errors import SpecError
    from workbench.study.spec import load_study

    from .conftest import STUDY, write_study

    spec = write_study(tmp_path, STUDY.replace("seed = 99", "seed = 99\nthin_to = 9"))
    with pytest.raises(SpecError, match="thin_to needs truth = 'prior'"):
        load_study(spec)
