"""workbench demo: the plumbing with a stand-in Bayesian fit (fast), the real run (slow)."""

import dataclasses

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import workbench.api  # noqa: E402
from workbench.jobs import run_demo  # noqa: E402

EXPECTED = {"data.csv", "fits.json", "parameters.csv", "parameters.md", "parameters.tex",
            "group_effects.csv", "variance_components.csv", "side_by_side.csv",
            "fig1_shrinkage.png", "fig2_group_intervals.pdf", "fig3_fixed_intervals.png",
            "fig4_variance_components.png"}


def test_demo_plumbing(tmp_path, monkeypatch):
    """Every output is written and the printed table carries truth and all three methods."""
    real_fit = workbench.api.fit

    def fake(formula, data, method="reml", **options):
        if method != "bayes":
            return real_fit(formula, data, method=method, **options)
        f = real_fit(formula, data, method="reml")
        ranef = [dict(r, lower=r["value"] - 2 * r["cond_sd"], upper=r["value"] + 2 * r["cond_sd"])
                 for r in f.ranef]
        return dataclasses.replace(f, method="bayes", interval="credible", ranef=ranef,
                                   criterion=None, loglik=None,
                                   diagnostics={"max_rhat": 1.0, "divergences": 0})

    monkeypatch.setattr(workbench.api, "fit", fake)
    lines = []
    res = run_demo(tmp_path / "out", seed=3, echo=lines.append)
    names = {p.name for p in res["files"]}
    assert EXPECTED <= names
    assert all((tmp_path / "out" / n).stat().st_size > 0 for n in EXPECTED)
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left behind
    table = res["table"]
    assert list(table.columns) == ["parameter", "truth", "reml", "ml", "bayes"]
    assert table.loc[table.parameter == "beta[x]", "truth"].iloc[0] == "0.500"
    printed = "\n".join(lines)
    assert "sd[g:(Intercept)]" in printed and "bayes" in printed
    back = pd.read_csv(tmp_path / "out" / "side_by_side.csv")
    assert "truth" in back.columns and len(back) == len(table)


@pytest.mark.slow
def test_demo_real_bayes(tmp_path):
    """The real demo: PyMC compile and sampling; posterior means near REML on this design."""
    res = run_demo(tmp_path / "out", seed=1, progress=False, echo=lambda *a: None)
    reml, bayes = res["fits"]["reml"], res["fits"]["bayes"]
    assert bayes.diagnostics["max_rhat"] < 1.02
    for k, v in reml.beta.items():
        assert abs(bayes.beta[k] - v) < 0.5 * reml.beta_se[k]
    assert EXPECTED <= {p.name for p in res["files"]}
