"""Study files: the shipped studies load; bad files fail before any work, naming file and key."""

from pathlib import Path

import pytest

from workbench.errors import SpecError
from workbench.study.spec import load_study

from .conftest import DESIGN, STUDY, write_study

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def test_maas_hox_study_has_the_published_design():
    s = load_study(STUDIES / "maas_hox_2005.toml")
    assert len(s.conditions) == 27 and s.spec.replicates == 1000
    cells = {(c.values["n_groups"], c.values["group_size"], c.values["icc"]): c for c in s.conditions}
    c = cells[(30, 5, 0.1)]
    assert c.design.factors["g"].levels == 30 and c.design.factors["g"].size == 5
    t = c.truth
    assert t["var[g:(Intercept)]"] == pytest.approx(0.1 * 0.5 / 0.9)
    assert t["var[g:X]"] == pytest.approx(0.1 * 0.5 / 0.9)
    assert t["cov[g:(Intercept),X]"] == 0.0 and t["var[Residual]"] == pytest.approx(0.5)
    assert t["beta[X:Z]"] == 0.3 and t["beta[(Intercept)]"] == 1.0
    assert cells[(100, 50, 0.3)].truth["var[g:X]"] == pytest.approx(0.3 * 0.5 / 0.7)
    assert s.spec.methods["reml"].options.get("nobound") is True
    assert set(s.parameters) == {"beta[(Intercept)]", "beta[X]", "beta[Z]", "beta[X:Z]",
                                 "var[g:(Intercept)]", "var[g:X]", "cov[g:(Intercept),X]",
                                 "var[Residual]"}


@pytest.mark.parametrize("name, n", [("few_groups", 5), ("equivalence", 12)])
def test_other_shipped_studies_load(name, n):
    s = load_study(STUDIES / f"{name}.toml")
    assert len(s.conditions) == n


ML_ARM = 'method = "ml"\noptions = { vc_se = "expected" }'


@pytest.mark.parametrize("edit, needle", [
    (("replicates = 12", "replicates = 12\nrepeats = 3"), "repeats: unknown key"),
    (("replicates = 12", "replicates = -1"), "replicates"),
    (("seed = 99", "seed = \"abc\""), "seed"),
    (('path = "factors.g.levels"', 'path = "factors.h.levels"'), "grid.n_groups.path"),
    (('method = "ml"', 'method = "mcmc"'), "methods.ml.method"),
    (('method = "ml"', 'method = "ml"\nintervals = ["credible"]'), "credible"),
    (('by = ["n_groups"]', 'by = ["icc"]'), "summary.by"),
    (("seed = 99", 'seed = 99\nparameters = ["sd[h:(Intercept)]"]'), "parameters"),
    (("values = [6, 10]", "values = [6, 0]"), "factors.g.levels"),
    ((ML_ARM, 'method = "ml"\noptions = { nobund = true }'), "nobund"),
    ((ML_ARM, 'method = "ml"\noptions = { level = 2.0 }'), "level"),
    # Wald intervals of variance components without their standard errors would be empty
    ((ML_ARM, 'method = "ml"'), "methods.ml: wald_var intervals"),
    ((ML_ARM, 'method = "ml"\nintervals = ["wald_sd"]'), "vc_se"),
])
def test_bad_study_fails_naming_file_and_key(tmp_path, edit, needle):
    old, new = edit
    assert old in STUDY
    path = write_study(tmp_path, STUDY.replace(old, new, 1))
    with pytest.raises(SpecError) as err:
        load_study(path)
    msg = str(err.value)
    assert needle in msg and "tiny" in msg and "\n" not in msg


def test_missing_design_file(tmp_path):
    path = write_study(tmp_path, STUDY.replace("tiny_design.toml", "nope.toml"))
    with pytest.raises(SpecError, match="nope.toml"):
        load_study(path)


def test_grid_set_axis_changes_several_fields(tmp_path):
    study = STUDY.replace(
        '[grid.n_groups]\npath = "factors.g.levels"\nvalues = [6, 10]',
        '[grid.icc]\nvalues = [0.2, 0.5]\nset = [{ "random.g.var" = [0.25], "residual.var" = 1.0 },'
        ' { "random.g.var" = [1.0], "residual.var" = 1.0 }]'
    ).replace('by = ["n_groups"]', 'by = ["icc"]')
    s = load_study(write_study(tmp_path, study, DESIGN))
    assert [c.truth["var[g:(Intercept)]"] for c in s.conditions] == [0.25, 1.0]
    assert all(c.truth["sigma"] == 1.0 for c in s.conditions)  # sd replaced by var


def test_shipped_sbc_study_loads():
    s = load_study(STUDIES / "sbc.toml")
    assert s.spec.truth == "prior" and s.spec.sbc_thin_to == 99 and s.spec.replicates == 1000
    assert [c.values["layout"] for c in s.conditions] == ["10x5", "40x10"]
    assert s.parameters == ["beta[(Intercept)]", "beta[x]", "sd[g:(Intercept)]", "sd[g:x]",
                            "cor[g:(Intercept),x]", "sigma"]
    arms = s.spec.methods
    assert {m.method for m in arms.values()} == {"bayes"}
    assert arms["mismatched"].truth_priors == {} and arms["default"].truth_priors is None
    manifest = s.manifest()
    assert manifest["truth"] == "prior" and manifest["thin_to"] == 99
    assert "truth_priors" not in manifest["methods"]["default"]


def test_a_study_with_a_fixed_truth_keeps_its_manifest():
    # no SBC keys, so directories written before truth = "prior" existed still resume
    m = load_study(STUDIES / "few_groups.toml").manifest()
    assert "truth" not in m and "thin_to" not in m
    assert all("truth_priors" not in arm for arm in m["methods"].values())
