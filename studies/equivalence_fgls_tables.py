"""The Markdown tables of the FGLS equivalence study (studies/README.md) from a finished run.

    workbench study run studies/equivalence_fgls.toml --out runs/equivalence_fgls --workers 1
    python studies/equivalence_fgls_tables.py runs/equivalence_fgls

Prints, per number of groups and ICC, the bias and RMSE of each arm's estimates of the random-
intercept variance, the residual variance and the slope (Monte Carlo SEs in parentheses), and the
mean |FGLS - REML| on the same data sets for each FGLS estimator (MCSE in parentheses).
"""

from __future__ import annotations

import sys

import pandas as pd

from workbench.study.store import Store
from workbench.study.summary import method_differences, summarize_results

ARMS = ("reml", "swar", "amemiya")
PARAMS = ("var[g:(Intercept)]", "var[Residual]", "beta[x]")


def cell(value: float, mcse: float, digits: int = 4) -> str:
    return f"{value:+.{digits}f} ({mcse:.{digits}f})"


def performance_table(summary: pd.DataFrame, parameter: str) -> str:
    s = summary[summary["parameter"] == parameter]
    head = ["groups", "ICC", "truth"] + [f"bias {a}" for a in ARMS] + [f"RMSE {a}" for a in ARMS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for (ng, icc), g in s.groupby(["n_groups", "icc"], sort=True):
        g = g.set_index("method")
        row = [str(ng), str(icc), f"{g['truth'].iloc[0]:.4g}"]
        row += [cell(g.loc[a, "bias"], g.loc[a, "bias_mcse"]) for a in ARMS]
        row += [cell(g.loc[a, "rmse"], g.loc[a, "rmse_mcse"]).lstrip("+") for a in ARMS]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def difference_table(results: pd.DataFrame, manifest: dict) -> str:
    diffs = {b: method_differences(results, manifest, b, "reml") for b in ARMS[1:]}
    head = ["groups", "ICC"] + [f"{p} {b}" for p in ("var[g:(Intercept)]", "beta[x]")
                                for b in ARMS[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    keys = diffs["swar"][["n_groups", "icc"]].drop_duplicates().sort_values(["n_groups", "icc"])
    for ng, icc in keys.itertuples(index=False):
        row = [str(ng), str(icc)]
        for p in ("var[g:(Intercept)]", "beta[x]"):
            for b in ARMS[1:]:
                d = diffs[b]
                r = d[(d["n_groups"] == ng) & (d["icc"] == icc) & (d["parameter"] == p)].iloc[0]
                row.append(cell(r["mean_abs_diff"], r["mean_abs_diff_mcse"]).lstrip("+"))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(run: str) -> None:
    store = Store(run)
    manifest = store.read_manifest()
    results = store.results()
    summary = summarize_results(results, manifest)
    fits = results.drop_duplicates(["condition", "method", "replicate"])
    print(f"{fits.shape[0]} fits; failures {int(fits['error'].notna().sum())}, "
          f"not converged {int((~fits['converged']).sum())}, "
          f"singular (REML) {int(fits[fits['method'] == 'reml']['singular'].sum())}\n")
    for p in PARAMS:
        print(f"{p}: bias and RMSE (MCSE)\n")
        print(performance_table(summary, p) + "\n")
    print("mean |FGLS - REML| on the same data sets (MCSE)\n")
    print(difference_table(results, manifest))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/equivalence_fgls")
