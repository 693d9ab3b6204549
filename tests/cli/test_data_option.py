"""``--data`` takes a data file or a built-in data set's name; a file that exists wins."""

import json

import pandas as pd
import pytest


def test_fit_by_builtin_name(run_cli, lme4_reference):
    code, out, err = run_cli("fit", "Yield ~ 1 + (1 | Batch)", "--data", "dyestuff", "--json", "-")
    assert code == 0, err
    assert json.loads(out)["criterion"] == pytest.approx(lme4_reference["dyestuff"]["REML"]["deviance"],
                                                         rel=1e-6)


def test_an_existing_file_wins_over_a_name(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = pd.Series(range(12))
    pd.DataFrame({"Yield": (rng * 7 % 5).astype(float) + (rng // 3), "Batch": rng // 3}).to_csv(
        tmp_path / "Dyestuff", index=False)
    code, out, err = run_cli("fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff", "--json", "-")
    assert code == 0, err
    assert json.loads(out)["nobs"] == 12


def test_neither_file_nor_name_says_both(run_cli, one_line_error, tmp_path):
    code, _, err = run_cli("fit", "y ~ 1 + (1 | g)", "--data", "sleepstudies")
    one_line_error(code, err, "'sleepstudies' does not exist", "not a built-in data set", "sleepstudy")
