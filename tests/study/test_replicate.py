"""Turning a fit into result rows: interval kinds on the variance and sd scales; seeds."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from workbench.study.replicate import fit_values, replicate_rng, sampler_seed

Z = 1.959963984540054


def fake_fit(var_params=None, sdcor_ci=None):
    varcorr = [
        {"grp": "g", "var1": "(Intercept)", "var2": None, "vcov": 0.25, "sdcor": 0.5,
         "sdcor_ci": sdcor_ci},
        {"grp": "g", "var1": "x", "var2": None, "vcov": 0.04, "sdcor": 0.2, "sdcor_ci": None},
        {"grp": "g", "var1": "(Intercept)", "var2": "x", "vcov": 0.01, "sdcor": 0.1, "sdcor_ci": None},
        {"grp": "Residual", "var1": None, "var2": None, "vcov": 1.0, "sdcor": 1.0, "sdcor_ci": None},
    ]
    return SimpleNamespace(beta={"(Intercept)": 1.0}, beta_se={"(Intercept)": 0.1},
                           beta_ci={"(Intercept)": [0.8, 1.2]}, varcorr=varcorr,
                           state=SimpleNamespace(var_params=var_params),
                           diagnostics={}, converged=True, singular=False)


VP = {"var[g:(Intercept)]": {"estimate": 0.25, "se": 0.1},
      "var[g:x]": {"estimate": -0.01, "se": 0.02},          # nobound: a negative variance
      "cov[g:(Intercept),x]": {"estimate": 0.01, "se": 0.03},
      "var[Residual]": {"estimate": 1.0, "se": 0.2}}


def test_wald_on_the_variance_scale_uses_the_variance_ses():
    v = fit_values(fake_fit(VP), "wald_var")
    assert v["beta[(Intercept)]"] == (1.0, 0.1, 0.8, 1.2)
    est, se, lo, hi = v["var[g:(Intercept)]"]
    assert (est, se) == (0.25, 0.1) and lo == pytest.approx(0.25 - Z * 0.1)
    est, se, lo, hi = v["var[g:x]"]
    assert est == -0.01 and hi == pytest.approx(-0.01 + Z * 0.02)
    assert v["cov[g:(Intercept),x]"][2] == pytest.approx(0.01 - Z * 0.03)
    # the sd interval is the square root of the variance interval
    _, sdse, slo, shi = v["sd[g:(Intercept)]"]
    assert sdse == pytest.approx(0.1 / (2 * 0.5))
    assert slo == pytest.approx(math.sqrt(0.25 - Z * 0.1)) and shi == pytest.approx(math.sqrt(0.25 + Z * 0.1))
    assert math.isnan(v["cor[g:(Intercept),x]"][2])


def test_wald_on_the_sd_scale_by_the_delta_method():
    v = fit_values(fake_fit(VP), "wald_sd")
    est, se, lo, hi = v["sigma"]
    assert se == pytest.approx(0.2 / 2) and lo == pytest.approx(1 - Z * 0.1)
    _, _, vlo, vhi = v["var[Residual]"]
    assert vlo == pytest.approx((1 - Z * 0.1) ** 2) and vhi == pytest.approx((1 + Z * 0.1) ** 2)


def test_recorded_intervals_and_missing_variance_ses():
    v = fit_values(fake_fit(None, sdcor_ci=[0.3, 0.8]), "profile")
    assert v["sd[g:(Intercept)]"][2:] == (0.3, 0.8)
    assert v["var[g:(Intercept)]"][2:] == pytest.approx((0.09, 0.64))
    w = fit_values(fake_fit(None), "wald_var")
    assert w["var[g:(Intercept)]"][0] == 0.25 and math.isnan(w["var[g:(Intercept)]"][2])


def test_replicate_seeds_depend_only_on_seed_condition_replicate():
    a = replicate_rng(7, 2, 5).standard_normal(3)
    assert np.array_equal(a, replicate_rng(7, 2, 5).standard_normal(3))
    assert not np.array_equal(a, replicate_rng(7, 5, 2).standard_normal(3))
    assert sampler_seed(7, 2, 5) == sampler_seed(7, 2, 5) != sampler_seed(7, 2, 6)


def test_profile_kind_uses_profile_likelihood_limits():
    import workbench
    from workbench.reml.profile import profile_ci
    from workbench.simulate import design_from_dict, simulate
    from workbench.study.replicate import profile_intervals

    d = {"formula": "y ~ 1 + (1 | g)", "factors": {"g": {"levels": 8, "size": 6}},
         "fixed": {"(Intercept)": 1.0}, "random": {"g": {"terms": ["(Intercept)"], "sd": [0.8]}},
         "residual": {"sd": 1.0}}
    data, _ = simulate(design_from_dict(d), 3)
    fit = workbench.fit("y ~ 1 + (1 | g)", data)
    prof = profile_intervals(fit, ["sd[g:(Intercept)]", "var[g:(Intercept)]"], 0.95)
    ref = profile_ci(fit, parameters=["sd[g:(Intercept)]"]).iloc[0]
    assert prof["sd[g:(Intercept)]"] == pytest.approx((ref.lower, ref.upper))
    v = fit_values(fit, "profile", 0.95, prof)
    assert v["sd[g:(Intercept)]"][2:] == pytest.approx((ref.lower, ref.upper))
    assert v["var[g:(Intercept)]"][2:] == pytest.approx((ref.lower ** 2, ref.upper ** 2))
    assert ref.lower < fit.varcorr[0]["sdcor"] < ref.upper


def test_maas_hox_reml_arm_gives_variance_scale_wald_intervals():
    from pathlib import Path

    from workbench.study.replicate import run_batch
    from workbench.study.run import make_task
    from workbench.study.spec import load_study

    study = load_study(Path(__file__).resolve().parents[2] / "studies" / "maas_hox_2005.toml")
    c = study.conditions[0]  # 30 groups of 5, ICC 0.1
    rows = run_batch(make_task(study, c, "reml", [0, 1], study.spec.seed))
    assert rows["error"].isna().all() and rows.shape[0] == 2 * 8
    v = rows[rows["parameter"].str.startswith(("var[", "cov["))]
    assert np.isfinite(v[["estimate", "se", "lower", "upper"]].to_numpy()).all()
    assert np.allclose(v["upper"] - v["estimate"], Z * v["se"])
    assert np.allclose(v["estimate"] - v["lower"], Z * v["se"])


def test_tasks_carry_every_field_and_group_effect_rows_are_named(tmp_path):
    """One task builder (plan and preflight alike); b[GROUP:TERM] rows against the drawn effects."""
    import dataclasses

    from workbench.study.replicate import Task, run_batch
    from workbench.study.run import make_task, plan_tasks
    from workbench.study.spec import load_study

    from .conftest import STUDY, write_study

    study = load_study(write_study(tmp_path, STUDY.replace("replicates = 12",
                                                           "replicates = 2\ngroup_effects = true")))
    tasks = plan_tasks(study, ["reml"], 2, study.spec.seed, {})
    assert all(isinstance(t, Task) for t in tasks)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tasks[0].seed = 1
    c = study.conditions[0]
    assert make_task(study, c, "reml", [0, 1], study.spec.seed) == tasks[0]
    assert tasks[0].group_effects is True and tasks[0].groups == {"g": "g"}
    rows = run_batch(tasks[0])
    b = rows[rows["parameter"] == "b[g:(Intercept)]"]
    levels = c.design.factors["g"].levels
    assert rows["error"].isna().all()
    assert len(b) == 2 * levels * len(tasks[0].spec["intervals"])
    assert b["truth"].notna().all() and b["estimate"].notna().all()
