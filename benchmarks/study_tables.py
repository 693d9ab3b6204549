"""Markdown tables of a study's arms side by side: coverage, bias and interval width with MCSEs.

For each parameter and arm (method x interval kind), pooled over the grid axes other than
``--by``: coverage of the nominal 95% intervals in % (its MCSE, sqrt(p(1-p)/n)), bias of the
estimate (MCSE: the sd of the errors over sqrt(n)), median interval width (a Wald interval of an sd at
the boundary can be unbounded), and the number of
replicates with an interval.  Only replicates that every listed arm has finished are used
(``--paired``, the default), so that a partial arm is compared with the others on the same data
sets.  ``studies/README.md`` quotes these tables.

Run::

    python benchmarks/study_tables.py runs/maas_hox
    python benchmarks/study_tables.py runs/few_groups --by n_groups --params "sd[g:(Intercept)]"
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def arm_table(results: pd.DataFrame, manifest: dict, by: str, paired: bool = True) -> pd.DataFrame:
    values = {c["id"]: c["values"] for c in manifest["conditions"]}
    r = results[results["parameter"].notna() & ~results["parameter"].astype(str).str.startswith("b[")].copy()
    r["arm"] = r["method"] + " (" + r["interval"] + ")"
    if paired:
        done = r.groupby(["condition", "replicate"])["method"].nunique()
        full = done[done == r["method"].nunique()].index
        r = r.set_index(["condition", "replicate"]).loc[lambda d: d.index.isin(full)].reset_index()
    r[by] = r["condition"].map(lambda c: values[int(c)][by])
    ok = np.isfinite(r["lower"]) & np.isfinite(r["upper"])
    r["cover"] = np.where(ok, (r["lower"] <= r["truth"]) & (r["truth"] <= r["upper"]), np.nan)
    r["err"] = r["estimate"] - r["truth"]
    r["width"] = np.where(ok, r["upper"] - r["lower"], np.nan)
    rows = []
    for (p, arm, b), g in r.groupby(["parameter", "arm", by], sort=False):
        c = g["cover"].dropna()
        e = g["err"].dropna()
        n = len(c)
        cov = c.mean() if n else np.nan
        rows.append({"parameter": p, "arm": arm, by: b, "n": n,
                     "coverage": cov, "coverage_mcse": np.sqrt(cov * (1 - cov) / n) if n else np.nan,
                     "bias": e.mean(), "bias_mcse": e.std(ddof=1) / np.sqrt(len(e)) if len(e) > 1 else np.nan,
                     "width": g["width"].median()})
    out = pd.DataFrame(rows)
    order = {p: i for i, p in enumerate(manifest.get("parameters") or [])}
    out["_p"] = out["parameter"].map(lambda p: order.get(p, len(order)))
    return out.sort_values(["_p", "arm", by], kind="stable").drop(columns="_p")


def markdown(t: pd.DataFrame, by: str) -> str:
    lines = [f"| parameter | arm | {by} | n | coverage % (MCSE) | bias (MCSE) | median width |",
             "|---|---|---|---|---|---|---|"]
    for row in t.itertuples(index=False):
        d = row._asdict()
        cov = "-" if not np.isfinite(d["coverage"]) else f"{100 * d['coverage']:.1f} ({100 * d['coverage_mcse']:.1f})"
        bias = f"{d['bias']:+.3f} ({d['bias_mcse']:.3f})" if np.isfinite(d["bias"]) else "-"
        width = f"{d['width']:.3f}" if np.isfinite(d["width"]) else "-"
        lines.append(f"| `{d['parameter']}` | {d['arm']} | {d[by]} | {d['n']} | {cov} | {bias} | {width} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--by", default=None, help="grid axis (default: the study's summary.by)")
    ap.add_argument("--params", default=None, help="comma-separated parameters (default: all)")
    ap.add_argument("--arms", default=None, help="comma-separated 'method (interval)' to keep")
    ap.add_argument("--unpaired", action="store_true", help="every finished replicate of each arm")
    args = ap.parse_args()

    from workbench.study.store import open_results

    manifest, results = open_results(args.dir)
    by = args.by or (manifest.get("summary_by") or ["condition"])[0]
    t = arm_table(results, manifest, by, paired=not args.unpaired)
    if args.params:
        t = t[t["parameter"].isin(args.params.split(","))]
    if args.arms:
        t = t[t["arm"].isin(args.arms.split(","))]
    fits = results.groupby("method")[["condition", "replicate"]].apply(
        lambda d: len(d.drop_duplicates()))
    print("replicates stored per arm: " + ", ".join(f"{m} {n}" for m, n in fits.items()))
    print(markdown(t, by))


if __name__ == "__main__":
    main()
