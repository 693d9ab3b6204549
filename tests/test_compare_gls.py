"""compare() with the other GLS traditions: feasible GLS (plm), IGLS/RIGLS and nlme's GLS with a
residual correlation structure, each a column with its own parameters and interval sources;
values checked against plm and nlme (tests/reference/gls, made by make_reference.R there)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

import workbench
from workbench.compare import compare, display_name, structure_params

REF_DIR = Path(__file__).resolve().parent / "reference" / "gls"
GLS_REF = json.loads((REF_DIR / "gls_reference.json").read_text())
FGLS_REF = json.loads((REF_DIR / "fgls_reference.json").read_text())


def rel(a, b):
    return abs(a - b) / abs(b)


@pytest.fixture(scope="module")
def orthodont():
    return pd.read_csv(REF_DIR / "orthodont.csv")


@pytest.fixture(scope="module")
def sleep_panel():
    entry = FGLS_REF["panels"]["sleepstudy"]
    return entry, pd.read_csv(REF_DIR / entry["csv"])


def cell(comp, parameter, method, column="estimate"):
    p = comp.parameters
    hit = p[(p["parameter"] == parameter) & (p["method"] == method)]
    assert len(hit) == 1, (parameter, method, p[["parameter", "method"]])
    return hit.iloc[0][column]


def test_cs_gls_column_has_nlmes_rho_and_interval(orthodont):
    case = GLS_REF["cases"]["orthodont_cs"]
    ref = case["fits"]["REML"]
    re = workbench.fit("distance ~ age + (1 | Subject)", orthodont)
    cs = workbench.fit(case["formula"], orthodont, correlation=case["correlation"])
    comp = compare(re, cs)
    assert comp.methods == ["reml", "reml cs"]
    assert rel(cell(comp, "corstruct[Rho]", "reml cs"), ref["param"]) < 1e-5
    for got, want in zip((cell(comp, "corstruct[Rho]", "reml cs", "lower"),
                          cell(comp, "corstruct[Rho]", "reml cs", "upper")), ref["param_ci"]):
        assert rel(got, want) < 1e-4
    assert rel(cell(comp, "sigma", "reml cs"), ref["sigma"]) < 1e-5
    # the same model: equal fixed effects and SEs in both columns
    for k in ("(Intercept)", "age"):
        assert rel(cell(comp, f"beta[{k}]", "reml"), ref["beta"][k]) < 1e-5
        assert rel(cell(comp, f"beta[{k}]", "reml", "se"), ref["beta_se"][k]) < 1e-5
    # structure rows are variance-table rows without a variance; the reml column has no Rho
    vc = comp.variance_components
    rho = vc[vc["parameter"] == "corstruct[Rho]"]
    assert list(rho["method"]) == ["reml cs"] and rho["variance"].isna().all()
    wide = comp.side_by_side().set_index("parameter")
    assert wide.loc["corstruct[Rho]", "reml"] == ""
    assert wide.loc["corstruct[Rho]", "reml cs"].startswith(f"{ref['param']:.3f} [")


def test_fgls_igls_rigls_columns(sleep_panel):
    entry, d = sleep_panel
    fits = [workbench.fit(entry["formula"], d, method=m) for m in ("reml", "ml", "igls", "rigls")]
    fits.append(workbench.fit(entry["formula"], d, method="fgls", fgls="amemiya"))
    comp = compare(*fits)
    assert comp.methods == ["reml", "ml", "igls", "rigls", "fgls"]
    plm = entry["fits"]["amemiya"]
    assert rel(cell(comp, "sd[Subject:(Intercept)]", "fgls") ** 2, plm["sigma2_id"]) < 1e-9
    assert rel(cell(comp, "sigma", "fgls") ** 2, plm["sigma2_idios"]) < 1e-9
    for k, v in plm["beta"].items():
        assert rel(cell(comp, f"beta[{k}]", "fgls"), v) < 1e-9
        assert rel(cell(comp, f"beta[{k}]", "fgls", "se"), plm["beta_se"][k]) < 1e-7
    # IGLS converges to the ML fit, RIGLS to the REML fit
    for a, b in (("igls", "ml"), ("rigls", "reml")):
        for name in ("beta[Days]", "sd[Subject:(Intercept)]", "sigma"):
            assert rel(cell(comp, name, a), cell(comp, name, b)) < 1e-6
    notes = comp.interval_notes()
    assert "fgls: Wald 95% intervals, FGLS standard errors" in notes
    assert "igls: Wald 95% intervals, ML (IGLS) standard errors" in notes
    assert "rigls: Wald 95% intervals, REML (RIGLS) standard errors" in notes
    ge = comp.group_effects
    assert set(ge["method"]) == set(comp.methods)


def test_display_name_and_labels(orthodont):
    cs = workbench.fit("distance ~ age", orthodont, method="ml", correlation="cs(~ 1 | Subject)")
    assert display_name(cs) == "ml cs"
    labelled = workbench.fit("distance ~ age", orthodont, correlation="ar1(~ 1 | Subject)",
                             label="AR(1)")
    assert display_name(labelled) == "AR(1)"
    rows = structure_params(labelled)
    assert list(rows["parameter"]) == ["corstruct[Phi]"]
    assert math.isfinite(rows["lower"].iloc[0]) and rows["interval"].iloc[0] == "wald"
    plain = workbench.fit("distance ~ age + (1 | Subject)", orthodont)
    assert structure_params(plain).empty and display_name(plain) == "reml"


def test_structure_names_round_trip():
    from workbench import names

    n = names.structure("corstruct", "Rho")
    assert n == "corstruct[Rho]" and names.kind(n) == "corstruct"
    p = names.parse("varstruct[power]")
    assert p.kind == "varstruct" and p.terms == ("power",) and str(p) == "varstruct[power]"
    with pytest.raises(workbench.errors.ParameterNameError):
        names.structure("bogus", "Rho")
