"""Simulation of hierarchical data: designs, seeds, truth names, distributions, errors."""

from pathlib import Path

import numpy as np
import pytest

import workbench
from workbench.errors import SpecError, WorkbenchError
from workbench.simulate import design_from_dict, generate, load_design, simulate, truth

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "studies" / "designs" / "demo.toml"


def base(**over):
    d = {
        "formula": "y ~ 1 + x + z + (1 + x | g)",
        "factors": {"g": {"levels": 12, "size": 8}},
        "predictors": {"x": {"level": "obs"}, "z": {"level": "g"}},
        "fixed": {"(Intercept)": 1.0, "x": 0.5, "z": -0.3},
        "random": {"g": {"terms": ["(Intercept)", "x"], "sd": [0.8, 0.3],
                         "cor": [[1.0, 0.4], [0.4, 1.0]]}},
        "residual": {"sd": 1.0},
    }
    d.update(over)
    return d


def test_demo_design_is_unbalanced_with_random_slopes():
    design = load_design(DEMO)
    data, true = simulate(design, 7)
    sizes = data.groupby("g").size()
    assert sizes.shape[0] == 30
    assert sizes.min() >= 5 and sizes.max() <= 40 and sizes.nunique() > 1
    assert list(data.columns) == ["g", "x", "z", "y"]
    # z is a level-2 predictor: constant within groups
    assert (data.groupby("g")["z"].nunique() == 1).all()
    assert true["sd[g:x]"] == 0.3 and true["cor[g:(Intercept),x]"] == 0.3
    assert true["var[g:(Intercept)]"] == pytest.approx(0.64)
    assert true["cov[g:(Intercept),x]"] == pytest.approx(0.3 * 0.8 * 0.3)


def test_seeds_int_and_generator_reproduce_and_leave_global_state_alone():
    design = design_from_dict(base())
    state = np.random.get_state()[1].copy()
    a, _ = simulate(design, 3)
    b, _ = simulate(design, np.random.default_rng(3))
    c, _ = simulate(design, 4)
    assert a.equals(b)
    assert not a["y"].equals(c["y"])
    np.random.seed(12345)  # global state must not matter
    d, _ = simulate(design, 3)
    assert a.equals(d)
    np.random.set_state(("MT19937", state, 0, 0, 0.0))
    with pytest.raises(SpecError):
        simulate(design, None)


def test_workbench_simulate_is_the_simulation_package():
    data, true = workbench.simulate.simulate(str(DEMO), 1)
    assert "y" in data and "sigma" in true
    assert workbench.simulate.load_design is load_design


def test_truth_names_are_the_fit_parameter_names():
    data, true = simulate(design_from_dict(base()), 11)
    fit = workbench.fit("y ~ 1 + x + z + (1 + x | g)", data)
    names = set(fit.params()["parameter"])
    assert names <= set(true)
    assert {"var[g:(Intercept)]", "var[g:x]", "cov[g:(Intercept),x]", "var[Residual]"} <= set(true)


def test_formula_order_names_the_correlation_and_missing_terms_are_zero():
    d = base(formula="y ~ 1 + x + (1 + x | g)", fixed={"(Intercept)": 1.0},
             random={"g": {"terms": ["x", "(Intercept)"], "sd": [0.3, 0.8]}})
    true = truth(design_from_dict(d))
    assert "cor[g:(Intercept),x]" in true and true["cor[g:(Intercept),x]"] == 0.0
    assert true["beta[x]"] == 0.0 and "beta[z]" not in true  # x: in the formula only
    d2 = base(formula="y ~ 1 + x + (1 + x | g)", random={})
    true2 = truth(design_from_dict(d2))
    assert true2["sd[g:(Intercept)]"] == 0.0 and true2["var[g:x]"] == 0.0


def test_random_effects_and_residuals_have_the_stated_covariance():
    # 4000 groups: the sample covariance of the drawn effects against the closed form
    d = base(factors={"g": {"levels": 4000, "size": 3}})
    design = design_from_dict(d)
    data, effects = generate(design, np.random.default_rng(5), effects=True)
    labels, b = effects["g"]
    assert labels[:3] == ["1", "2", "3"] and b.shape == (4000, 2)
    S = np.cov(b.T)
    se = np.array([[0.64, 0.096], [0.096, 0.09]]) * np.sqrt(2 / 4000) * 1.5 + 1e-3
    assert np.all(np.abs(S - [[0.64, 0.096], [0.096, 0.09]]) < 4 * se)
    # residual: y - fixed - random effects has sd 1
    g = data["g"].to_numpy() - 1
    e = data["y"] - (1.0 + 0.5 * data["x"] - 0.3 * data["z"] + b[g, 0] + b[g, 1] * data["x"])
    assert e.mean() == pytest.approx(0.0, abs=4 / np.sqrt(12000))
    assert e.var() == pytest.approx(1.0, abs=4 * np.sqrt(2 / 12000))


def test_balanced_random_intercept_variance_of_y():
    # var(y) = b_x^2 var(x) + sd_u^2 + sigma^2 for independent pieces
    d = {"formula": "y ~ 1 + x + (1 | g)", "factors": {"g": {"levels": 3000, "size": 4}},
         "predictors": {"x": {"distribution": "uniform", "low": 0.0, "high": 2.0}},
         "fixed": {"(Intercept)": 2.0, "x": 1.5}, "random": {"g": {"terms": ["(Intercept)"], "var": [0.5]}},
         "residual": {"var": 0.25}}
    data, true = simulate(design_from_dict(d), 9)
    expect = 1.5**2 * (4 / 12) + 0.5 + 0.25
    assert data["y"].var() == pytest.approx(expect, rel=0.05)
    assert data["y"].mean() == pytest.approx(2.0 + 1.5, abs=0.05)
    assert true["sd[g:(Intercept)]"] == pytest.approx(np.sqrt(0.5))
    assert true["sigma"] == pytest.approx(0.5)


def test_unbalanced_sizes_uniform_and_poisson():
    d = base(factors={"g": {"levels": 200, "size": {"low": 2, "high": 6}}})
    sizes = simulate(design_from_dict(d), 1)[0].groupby("g").size()
    assert sizes.min() == 2 and sizes.max() == 6
    d = base(factors={"g": {"levels": 300, "size": {"mean": 10, "min": 3}}})
    sizes = simulate(design_from_dict(d), 1)[0].groupby("g").size()
    assert sizes.min() >= 3 and sizes.mean() == pytest.approx(10, abs=0.6)


def test_nested_and_crossed_factors():
    d = {"formula": "y ~ 1 + (1 | school/class) + (1 | rater)",
         "factors": {"school": {"levels": 6}, "class": {"levels": 3, "nested_in": "school", "size": 4},
                     "rater": {"levels": 5, "crossed": True}},
         "fixed": {"(Intercept)": 0.0},
         "random": {"school": {"terms": ["(Intercept)"], "sd": [1.0]},
                    "class": {"terms": ["(Intercept)"], "sd": [0.5]},
                    "rater": {"terms": ["(Intercept)"], "sd": [0.2]}},
         "residual": {"sd": 1.0}}
    data, true = simulate(design_from_dict(d), 2)
    assert data.shape[0] == 6 * 3 * 4
    assert data["class"].nunique() == 18  # labels unique across schools
    assert (data.groupby("class")["school"].nunique() == 1).all()
    assert set(data["rater"]) <= set(range(1, 6))
    # the formula's (1 | school/class) names the class grouping 'class:school', as lme4
    assert true["sd[class:school:(Intercept)]"] == 0.5
    assert true["sd[school:(Intercept)]"] == 1.0 and true["sd[rater:(Intercept)]"] == 0.2


def test_known_sampling_sds_meta_analysis():
    d = {"formula": "y ~ 1 + (1 | study)", "factors": {"study": {"levels": 40, "size": 1}},
         "fixed": {"(Intercept)": 0.3}, "random": {"study": {"terms": ["(Intercept)"], "sd": [0.2]}},
         "residual": {"known_sd": {"column": "se", "low": 0.1, "high": 0.4}}}
    data, true = simulate(design_from_dict(d), 4)
    assert data["se"].between(0.1, 0.4).all()
    assert "sigma" not in true and "var[Residual]" not in true
    assert true["sd[study:(Intercept)]"] == 0.2


@pytest.mark.parametrize("edit, needle", [
    ({"residual": {"sd": 1.0, "bogus": 1}}, "residual.bogus: unknown key"),
    ({"factors": {"g": {"levels": "many", "size": 3}}}, "factors.g.levels"),
    ({"random": {"g": {"terms": ["(Intercept)"], "sd": [-1.0]}}}, "random.g"),
    ({"random": {"g": {"terms": ["(Intercept)", "x"], "sd": [1, 1], "cor": [[1, 2], [2, 1]]}}}, "cor"),
    ({"fixed": {"w": 1.0}}, "fixed.\"w\""),
    ({"residual": {"sd": 1.0, "var": 1.0}}, "exactly one of sd, var"),
    ({"factors": {"g": {"levels": 5}}}, "factors.g.size"),
    ({"predictors": {"x": {"level": "school"}}}, "predictors.x.level"),
])
def test_bad_design_names_the_key_and_the_file(tmp_path, edit, needle):
    d = base(**edit)
    path = tmp_path / "bad.toml"
    path.write_text(_to_toml(d))
    with pytest.raises(SpecError) as err:
        load_design(path)
    msg = str(err.value)
    assert str(path) in msg and needle in msg and "\n" not in msg


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_design(tmp_path / "nope.toml")
    bad = tmp_path / "broken.toml"
    bad.write_text("formula = \n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_design(bad)


def test_formula_that_does_not_fit_the_data_is_an_error():
    with pytest.raises(WorkbenchError, match="does not fit"):
        truth(design_from_dict(base(formula="y ~ 1 + w + (1 | g)")))


def test_cli_simulate_writes_data(tmp_path):
    from workbench.cli import main

    out = tmp_path / "d.csv"
    with pytest.raises(SystemExit) as ex:
        main(["simulate", str(DEMO), "--seed", "3", "--out", str(out)])
    assert ex.value.code in (0, None)
    import pandas as pd

    assert pd.read_csv(out).equals(simulate(load_design(DEMO), 3)[0])


def _to_toml(d: dict) -> str:
    """A tiny TOML writer for the test designs (inline tables)."""
    def val(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f'"{k}" = {val(x)}' for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, str):
            return f'"{v}"'
        return repr(v) if not isinstance(v, bool) else str(v).lower()
    return "\n".join(f'"{k}" = {val(v)}' for k, v in d.items()) + "\n"
