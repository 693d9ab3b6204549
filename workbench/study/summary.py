"""Monte Carlo summaries of a study, each with its Monte Carlo standard error.

Performance measures and their MCSEs follow Morris, White & Crowther (2019), "Using simulation
studies to evaluate statistical methods", Statistics in Medicine 38:2074-2102, Table 6.  With
``n`` replicates, estimates ``t_i``, their mean ``m`` and the truth ``T``:

=================  ==================================  =============================================
measure            estimate                            MCSE
=================  ==================================  =============================================
mean               m                                   S / sqrt(n),  S^2 = sum (t_i - m)^2 / (n - 1)
bias               m - T                               S / sqrt(n)
relative bias      (m - T) / T                         S / (sqrt(n) |T|)
empirical SE       S                                   S / sqrt(2 (n - 1))
MSE                sum (t_i - T)^2 / n                 sqrt(sum ((t_i - T)^2 - MSE)^2 / (n (n - 1)))
RMSE               sqrt(MSE)                           MCSE(MSE) / (2 RMSE)  (delta method)
model SE           sqrt(mean se_i^2)                   sqrt(var(se_i^2) / (4 n modSE^2))
coverage           mean(l_i <= T <= u_i)               sqrt(C (1 - C) / n)
interval width     mean(u_i - l_i)                     sd(u_i - l_i) / sqrt(n)
rates              proportion of fits                  sqrt(p (1 - p) / n)
=================  ==================================  =============================================

Group-effect rows (``b[GROUP:TERM]``, one per level) are pooled over levels; their MCSEs
treat the levels as independent, which they are not within one data set, so read them as
rough.  Replicates whose fit failed (no estimate) are left out of the estimate-based measures and
counted in ``failure_rate``; coverage and width use the replicates with a finite interval
(``n_intervals``).  Non-converged and singular fits are kept, and their rates reported.

A study whose truth is drawn from the prior (``truth = "prior"``) is summarised the same way
against each replicate's truth (its ``truth`` column is then empty): averaged over the prior,
posterior means are unbiased and credible intervals cover at their level.  Its calibration
table is :func:`sbc_summary` (:func:`format_sbc`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

MEASURES = ["n", "mean", "mean_mcse", "bias", "bias_mcse", "rel_bias", "rel_bias_mcse", "empse",
            "empse_mcse", "rmse", "rmse_mcse", "model_se", "model_se_mcse", "coverage",
            "coverage_mcse", "n_intervals", "width", "width_mcse", "nonconvergence_rate",
            "nonconvergence_rate_mcse", "singular_rate", "singular_rate_mcse", "divergence_rate",
            "divergence_rate_mcse", "mean_divergences", "failure_rate", "n_fits"]

KEYS = ["condition", "method", "interval", "parameter"]


def _rate(x: np.ndarray) -> tuple[float, float]:
    n = x.size
    if n == 0:
        return math.nan, math.nan
    p = float(np.mean(x))
    return p, math.sqrt(p * (1 - p) / n)


def performance(est: np.ndarray, se: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                truth) -> dict:
    """Estimate-based measures with MCSEs for one condition x method x parameter.

    Parameters
    ----------
    est, se, lower, upper : ndarray
        One entry per replicate (NaN where not available).
    truth : float or ndarray
        The true value, or one per row (group effects: the effect drawn for that level; bias
        is then the mean of estimate - truth, and relative bias is not defined).

    Returns
    -------
    dict
        Keys as in :data:`MEASURES` (the estimate- and interval-based ones).
    """
    out = {}
    tv = np.broadcast_to(np.asarray(truth, dtype=float), est.shape)
    constant = np.ndim(truth) == 0 or bool(np.all(tv == tv.flat[0])) if tv.size else True
    fin = np.isfinite(est)
    t = est[fin]
    tt = tv[fin]
    n = t.size
    out["n"] = int(n)
    nan = math.nan
    if n >= 1:
        m = float(t.mean())
        s = float(t.std(ddof=1)) if n > 1 else nan
        d = t - tt
        sd_d = float(d.std(ddof=1)) if n > 1 else nan
        out["mean"], out["mean_mcse"] = m, s / math.sqrt(n)
        out["bias"], out["bias_mcse"] = float(d.mean()), sd_d / math.sqrt(n)
        truth = float(tt[0])
        if constant and truth != 0 and math.isfinite(truth):
            out["rel_bias"], out["rel_bias_mcse"] = (m - truth) / truth, s / (math.sqrt(n) * abs(truth))
        else:
            out["rel_bias"] = out["rel_bias_mcse"] = nan
        out["empse"] = s
        out["empse_mcse"] = s / math.sqrt(2 * (n - 1)) if n > 1 else nan
        sq = d ** 2
        mse = float(sq.mean())
        mse_mcse = math.sqrt(float(((sq - mse) ** 2).sum()) / (n * (n - 1))) if n > 1 else nan
        out["rmse"] = math.sqrt(mse)
        out["rmse_mcse"] = mse_mcse / (2 * out["rmse"]) if out["rmse"] > 0 else nan
    else:
        for k in ("mean", "mean_mcse", "bias", "bias_mcse", "rel_bias", "rel_bias_mcse", "empse",
                  "empse_mcse", "rmse", "rmse_mcse"):
            out[k] = nan
    v = se[np.isfinite(se)] ** 2
    if v.size >= 2:
        mod = math.sqrt(float(v.mean()))
        out["model_se"] = mod
        out["model_se_mcse"] = math.sqrt(float(v.var(ddof=1)) / (4 * v.size * mod**2)) if mod > 0 else nan
    else:
        out["model_se"] = out["model_se_mcse"] = nan
    ok = np.isfinite(lower) & np.isfinite(upper) & np.isfinite(tv)
    out["n_intervals"] = int(ok.sum())
    if ok.any():
        cov = (lower[ok] <= tv[ok]) & (tv[ok] <= upper[ok])
        out["coverage"], out["coverage_mcse"] = _rate(cov.astype(float))
        w = upper[ok] - lower[ok]
        out["width"] = float(w.mean())
        out["width_mcse"] = float(w.std(ddof=1)) / math.sqrt(w.size) if w.size > 1 else nan
    else:
        out["coverage"] = out["coverage_mcse"] = out["width"] = out["width_mcse"] = nan
    return out


def summarize_results(results: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """Per condition x method x interval x parameter: every measure of :data:`MEASURES`.

    Parameters
    ----------
    results : DataFrame
        Rows as stored by the runner (:data:`workbench.study.replicate.COLUMNS`).
    manifest : dict
        The study manifest (for the condition values).

    Returns
    -------
    DataFrame
        Columns ``condition`` (id), one column per grid axis, ``method``, ``interval``,
        ``parameter``, ``truth`` and the measures; rows in condition, method, parameter order.
    """
    values = {c["id"]: c["values"] for c in manifest["conditions"]}
    order = {p: i for i, p in enumerate(manifest.get("parameters", []))}
    rows = []
    for (cid, method, kind, param), g in results.groupby(KEYS, sort=False):
        tv = g["truth"].to_numpy(float)
        pooled = g["level"].notna().any() if "level" in g else False
        # a truth drawn per replicate (truth = "prior"): bias against each replicate's truth
        pooled = pooled or bool(tv.size and not np.all(tv == tv[0]))
        truth = math.nan if pooled else float(tv[0])
        r = {"condition": int(cid), **values.get(int(cid), {}), "method": method, "interval": kind,
             "parameter": param, "truth": truth}
        r.update(performance(g["estimate"].to_numpy(float), g["se"].to_numpy(float),
                             g["lower"].to_numpy(float), g["upper"].to_numpy(float),
                             tv if pooled else truth))
        ok = g["error"].isna().to_numpy()
        r["n_fits"] = int(g.shape[0])
        r["failure_rate"] = float((~ok).mean())
        r["nonconvergence_rate"], r["nonconvergence_rate_mcse"] = _rate(~g["converged"].to_numpy(bool)[ok])
        r["singular_rate"], r["singular_rate_mcse"] = _rate(g["singular"].to_numpy(bool)[ok])
        div = g["divergences"].to_numpy(float)[ok]
        if np.isfinite(div).any():
            d = div[np.isfinite(div)]
            r["divergence_rate"], r["divergence_rate_mcse"] = _rate(d > 0)
            r["mean_divergences"] = float(d.mean())
        else:
            r["divergence_rate"] = r["divergence_rate_mcse"] = r["mean_divergences"] = math.nan
        rows.append(r)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["_p"] = frame["parameter"].map(lambda p: order.get(p, len(order)))
    frame = frame.sort_values(["condition", "method", "interval", "_p"], kind="stable")
    return frame.drop(columns="_p").reset_index(drop=True)


def summary_records(summary: pd.DataFrame, manifest: dict) -> list[dict]:
    """The JSON form: rows with ``condition`` (a dict of design values), ``method``,
    ``interval``, ``parameter``, ``truth`` and the measures (NaN as None)."""
    axes = manifest.get("axes", [])
    out = []
    for rec in summary.to_dict(orient="records"):
        row = {"condition": {a: rec.pop(a) for a in axes if a in rec},
               "condition_id": rec.pop("condition")}
        row.update(rec)
        out.append({k: (None if isinstance(v, float) and not math.isfinite(v) else
                        (v.item() if hasattr(v, "item") else v)) for k, v in row.items()})
    return out


def noncoverage_table(results: pd.DataFrame, manifest: dict, by: str | None) -> pd.DataFrame:
    """Non-coverage of the intervals, pooled over the other grid axes (Maas & Hox's tables).

    Parameters
    ----------
    results : DataFrame
    manifest : dict
    by : str or None
        A grid axis (e.g. ``"n_groups"``); None gives one row per condition (by cell).

    Returns
    -------
    DataFrame
        Columns ``method``, ``interval``, ``parameter``, the ``by`` value (or the condition's
        axis values), ``noncoverage``, ``mcse``, ``n``.
    """
    values = {c["id"]: c["values"] for c in manifest["conditions"]}
    r = results[np.isfinite(results["lower"]) & np.isfinite(results["upper"])].copy()
    r["miss"] = ~((r["lower"] <= r["truth"]) & (r["truth"] <= r["upper"]))
    axes = manifest.get("axes", [])
    if by is not None:
        if by not in axes:
            raise KeyError(by)
        r[by] = r["condition"].map(lambda c: values[int(c)][by])
        keys = ["method", "interval", "parameter", by]
    else:
        for a in axes:
            r[a] = r["condition"].map(lambda c, a=a: values[int(c)][a])
        keys = ["method", "interval", "parameter", *axes]
    order = {p: i for i, p in enumerate(manifest.get("parameters", []))}
    g = r.groupby(keys, sort=False)["miss"]
    out = g.agg(["mean", "size"]).reset_index().rename(columns={"mean": "noncoverage", "size": "n"})
    out["mcse"] = np.sqrt(out["noncoverage"] * (1 - out["noncoverage"]) / out["n"])
    out["_p"] = out["parameter"].map(lambda p: order.get(p, len(order)))
    sort = ["method", "interval", "_p"] + keys[3:]
    return out.sort_values(sort, kind="stable").drop(columns="_p").reset_index(drop=True)


def method_differences(results: pd.DataFrame, manifest: dict, a: str, b: str) -> pd.DataFrame:
    """How far two arms' estimates differ on the same data sets (e.g. BLUPs vs posterior means).

    Rows are paired on (condition, replicate, parameter, level), using each arm's first
    interval kind.  Per condition x parameter: the mean absolute difference, the root mean
    square difference and the mean absolute difference in units of arm ``b``'s standard error
    (posterior sd), each with an MCSE computed from per-replicate averages (effects of one
    data set are not independent).

    Returns
    -------
    DataFrame
        Columns ``condition``, the grid axes, ``parameter``, ``mean_abs_diff``(``_mcse``),
        ``rms_diff``(``_mcse``), ``scaled_abs_diff``(``_mcse``), ``n_replicates``.
    """
    keys = ["condition", "replicate", "parameter", "level"]
    cols = keys + ["estimate", "se"]

    def arm(m):
        r = results[results["method"] == m]
        first = r["interval"].iloc[0] if len(r) else None
        r = r[r["interval"] == first][cols].copy()
        r["level"] = r["level"].fillna("")
        return r

    both = arm(a).merge(arm(b), on=keys, suffixes=("_a", "_b"))
    both = both[np.isfinite(both["estimate_a"]) & np.isfinite(both["estimate_b"])]
    both["absd"] = (both["estimate_a"] - both["estimate_b"]).abs()
    both["sqd"] = both["absd"] ** 2
    both["scaled"] = both["absd"] / both["se_b"].where(both["se_b"] > 0)
    per_rep = both.groupby(["condition", "parameter", "replicate"], sort=False)[
        ["absd", "sqd", "scaled"]].mean().reset_index()
    values = {c["id"]: c["values"] for c in manifest["conditions"]}
    rows = []
    for (cid, p), g in per_rep.groupby(["condition", "parameter"], sort=False):
        n = g.shape[0]
        root = math.sqrt(n)
        row = {"condition": int(cid), **values.get(int(cid), {}), "parameter": p, "n_replicates": n}
        for col, name in (("absd", "mean_abs_diff"), ("scaled", "scaled_abs_diff")):
            x = g[col].to_numpy(float)
            x = x[np.isfinite(x)]
            row[name] = float(x.mean()) if x.size else math.nan
            row[f"{name}_mcse"] = float(x.std(ddof=1)) / math.sqrt(x.size) if x.size > 1 else math.nan
        msd = g["sqd"].to_numpy(float)
        rms = math.sqrt(float(msd.mean()))
        row["rms_diff"] = rms
        row["rms_diff_mcse"] = (float(msd.std(ddof=1)) / root / (2 * rms)) if n > 1 and rms > 0 else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def format_differences(table: pd.DataFrame, manifest: dict, a: str, b: str) -> str:
    """Readable form of :func:`method_differences`."""
    axes = manifest.get("axes", [])
    lines = [f"differences {a} - {b} on the same data sets (MCSE in parentheses)",
             f"{'condition':<34}{'parameter':<24}{'mean |diff|':>20}{'rms diff':>20}"
             f"{'|diff| / sd_' + b:>22}"]
    for _, r in table.iterrows():
        label = ", ".join(f"{x}={r[x]}" for x in axes) or "-"
        lines.append(
            f"{label:<34}{r['parameter']:<24}"
            f"{_num(r['mean_abs_diff'], '{:.4f}') + ' (' + _num(r['mean_abs_diff_mcse'], '{:.4f}') + ')':>20}"
            f"{_num(r['rms_diff'], '{:.4f}') + ' (' + _num(r['rms_diff_mcse'], '{:.4f}') + ')':>20}"
            f"{_num(r['scaled_abs_diff'], '{:.3f}') + ' (' + _num(r['scaled_abs_diff_mcse'], '{:.3f}') + ')':>22}"
        )
    return "\n".join(lines)


def _pct(p, se) -> str:
    if not math.isfinite(p):
        return "-"
    return f"{100 * p:5.1f} ({100 * se:.1f})"


def format_noncoverage(table: pd.DataFrame, by: str) -> str:
    """Non-coverage (%) with MCSE in parentheses: parameters by rows, ``by`` values by columns."""
    lines = []
    for (method, kind), g in table.groupby(["method", "interval"], sort=False):
        levels = list(dict.fromkeys(g[by]))
        lines.append(f"non-coverage of 95% intervals, % (MCSE): {method}, {kind}, by {by}")
        head = f"{'parameter':<26}" + "".join(f"{str(v):>16}" for v in levels)
        lines.append(head)
        for p, gp in g.groupby("parameter", sort=False):
            cells = {row[by]: _pct(row["noncoverage"], row["mcse"]) for _, row in gp.iterrows()}
            lines.append(f"{p:<26}" + "".join(f"{cells.get(v, '-'):>16}" for v in levels))
        lines.append("")
    return "\n".join(lines)


def format_noncoverage_cells(table: pd.DataFrame, axes: list[str]) -> str:
    """Non-coverage (%) by cell: conditions by rows, parameters by columns."""
    lines = []
    for (method, kind), g in table.groupby(["method", "interval"], sort=False):
        params = list(dict.fromkeys(g["parameter"]))
        lines.append(f"non-coverage of 95% intervals, % (MCSE): {method}, {kind}, by cell")
        lines.append(f"{'cell':<34}" + "".join(f"{p[:21]:>23}" for p in params))
        for key, gc in g.groupby(axes, sort=False):
            key = key if isinstance(key, tuple) else (key,)
            label = ", ".join(f"{a}={v}" for a, v in zip(axes, key))
            cells = {r["parameter"]: _pct(r["noncoverage"], r["mcse"]) for _, r in gc.iterrows()}
            lines.append(f"{label:<34}" + "".join(f"{cells.get(p, '-'):>23}" for p in params))
        lines.append("")
    return "\n".join(lines)


def _num(x, fmt="{:.3f}") -> str:
    return fmt.format(x) if isinstance(x, (int, float)) and math.isfinite(x) else "-"


def format_summary(summary: pd.DataFrame, manifest: dict) -> str:
    """A readable table: per condition, method and parameter, the main measures with MCSEs."""
    axes = manifest.get("axes", [])
    lines = [f"study {manifest.get('name')}: {summary['condition'].nunique()} condition(s)"]
    cols = (f"{'parameter':<24}{'truth':>9}{'bias (mcse)':>20}{'rel.bias':>10}{'rmse':>9}"
            f"{'coverage (mcse)':>18}{'width':>9}{'n':>6}{'nonconv':>9}{'singular':>9}")
    for (cid, method, kind), g in summary.groupby(["condition", "method", "interval"], sort=False):
        label = ", ".join(f"{a}={g[a].iloc[0]}" for a in axes) or "single condition"
        first = g.iloc[0]
        lines.append("")
        failed = f", failed {first['failure_rate']:.1%}" if first["failure_rate"] > 0 else ""
        lines.append(f"[{cid}] {label} | {method} ({kind}) | fits {first['n_fits']}{failed}")
        lines.append(cols)
        for _, r in g.iterrows():
            bias = f"{_num(r['bias'], '{:+.4f}')} ({_num(r['bias_mcse'], '{:.4f}')})"
            cov = f"{_num(r['coverage'], '{:.3f}')} ({_num(r['coverage_mcse'], '{:.3f}')})"
            lines.append(
                f"{r['parameter']:<24}{_num(r['truth'], '{:.4g}'):>9}{bias:>20}"
                f"{_num(r['rel_bias'], '{:+.3f}'):>10}{_num(r['rmse'], '{:.4f}'):>9}{cov:>18}"
                f"{_num(r['width'], '{:.3f}'):>9}{int(r['n']):>6}"
                f"{_num(r['nonconvergence_rate'], '{:.3f}'):>9}{_num(r['singular_rate'], '{:.3f}'):>9}"
            )
    return "\n".join(lines)


#: Family-wise level of the SBC verdict (Bonferroni over an arm's tests).
SBC_ALPHA = 0.01


def sbc_summary(ranks: pd.DataFrame, manifest: dict | None = None) -> pd.DataFrame:
    """Simulation-based calibration per parameter and method: the chi-square uniformity
    p-value of the rank histogram (:func:`workbench.study.sbc.sbc_pvalue`).

    Parameters
    ----------
    ranks : DataFrame
        ``parameter``, ``rank``, ``thin_to`` and optionally ``method`` (one row per replicate),
        as :func:`workbench.study.sbc.sbc_ranks` gives; or a study's results
        (:func:`workbench.study.sbc.sbc_batch`), with ``condition`` and replicates whose fit
        failed (``rank`` NaN, counted in ``failures``).
    manifest : dict, optional
        The study manifest, for the grid-axis columns of each condition.

    Returns
    -------
    DataFrame
        ``parameter``, ``method``, ``n`` (ranked replicates), ``thin_to``, ``mean_rank``
        (expected ``thin_to / 2``), ``sbc_p``; with a ``condition`` column in ``ranks``, first
        ``condition`` and the grid axes, and last ``failures``.
    """
    from .sbc import sbc_pvalue

    r = ranks if "method" in ranks else ranks.assign(method="bayes")
    by_condition = "condition" in r
    values = {c["id"]: c["values"] for c in (manifest or {}).get("conditions", [])}
    keys = ["condition", "method", "parameter"] if by_condition else ["method", "parameter"]
    rows = []
    for key, g in r.groupby(keys, sort=False):
        ok = g[np.isfinite(g["rank"].to_numpy(float))]
        L = int(g["thin_to"].iloc[0])
        row = {"condition": int(key[0]), **values.get(int(key[0]), {})} if by_condition else {}
        row.update({"parameter": key[-1], "method": key[-2], "n": len(ok), "thin_to": L,
                    "mean_rank": float(ok["rank"].mean()) if len(ok) else math.nan,
                    "sbc_p": sbc_pvalue(ok["rank"].astype(int), L) if len(ok) else math.nan})
        if by_condition:
            row["failures"] = len(g) - len(ok)
        rows.append(row)
    out = pd.DataFrame(rows)
    order = {p: i for i, p in enumerate((manifest or {}).get("parameters", []))}
    if order and len(out):
        out["_p"] = out["parameter"].map(lambda p: order.get(p, len(order)))
        out = out.sort_values([*keys[:-1], "_p"], kind="stable").drop(columns="_p")
    return out.reset_index(drop=True)


def sbc_verdicts(table: pd.DataFrame, alpha: float = SBC_ALPHA) -> pd.DataFrame:
    """Per method: the smallest ``sbc_p`` of its ``m`` tests and whether it passes at the
    family-wise level ``alpha`` (every ``sbc_p >= alpha / m``, Bonferroni).

    Returns
    -------
    DataFrame
        ``method``, ``tests``, ``min_sbc_p``, ``threshold``, ``passes``.
    """
    rows = []
    for method, g in table.groupby("method", sort=False):
        p = g["sbc_p"].to_numpy(float)
        m = int(np.isfinite(p).sum())
        low = float(np.nanmin(p)) if m else math.nan
        rows.append({"method": method, "tests": m, "min_sbc_p": low,
                     "threshold": alpha / m if m else math.nan,
                     "passes": bool(m and low >= alpha / m)})
    return pd.DataFrame(rows)


def format_sbc(table: pd.DataFrame, manifest: dict) -> str:
    """Readable form of :func:`sbc_summary` (with conditions) and :func:`sbc_verdicts`."""
    axes = manifest.get("axes", [])
    L = int(table["thin_to"].iloc[0]) if len(table) else manifest.get("thin_to")
    lines = [f"simulation-based calibration: rank of the truth among {L} thinned posterior draws "
             "(uniform on 0..{} when the posterior is right); sbc_p: chi-square test of the "
             "rank histogram".format(L),
             f"{'condition':<24}{'method':<16}{'parameter':<24}{'n':>6}{'failed':>8}"
             f"{'mean rank':>11}{'sbc_p':>10}"]
    for _, r in table.iterrows():
        label = ", ".join(f"{a}={r[a]}" for a in axes if a in r) or str(r.get("condition", "-"))
        lines.append(f"{label:<24}{r['method']:<16}{r['parameter']:<24}{int(r['n']):>6}"
                     f"{int(r.get('failures', 0)):>8}{_num(r['mean_rank'], '{:.1f}'):>11}"
                     f"{_num(r['sbc_p'], '{:.3g}'):>10}")
    lines.append("")
    lines.append(f"verdict per method (fails when some sbc_p < {SBC_ALPHA} / tests, Bonferroni):")
    for _, v in sbc_verdicts(table).iterrows():
        lines.append(f"  {v['method']:<16}{'passes' if v['passes'] else 'FAILS':<8}"
                     f"smallest sbc_p {_num(v['min_sbc_p'], '{:.3g}')} of {v['tests']} tests "
                     f"(threshold {_num(v['threshold'], '{:.2g}')})")
    return "\n".join(lines)
