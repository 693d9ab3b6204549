"""The Bayesian arm of a study (slow: it samples)."""

import pytest

from workbench.study.run import run_study
from workbench.study.spec import load_study
from workbench.study.store import Store

from .conftest import STUDY, write_study


@pytest.mark.slow
def test_bayesian_arm_runs_with_group_effects_and_is_reproducible(tmp_path):
    study = STUDY.replace("replicates = 12", "replicates = 2\ngroup_effects = true").replace(
        '[methods.ml]\nmethod = "ml"',
        '[methods.bayes]\nmethod = "bayes"\noptions = { draws = 200, tune = 200, chains = 2, '
        'priors = { "sd[g]" = "HalfCauchy(1)" } }',
    ).replace('by = ["n_groups"]', 'by = ["n_groups"]\ncompare = ["reml", "bayes"]')
    spec = load_study(write_study(tmp_path, study))
    run_study(spec, tmp_path / "a", workers=0, progress=False)
    res = Store(tmp_path / "a").results()
    b = res[res["method"] == "bayes"]
    assert set(b["interval"]) == {"credible"}
    assert b["error"].isna().all() and b["divergences"].notna().all()
    assert (b["parameter"] == "b[g:(Intercept)]").sum() == 2 * (6 + 10)
    # same seed, same numbers, on a Dask cluster too
    run_study(spec, tmp_path / "b", workers=2, methods=["bayes"], progress=False)
    res2 = Store(tmp_path / "b").results()
    cols = ["estimate", "lower", "upper"]
    assert res2[cols].equals(b[cols].reset_index(drop=True))
