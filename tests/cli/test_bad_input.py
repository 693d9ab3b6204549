"""Issue 11's bad inputs: each is one plain ``error:`` line and a non-zero exit (or a correct
result with a warning), checked before the work, with nothing left on disk."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.errors import DataError, OptionError, SpecError, StoreError

DEMO_DESIGN = "studies/designs/demo.toml"


def _frame(y, seed=1):
    g = np.repeat(np.arange(6), 5)
    x = np.random.default_rng(seed).normal(size=30)
    return pd.DataFrame({"y": y(x, g), "x": x, "g": g})


# ---------------------------------------------------------------------------- data
@pytest.mark.parametrize("formula, y", [
    ("y ~ 1 + (1 | g)", lambda x, g: np.full(x.size, 5.0)),   # lme4: REML criterion -Inf
    ("y ~ x + (1 | g)", lambda x, g: 2.0 + 3.0 * x),           # lme4: sds of 1e-17, warnings
])
def test_a_response_fitted_exactly_is_an_error(run_cli, one_line_error, tmp_path, formula, y):
    frame = _frame(y)
    with pytest.raises(DataError, match="zero residual variance"):
        workbench.fit(formula, frame)
    path = tmp_path / "exact.csv"
    frame.to_csv(path, index=False)
    code, out, err = run_cli("fit", formula, "--data", path, "--method", "ml")
    one_line_error(code, err, "zero residual variance")



@pytest.mark.parametrize("scale, shift, weighted", [
    (1e7, 5e9, False),   # x in huge units far from 0: X'X is ill-conditioned
    (1.0, 0.0, False),
    (1.0, 0.0, True),    # with prior weights
])
def test_an_exact_fit_is_found_however_the_columns_are_scaled(scale, shift, weighted):
    """The check screens with the cross-products and decides on the rows whenever those
    cannot tell: an exact fit through ill-conditioned or weighted columns is still refused."""
    frame = _frame(lambda x, g: np.zeros(x.size))
    frame["x"] = frame["x"] * scale + shift
    frame["y"] = 1e3 + 3.0 * (frame["x"] - shift) / scale
    frame["w"] = np.linspace(0.5, 2.0, len(frame))
    with pytest.raises(DataError, match="zero residual variance"):
        workbench.fit("y ~ x + (1 | g)", frame, weights="w" if weighted else None)


@pytest.mark.parametrize("noise", [1e-4, 1e-2, 1.0])
def test_a_response_with_any_residual_left_is_fitted(noise):
    """Residual variation of any size relative to the mean (1e-7 of a response near 1e3
    included, where the cross-products cannot tell and the rows decide) is no exact fit."""
    rng = np.random.default_rng(7)
    frame = _frame(lambda x, g: 1e3 + 2.0 * x + noise * (rng.normal(size=x.size)
                                                          + rng.normal(size=6)[g]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = workbench.fit("y ~ x + (1 | g)", frame)
    assert fit.sigma > 0


@pytest.mark.parametrize("formula", ["y ~ 1 + (1 | g)", "y ~ x + (1 | g)"])
def test_a_response_the_group_effects_fit_exactly_is_an_error(run_cli, one_line_error, tmp_path,
                                                              formula):
    """y constant within every group: the random effects reproduce it, sigma collapses towards
    0 and the likelihood has no maximum (lme4 warns the model is nearly unidentifiable)."""
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(6), 4)
    frame = pd.DataFrame({"g": g, "x": np.tile([0.0, 1.0, 2.0, 3.0], 6),
                          "y": np.repeat(rng.normal(size=6), 4)})
    with pytest.raises(DataError, match="random effects fit the response exactly"):
        workbench.fit(formula, frame)
    path = tmp_path / "exact_groups.csv"
    frame.to_csv(path, index=False)
    code, out, err = run_cli("fit", formula, "--data", path)
    one_line_error(code, err, "random effects fit the response exactly")

def test_repeated_column_names_are_an_error(run_cli, one_line_error, tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("y,x,x,g\n1,2,3,1\n2,3,4,1\n3,1,2,2\n4,5,1,2\n")
    code, _, err = run_cli("fit", "y ~ x + (1 | g)", "--data", path)
    one_line_error(code, err, "repeats the column name(s) 'x'")
    frame = pd.DataFrame([[1.0, 2.0, 3.0, 1]] * 4, columns=["y", "x", "x", "g"])
    with pytest.raises(DataError, match="repeat the column name"):
        workbench.fit("y ~ x + (1 | g)", frame)


@pytest.mark.parametrize("sep, needle", [(";", "semicolon-separated"), ("\t", "tab-separated")])
def test_a_file_with_another_delimiter_names_it(run_cli, one_line_error, tmp_path, data_file,
                                                sep, needle):
    path = tmp_path / "sleep.csv"
    pd.read_csv(data_file("sleepstudy")).to_csv(path, sep=sep, index=False)
    code, _, err = run_cli("fit", "Reaction ~ Days + (Days | Subject)", "--data", path)
    one_line_error(code, err, needle, "sleep.csv")


def test_a_huge_interaction_formula_gives_the_error_without_a_long_warning(run_cli, tmp_path):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({c: rng.normal(size=60) for c in "abcdefghijkl"})
    frame["y"], frame["grp"] = rng.normal(size=60), np.repeat(np.arange(12), 5)
    path = tmp_path / "wide.csv"
    frame.to_csv(path, index=False)
    code, _, err = run_cli("fit", "y ~ a*b*c*d*e*f*g*h*i*j*k*l + (1 | grp)", "--data", path)
    assert code == 1 and err.startswith("error: the fixed effects have") and len(err) < 300, err


# ---------------------------------------------------------------------------- options
def test_tune_zero_is_refused_before_sampling(run_cli, one_line_error):
    code, _, err = run_cli("fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff",
                           "--method", "bayes", "--tune", 0)
    one_line_error(code, err, "--tune", expected_code=2)
    with pytest.raises(OptionError, match="tune must be an integer >= 1"):
        workbench.fit("Yield ~ 1 + (1 | Batch)", workbench.datasets.load("Dyestuff"),
                      method="bayes", tune=0)


@pytest.mark.parametrize("args", [
    ("simulate", DEMO_DESIGN, "--out", "x.csv"),
    ("demo",),
    ("fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff", "--method", "bayes"),
    ("compare", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff"),
    ("study", "run", "studies/few_groups.toml", "--out", "x"),
])
def test_a_negative_seed_is_a_command_line_error(run_cli, one_line_error, tmp_path, monkeypatch,
                                                args):
    monkeypatch.chdir(tmp_path)
    args = tuple(str(_root() / a) if a.endswith(".toml") else a for a in args)
    code, _, err = run_cli(*args, "--seed", -1)
    one_line_error(code, err, "--seed", expected_code=2)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SpecError, match="non-negative"):
        workbench.simulate.simulate(DESIGN_PATH, -1)


def test_too_few_bootstrap_replicates(run_cli, one_line_error):
    code, out, err = run_cli("fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff",
                             "--ci", "bootstrap", "--nboot", 1)
    one_line_error(code, err, "--nboot 1 is too few", "at least 40")
    from workbench.reml.bootstrap import bootstrap

    res = bootstrap(workbench.fit("Yield ~ 1 + (1 | Batch)", workbench.datasets.load("Dyestuff")),
                    n=3, seed=1, workers=1)
    with pytest.warns(UserWarning, match="3 bootstrap replicates are too few"):
        res.ci()


def test_draws_beyond_memory_are_refused_before_sampling(run_cli, one_line_error):
    code, _, err = run_cli("fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff", "--method",
                           "bayes", "--draws", 10 ** 9, "--chains", 100)
    one_line_error(code, err, "1,000,000,000 draws x 100 chains of 15 parameters")


def test_level_and_theta_length_are_checked():
    sleep = workbench.datasets.load("sleepstudy")
    with pytest.raises(OptionError, match="level must lie in"):
        workbench.fit("Reaction ~ Days + (Days | Subject)", sleep, level=1.5)
    f = workbench.criterion("Reaction ~ Days + (Days | Subject)", sleep)
    for theta in ([1.0], [1.0, 0.0, 1.0, 0.5]):
        with pytest.raises(DataError, match="theta must be a vector of length 3"):
            f(theta)
    assert f([0.9667, 0.0152, 0.2309]) == pytest.approx(1743.628, abs=1e-3)


def test_compare_warns_on_fits_to_different_data():
    sleep = workbench.datasets.load("sleepstudy")
    a = workbench.fit("Reaction ~ Days + (Days | Subject)", sleep)
    b = workbench.fit("Reaction ~ Days + (Days | Subject)", sleep[sleep.Days < 8])
    with pytest.warns(UserWarning, match="different data"):
        workbench.compare(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        workbench.compare(a, workbench.fit("Reaction ~ Days + (Days | Subject)", sleep,
                                           method="ml"))


# ---------------------------------------------------------------------------- files
def test_simulate_refuses_an_unknown_output_type(run_cli, one_line_error, tmp_path):
    for name in ("x.xlsx", "x.json", "noext"):
        code, _, err = run_cli("simulate", DESIGN_PATH, "--seed", 1, "--out", tmp_path / name)
        one_line_error(code, err, "unknown data file type")
    assert list(tmp_path.iterdir()) == []


def test_a_design_too_large_for_memory_is_refused(run_cli, one_line_error, tmp_path):
    text = open(DESIGN_PATH).read().replace("levels = 30", "levels = 100000000")
    design = tmp_path / "big.toml"
    design.write_text(text)
    code, _, err = run_cli("simulate", design, "--seed", 1, "--out", tmp_path / "x.csv")
    one_line_error(code, err, "100,000,000 units", "the limit is 20,000,000 rows")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.toml"]


@pytest.mark.parametrize("command", ["compare", "demo", "figures", "study", "fit", "simulate"])
def test_an_unwritable_output_fails_before_any_work(run_cli, one_line_error, tmp_path, monkeypatch,
                                                   command):
    import workbench.jobs
    import workbench.study.run

    def boom(*a, **k):
        raise AssertionError("the work started before the output was checked")

    for name in ("compare_and_write", "run_demo", "make_report_figures"):
        monkeypatch.setattr(workbench.jobs, name, boom)
    monkeypatch.setattr(workbench.study.run, "preflight", boom)
    monkeypatch.setattr(workbench.api, "fit", boom)
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a directory")
    out = blocker / "out"
    args = {
        "compare": ("compare", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff", "--out", out),
        "demo": ("demo", "--out", out),
        "figures": ("figures", "--out", out),
        "study": ("study", "run", STUDY_PATH, "--out", out),
        "fit": ("fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff", "--json", out / "f.json"),
        "simulate": ("simulate", DESIGN_PATH, "--seed", 1, "--out", out / "x.csv"),
    }[command]
    code, _, err = run_cli(*args)
    one_line_error(code, err, "file.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_an_output_directory_is_removed_when_the_work_fails(run_cli, tmp_path, monkeypatch):
    import workbench.jobs

    def half(out_dir, **kw):
        (out_dir / "sub").mkdir(parents=True)
        (out_dir / "sub" / "table.csv").write_text("a\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(workbench.jobs, "make_report_figures", half)
    code, _, err = run_cli("figures", "--out", tmp_path / "new" / "figs")
    assert code == 130 and err == "interrupted: nothing was written\n"
    assert list(tmp_path.iterdir()) == []
    keep = tmp_path / "old"
    keep.mkdir()
    (keep / "mine.txt").write_text("kept")
    code, _, err = run_cli("figures", "--out", keep)
    assert code == 130 and sorted(p.name for p in keep.iterdir()) == ["mine.txt"]


def _root():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]


DESIGN_PATH = str(_root() / DEMO_DESIGN)
STUDY_PATH = str(_root() / "studies" / "few_groups.toml")
