"""The Bayesian arm of a study (slow: it samples)."""

import pytest

from workbench.study.run import run_study
from workbench.study.spec import load_study
from workbench.study.store import CHUNK_RE, Store

from .conftest import STUDY, write_study


@pytest.mark.slow
def test_bayesian_arm_runs_with_group_effects_and_is_reproducible(tmp_path):
    study = STUDY.replace("replicates = 12", "replicates = 2\ngroup_effects = true").replace(
        '[methods.ml]\nmethod = "ml"\noptions = { vc_se = "expected" }',
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


BAYES_STUDY = STUDY.replace("replicates = 12", "replicates = 4").replace(
    "values = [6, 10]", "values = [6]").replace(
    '[methods.ml]\nmethod = "ml"\noptions = { vc_se = "expected" }',
    '[methods.bayes]\nmethod = "bayes"\noptions = { draws = 100, tune = 100, chains = 2 }',
)


def test_bayesian_rows_identical_after_other_fits_and_a_resume(tmp_path):
    """The Bayesian arm's rows are a pure function of the study: the same in a fresh run, in a
    run whose process had compiled its models on other data of the same shapes, and after
    chunks are lost and the run resumed."""
    from workbench.bayes.cache import clear_cache

    from .conftest import comparable

    spec = load_study(write_study(tmp_path, BAYES_STUDY))
    other = tmp_path / "other"
    other.mkdir()
    other_spec = load_study(write_study(other, BAYES_STUDY.replace("seed = 99", "seed = 7")))
    clear_cache()
    run_study(spec, tmp_path / "a", workers=0, progress=False)
    first = comparable(Store(tmp_path / "a").results())
    # compile the models on another study's data, then rerun: the cached models are reused
    clear_cache()
    run_study(other_spec, tmp_path / "c", workers=0, progress=False)
    run_study(spec, tmp_path / "b", workers=0, progress=False)
    assert comparable(Store(tmp_path / "b").results()).equals(first)
    # lose half the finished chunks (an interrupted run), then resume
    chunks = sorted((tmp_path / "b" / "chunks").glob("*.parquet"))
    lost = 0
    for p in chunks[::2]:
        start, stop = CHUNK_RE.match(p.name).group(3, 4)
        lost += int(stop) - int(start) + 1  # replicates first..last
        p.unlink()
    report = run_study(spec, tmp_path / "b", workers=0, progress=False)
    assert lost > 0 and report.fits == lost
    assert comparable(Store(tmp_path / "b").results()).equals(first)
