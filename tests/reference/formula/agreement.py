"""Print, per formula form of reference.json, the largest relative difference from lme4.

    PYTHONPATH=. python tests/reference/formula/agreement.py

Columns: criterion, fixed effects, their SEs, sigma, sd/cor, BLUPs and conditional sds, worst
over REML and ML (relative, scaled by max(1, |value|) for effects and BLUPs).
"""

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.test_formula_reference import REF, fit, rel  # noqa: E402


def main():
    print("| case | formula | options | criterion | beta | SE | sigma | sd/cor | BLUP, cond. sd |")
    print("|---|---|---|---|---|---|---|---|---|")
    overall = [(0.0, "")] * 6
    for name, case in REF["cases"].items():
        worst = [0.0] * 6
        for method in ("reml", "ml"):
            r = case[method]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = fit(case, method)
            vals = [abs(f.criterion - r["criterion"]) / abs(r["criterion"]),
                    max(rel(f.beta[k], v) for k, v in r["beta"].items()),
                    max(abs(f.beta_se[k] - v) / v for k, v in r["beta_se"].items()),
                    abs(f.sigma - r["sigma"]) / r["sigma"]]
            ours = {(v["grp"], v["var1"], v["var2"]): v["sdcor"] for v in f.varcorr}
            vals.append(max(rel(ours[(v["grp"], v["var1"], v["var2"])], v["sdcor"])
                            for v in r["varcorr"]))
            b = {(x["term"], x["level"]): (x["value"], x["cond_sd"]) for x in f.ranef}
            re = r["ranef"]
            vals.append(max(max(rel(b[(t, lv)][0], v), rel(b[(t, lv)][1], s))
                            for t, lv, v, s in zip(re["term"], re["level"], re["value"],
                                                   re["cond_sd"])))
            worst = [max(a, c) for a, c in zip(worst, vals)]
        opts = ", ".join(f"{k}={case[k]}" for k in ("weights", "offset", "contrasts")
                         if case.get(k))
        print(f"| {name} | `{case['formula'].replace('|', '&#124;')}` | {opts} | "
              + " | ".join(f"{w:.1e}" for w in worst) + " |")
        overall = [max(o, (w, name)) for o, w in zip(overall, worst)]
    print("\nworst: " + "; ".join(f"{c} {w:.1e} ({n})" for c, (w, n) in zip(
        ["criterion", "beta", "SE", "sigma", "sd/cor", "BLUP"], overall)))


if __name__ == "__main__":
    main()
