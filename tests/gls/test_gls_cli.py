"""The CLI's --method fgls / igls / rigls and --fgls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main

REF_DIR = Path(__file__).resolve().parents[1] / "reference" / "gls"
REF = json.loads((REF_DIR / "fgls_reference.json").read_text())


def run(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return (0 if info.value.code is None else info.value.code), out, err


def test_cli_fgls_json_equals_plm(capsys):
    entry = REF["panels"]["empluk"]
    code, out, err = run(capsys, "fit", entry["formula"], "--data", REF_DIR / "empluk.csv",
                         "--method", "fgls", "--fgls", "amemiya", "--json", "-")
    assert code == 0, err
    rec = json.loads(out)
    ref = entry["fits"]["amemiya"]
    assert rec["method"] == "fgls" and rec["diagnostics"]["fgls"]["estimator"] == "amemiya"
    for k, v in ref["beta"].items():
        assert rec["beta"][k] == pytest.approx(v, rel=1e-9)


def test_cli_fgls_summary_names_the_estimator(capsys):
    entry = REF["panels"]["grunfeld"]
    code, out, err = run(capsys, "fit", entry["formula"], "--data", REF_DIR / "grunfeld.csv",
                         "--method", "fgls")
    assert code == 0, err
    assert out.startswith("Linear mixed model fit by feasible GLS (swar)")


@pytest.mark.parametrize("args,needle", [
    (["--fgls", "walhus"], "--fgls applies only to --method fgls"),
    (["--method", "fgls", "--ci", "profile"], "--ci profile applies to --method reml or ml"),
])
def test_cli_gls_errors(capsys, args, needle):
    code, out, err = run(capsys, "fit", "Reaction ~ Days + (1 | Subject)", "--data", "sleepstudy",
                         *args)
    assert code != 0
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1 and needle in lines[0], err
    assert "Traceback" not in err


def test_cli_fgls_random_slopes_is_one_error(capsys):
    code, out, err = run(capsys, "fit", "Reaction ~ Days + (Days | Subject)", "--data",
                         "sleepstudy", "--method", "fgls")
    assert code == 1, err
    assert "error: method 'fgls' covers random intercepts only" in err
    assert "Traceback" not in err and out == ""


def test_cli_rigls_json_keeps_the_trace(capsys):
    code, out, err = run(capsys, "fit", "Reaction ~ Days + (Days | Subject)", "--data",
                         "sleepstudy", "--method", "rigls", "--json", "-")
    assert code == 0, err
    rec = json.loads(out)
    assert rec["method"] == "rigls" and rec["converged"]
    it = rec["diagnostics"]["iterations"]
    assert it[-1]["criterion"] == pytest.approx(rec["criterion"], rel=1e-15)
    assert rec["criterion"] == pytest.approx(1743.62827195849, rel=1e-9)  # lme4's REML criterion


def test_cli_igls_summary(capsys):
    code, out, err = run(capsys, "fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff",
                         "--method", "igls")
    assert code == 0, err
    assert out.startswith("Linear mixed model fit by iterated GLS (IGLS, maximum likelihood)")
    assert "deviance" in out


def test_cli_correlation(capsys):
    ref = json.loads((REF_DIR / "gls_reference.json").read_text())["cases"]["orthodont_cs"]
    code, out, err = run(capsys, "fit", ref["formula"], "--data", REF_DIR / "orthodont.csv",
                         "--correlation", ref["correlation"], "--json", "-")
    assert code == 0, err
    rec = json.loads(out)
    assert rec["diagnostics"]["corstruct"]["Rho"] == pytest.approx(ref["fits"]["REML"]["param"],
                                                                   rel=1e-5)
    code, out, err = run(capsys, "fit", ref["formula"], "--data", REF_DIR / "orthodont.csv",
                         "--correlation", ref["correlation"])
    assert code == 0, err
    assert "Correlation structure: cs(~ 1 | Subject), Rho = 0.6857" in out
    code, out, err = run(capsys, "fit", ref["formula"], "--data", REF_DIR / "orthodont.csv",
                         "--correlation", "cs(Subject)")
    assert code == 1 and err.startswith("error: cannot read correlation") and out == ""


def test_cli_variance_and_combined_structure(capsys):
    refs = json.loads((REF_DIR / "gls_structures.json").read_text())["cases"]
    c = refs["orthodont_symm_ident"]
    code, out, err = run(capsys, "fit", c["formula"], "--data", REF_DIR / "orthodont.csv",
                         "--method", "ml", "--correlation", c["correlation"],
                         "--variance", c["variance"], "--json", "-")
    assert code == 0, err
    rec = json.loads(out)
    ref = c["fits"]["ML"]
    assert rec["loglik"] == pytest.approx(ref["logLik"], abs=1e-6)
    assert rec["diagnostics"]["varstruct"]["12"] == pytest.approx(ref["varstruct"]["12"],
                                                                  rel=1e-5)
    c = refs["dialyzer_power"]
    code, out, err = run(capsys, "fit", c["formula"], "--data", REF_DIR / "dialyzer.csv",
                         "--variance", c["variance"])
    assert code == 0, err
    assert "Variance function: power(~ pressure), power = 0.3502" in out
    code, out, err = run(capsys, "fit", c["formula"], "--data", REF_DIR / "dialyzer.csv",
                         "--variance", "power(pressure)")
    assert code == 1 and err.startswith("error: cannot read variance") and out == ""
    code, out, err = run(capsys, "fit", c["formula"], "--data", REF_DIR / "dialyzer.csv",
                         "--variance", "power(~ QB)", "--method", "igls")
    assert code == 1 and err.startswith("error: variance= needs method") and out == ""


# the hand-computed hierarchy of tests/gls/test_reconcile.py: total = a + b
RECONCILE_S = "series,a,b\ntotal,1,1\na,1,0\nb,0,1\n"


def test_cli_reconcile_equals_the_api(capsys, tmp_path):
    """Series matched by name (the base table in another order), horizons as columns; the
    hand-computed OLS and WLS answers of test_reconcile.py for the first horizon."""
    (tmp_path / "S.csv").write_text(RECONCILE_S)
    (tmp_path / "base.csv").write_text("series,h1,h2\nb,5,6\ntotal,10,11\na,4,4\n")
    code, out, err = run(capsys, "reconcile", tmp_path / "base.csv", "--summing",
                         tmp_path / "S.csv")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0] == "series,h1,h2" and [ln.split(",")[0] for ln in lines[1:]] == \
        ["total", "a", "b"]
    got = [float(ln.split(",")[1]) for ln in lines[1:]]
    assert got == pytest.approx([29 / 3, 13 / 3, 16 / 3], rel=1e-12)
    out_file = tmp_path / "rec.csv"
    code, _, err = run(capsys, "reconcile", tmp_path / "base.csv", "-S", tmp_path / "S.csv",
                       "--method", "wls_struct", "--out", out_file)
    assert code == 0, err
    col = [float(ln.split(",")[1]) for ln in out_file.read_text().strip().splitlines()[1:]]
    assert col == pytest.approx([9.5, 4.25, 5.25], rel=1e-12)


def test_cli_reconcile_errors_are_plain(capsys, tmp_path):
    (tmp_path / "S.csv").write_text(RECONCILE_S)
    (tmp_path / "base.csv").write_text("series,h1\ntotal,10\na,4\nc,5\n")
    code, out, err = run(capsys, "reconcile", tmp_path / "base.csv", "-S", tmp_path / "S.csv")
    assert code != 0 and out == ""
    assert err.strip() == ("error: series 'b' is not in the base table: the base table and the "
                           "summing matrix must list the same series")
    (tmp_path / "base.csv").write_text("series,h1\ntotal,10\na,4\nb,5\n")
    code, out, err = run(capsys, "reconcile", tmp_path / "base.csv", "-S", tmp_path / "S.csv",
                         "--method", "mint_shrink", "--out", tmp_path / "x.csv")
    assert code != 0 and "needs the in-sample residuals" in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()
