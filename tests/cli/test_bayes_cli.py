"""``workbench fit --method bayes``: bad options fail before sampling; end to end is slow."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

@pytest.fixture(scope="module")
def grouped_csv(tmp_path_factory):
    rng = np.random.default_rng(2024)
    g = np.repeat(np.arange(12), 8)
    x = rng.normal(size=g.size)
    y = 1.0 + 0.5 * x + rng.normal(0, 0.8, 12)[g] + rng.normal(0, 1.0, g.size)
    path = tmp_path_factory.mktemp("bayes") / "grouped.csv"
    pd.DataFrame({"y": y, "x": x, "g": g}).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_bayes_fit_summary_and_json(run_cli, grouped_csv, tmp_path):
    pytest.importorskip("workbench.bayes.fit")
    target = tmp_path / "bayes.json"
    code, out, err = run_cli("fit", "y ~ 1 + x + (1 | g)", "-d", grouped_csv, "--method", "bayes",
                             "--seed", 7, "--draws", 300, "--tune", 300, "--chains", 2,
                             "--prior", "sd=HalfNormal(2)", "--json", target)
    assert code == 0, err
    assert out.startswith("Bayesian linear mixed model fit by PyMC")
    assert "Priors:" in out and "HalfNormal(2)" in out
    assert "Diagnostics: max R-hat" in out
    rec = json.loads(target.read_text())
    assert rec["method"] == "bayes" and rec["criterion"] is None
    for key in ("max_rhat", "min_ess_bulk", "divergences"):
        assert key in rec["diagnostics"]
    for w in rec["diagnostics"].get("warnings", []):
        assert f"warning: {w}" in out

    # The same seed gives the same record; --json - puts only the record on stdout.
    code, out2, err2 = run_cli("fit", "y ~ 1 + x + (1 | g)", "-d", grouped_csv, "--method", "bayes",
                               "--seed", 7, "--draws", 300, "--tune", 300, "--chains", 2,
                               "--prior", "sd=HalfNormal(2)", "--json", "-")
    assert code == 0, err2
    again = json.loads(out2)
    assert again["beta"] == pytest.approx(rec["beta"], rel=1e-10)


def test_bad_prior_fails_before_sampling(run_cli, one_line_error, grouped_csv):
    pytest.importorskip("workbench.bayes.fit")
    code, _, err = run_cli("fit", "y ~ 1 + x + (1 | g)", "-d", grouped_csv, "--method", "bayes",
                           "--prior", "sd=Banana(3)")
    one_line_error(code, err, "Banana")
