"""Monte Carlo summaries: hand-computed values, MCSEs that match the spread across studies."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from workbench.study.summary import (method_differences, noncoverage_table, performance,
                                     summarize_results, summary_records)


def test_performance_matches_hand_computation():
    est = np.array([1.0, 2.0, 3.0, 4.0])
    se = np.array([1.0, 1.0, 2.0, 2.0])
    lower = np.array([0.0, 2.5, 1.0, 2.1])
    upper = np.array([2.0, 3.0, 5.0, 6.0])
    r = performance(est, se, lower, upper, 2.0)
    s = np.std(est, ddof=1)  # 1.29099
    assert r["n"] == 4
    assert r["mean"] == 2.5 and r["bias"] == 0.5
    assert r["bias_mcse"] == pytest.approx(s / 2)
    assert r["rel_bias"] == 0.25 and r["rel_bias_mcse"] == pytest.approx(s / 4)
    assert r["empse"] == pytest.approx(s) and r["empse_mcse"] == pytest.approx(s / math.sqrt(6))
    # squared errors 1, 0, 1, 4: MSE 1.5; MCSE sqrt(((-.5)^2 + 1.5^2 + .5^2 + 2.5^2) / 12)
    assert r["rmse"] == pytest.approx(math.sqrt(1.5))
    assert r["rmse_mcse"] == pytest.approx(math.sqrt(9 / 12) / (2 * math.sqrt(1.5)))
    assert r["model_se"] == pytest.approx(math.sqrt(2.5))
    # covered: [0,2] yes, [2.5,3] no, [1,5] yes, [2.1,6] no
    assert r["coverage"] == 0.5 and r["coverage_mcse"] == pytest.approx(math.sqrt(0.25 / 4))
    assert r["width"] == pytest.approx(np.mean([2, 0.5, 4, 3.9]))
    assert r["n_intervals"] == 4


def test_missing_estimates_and_zero_truth():
    r = performance(np.array([np.nan, 1.0, -1.0]), np.full(3, np.nan), np.full(3, np.nan),
                    np.full(3, np.nan), 0.0)
    assert r["n"] == 2 and r["bias"] == 0.0
    assert math.isnan(r["rel_bias"]) and math.isnan(r["coverage"]) and r["n_intervals"] == 0


def test_mcse_agrees_with_the_spread_over_repeated_studies():
    # 3000 studies of 200 replicates: estimates N(truth + 0.1, 1), Wald intervals with a slightly
    # small SE.  The MCSEs must match the sd of the measures across studies.
    rng = np.random.default_rng(1)
    truth, n, studies = 2.0, 200, 3000
    est = truth + 0.1 + rng.standard_normal((studies, n))
    half = 1.96 * 0.9
    res = [performance(e, np.full(n, 0.9), e - half, e + half, truth) for e in est]
    for m in ("bias", "coverage", "rmse", "empse"):
        values = np.array([r[m] for r in res])
        mcse = np.mean([r[f"{m}_mcse"] for r in res])
        assert mcse == pytest.approx(values.std(ddof=1), rel=0.08), m


def _results():
    rows = []
    rng = np.random.default_rng(0)
    for cid in range(4):
        for rep in range(50):
            est = 1.0 + rng.standard_normal() * (0.5 if cid < 2 else 0.2)
            rows.append({"condition": cid, "replicate": rep, "method": "reml", "interval": "wald_var",
                         "parameter": "beta[x]", "level": None, "truth": 1.0, "estimate": est,
                         "se": 0.3, "lower": est - 0.6, "upper": est + 0.6, "converged": rep % 10 != 0,
                         "singular": rep % 5 == 0, "divergences": np.nan, "fit_time": 0.01,
                         "error": None})
    manifest = {"name": "x", "axes": ["n_groups", "icc"], "parameters": ["beta[x]"],
                "conditions": [{"id": i, "values": {"n_groups": [10, 10, 50, 50][i],
                                                    "icc": [0.1, 0.2, 0.1, 0.2][i]}} for i in range(4)]}
    return pd.DataFrame(rows), manifest


def test_summary_rates_and_json_rows():
    results, manifest = _results()
    s = summarize_results(results, manifest)
    assert s.shape[0] == 4
    assert (s["nonconvergence_rate"] == 0.1).all() and (s["singular_rate"] == 0.2).all()
    rows = summary_records(s, manifest)
    json.dumps(rows)  # serialisable
    assert rows[0]["condition"] == {"n_groups": 10, "icc": 0.1}
    assert rows[0]["method"] == "reml" and rows[0]["parameter"] == "beta[x]"
    assert {"bias", "bias_mcse", "rmse", "coverage", "coverage_mcse", "width"} <= set(rows[0])
    assert rows[0]["rel_bias"] is not None and rows[0]["divergence_rate"] is None


def test_noncoverage_pooled_by_axis():
    results, manifest = _results()
    t = noncoverage_table(results, manifest, "n_groups")
    miss = ~((results["lower"] <= 1.0) & (1.0 <= results["upper"]))
    for ng, ids in ((10, [0, 1]), (50, [2, 3])):
        expect = miss[results["condition"].isin(ids)].mean()
        row = t[t["n_groups"] == ng].iloc[0]
        assert row["noncoverage"] == pytest.approx(expect) and row["n"] == 100
        assert row["mcse"] == pytest.approx(math.sqrt(expect * (1 - expect) / 100))
    by_cell = noncoverage_table(results, manifest, None)
    assert by_cell.shape[0] == 4


def test_group_effects_pool_over_levels_and_arm_differences():
    rows = []
    for rep in range(3):
        for lev, true in (("1", 0.5), ("2", -0.5)):
            for m, shift in (("reml", 0.0), ("bayes", 0.1)):
                est = true + 0.2 + shift
                rows.append({"condition": 0, "replicate": rep, "method": m, "interval": "i",
                             "parameter": "b[g:(Intercept)]", "level": lev, "truth": true,
                             "estimate": est, "se": 0.5, "lower": est - 1, "upper": est + 1,
                             "converged": True, "singular": False, "divergences": 0.0,
                             "fit_time": 0.0, "error": None})
    results = pd.DataFrame(rows)
    manifest = {"name": "x", "axes": [], "parameters": [], "conditions": [{"id": 0, "values": {}}]}
    s = summarize_results(results, manifest)
    reml = s[s["method"] == "reml"].iloc[0]
    assert reml["bias"] == pytest.approx(0.2) and math.isnan(reml["rel_bias"]) and reml["n"] == 6
    d = method_differences(results, manifest, "reml", "bayes")
    assert d.iloc[0]["mean_abs_diff"] == pytest.approx(0.1)
    assert d.iloc[0]["scaled_abs_diff"] == pytest.approx(0.2)
