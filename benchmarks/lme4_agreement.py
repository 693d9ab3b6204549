"""Worst differences between the workbench and lme4 over tests/reference/lme4.

    python benchmarks/lme4_agreement.py

For every reference model (REML and, where present, ML): criterion, fixed effects, their standard
errors and sigma (relative), BLUPs and conditional sds (absolute, scaled by max(1, |value|)).
tests/reml/test_reference.py asserts the tolerances; this prints how far inside them we are.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import workbench  # noqa: E402
from tests.helpers import lme4_reference, reference_data  # noqa: E402


def _rel(a, b):
    return abs(a - b) / abs(b) if b != 0 else abs(a)


def main():
    ref = lme4_reference()
    print(f"{'model':22s} {'fit':4s} {'criterion':>9s} {'above':>9s} {'beta':>9s} {'se':>9s} "
          f"{'sigma':>9s} {'BLUP':>9s} {'cond sd':>9s}")
    for name, entry in ref.items():
        data = reference_data(entry)
        for meth in ("REML", "ML"):
            if meth not in entry:
                continue
            r = entry[meth]
            fit = workbench.fit(entry["formula"], data, method=meth.lower())
            row = [_rel(fit.criterion, r["deviance"]),
                   (fit.criterion - r["deviance"]) / abs(r["deviance"]),
                   max(_rel(fit.beta[k], v) for k, v in r["beta"].items()),
                   max(_rel(fit.beta_se[k], v) for k, v in r["beta_se"].items()),
                   _rel(fit.sigma, r["sigma"])]
            if "ranef" in r:
                got = {(x["group"], x["term"], x["level"]): x for x in fit.ranef}
                for key in ("value", "cond_sd"):
                    row.append(max(abs(got[(x["group"], x["term"], x["level"])][key] - x[key])
                                   / max(1.0, abs(x[key])) for x in r["ranef"]))
            cells = " ".join(f"{v:9.1e}" for v in row)
            print(f"{name:22s} {meth:4s} {cells}")


if __name__ == "__main__":
    main()
