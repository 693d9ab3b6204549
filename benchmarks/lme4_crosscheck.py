"""Cross-check the REML engine against lme4 on fresh random designs (needs Rscript with lme4).

    python benchmarks/lme4_crosscheck.py [--n 40] [--seed 1] [--scale 1]

Draws unbalanced one-factor, correlated-slope (q = 2 and 3), uncorrelated, crossed, nested and
near-singular designs, fits each by the workbench and by lme4 (tight tolerances, as in
tests/reference/lme4/make_reference.R), and prints the criterion difference
``workbench - lme4`` (a positive difference beyond rounding is a bug: a worse optimum) and the
workbench's ``converged`` flag.  ``--scale c`` multiplies the covariates by c.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import workbench  # noqa: E402

KINDS = ["intercept", "slopes", "slopes3", "zerocorr", "crossed", "nested", "nearsingular"]


def draw(kind: str, rng: np.random.Generator) -> tuple[str, pd.DataFrame]:
    J = int(rng.integers(6, 40))
    sizes = rng.integers(1, 25, size=J)
    g = np.repeat(np.arange(J), sizes)
    n = g.size
    x, z = rng.normal(size=n), rng.normal(size=n)
    sd = rng.uniform(0.05, 2.0, size=3)
    e = rng.normal(size=n)
    if kind == "intercept":
        y = 1 + 0.5 * x + sd[0] * rng.normal(size=J)[g] + e
        return "y ~ 1 + x + (1 | g)", pd.DataFrame({"y": y, "x": x, "g": g})
    if kind in ("slopes", "zerocorr", "nearsingular"):
        rho = rng.uniform(-0.95, 0.95) if kind != "nearsingular" else rng.choice([-0.999, 0.999])
        if kind == "nearsingular":
            sd[1] = 0.01
        C = np.array([[1, rho], [rho, 1]]) * np.outer(sd[:2], sd[:2])
        u = rng.multivariate_normal([0, 0], C, size=J)
        y = 1 + 0.5 * x + u[g, 0] + u[g, 1] * x + e
        f = "y ~ 1 + x + (1 + x || g)" if kind == "zerocorr" else "y ~ 1 + x + (1 + x | g)"
        return f, pd.DataFrame({"y": y, "x": x, "g": g})
    if kind == "slopes3":
        A = rng.normal(size=(3, 3)) * 0.5
        u = rng.normal(size=(J, 3)) @ A.T
        y = 1 + x - z + u[g, 0] + u[g, 1] * x + u[g, 2] * z + e
        return "y ~ 1 + x + z + (1 + x + z | g)", pd.DataFrame({"y": y, "x": x, "z": z, "g": g})
    if kind == "crossed":
        H = int(rng.integers(3, 15))
        h = rng.integers(0, H, size=n)
        y = 1 + x + sd[0] * rng.normal(size=J)[g] + sd[1] * rng.normal(size=H)[h] + e
        return "y ~ 1 + x + (1 | g) + (1 | h)", pd.DataFrame({"y": y, "x": x, "g": g, "h": h})
    if kind == "nested":
        k = rng.integers(0, 3, size=n)  # sub-groups within each group
        sub = g * 3 + k
        y = 1 + x + sd[0] * rng.normal(size=J)[g] + sd[1] * rng.normal(size=3 * J)[sub] + e
        return "y ~ 1 + x + (1 | g/k)", pd.DataFrame({"y": y, "x": x, "g": g, "k": k})
    raise ValueError(kind)


R_SCRIPT = r"""
suppressMessages({library(lme4); library(jsonlite)})
ctl <- lmerControl(optimizer = "nloptwrap", calc.derivs = FALSE,
                   check.conv.singular = "ignore",
                   optCtrl = list(xtol_abs = 1e-13, ftol_abs = 1e-13, xtol_rel = 1e-13,
                                  ftol_rel = 1e-15, maxeval = 100000))
jobs <- fromJSON("%s")
out <- sapply(seq_len(nrow(jobs)), function(i) {
  d <- read.csv(jobs$path[i])
  for (c in intersect(c("g", "h", "k"), names(d))) d[[c]] <- factor(d[[c]])
  m <- lmer(as.formula(jobs$formula[i]), d, REML = TRUE, control = ctl)
  REMLcrit(m)
})
cat(toJSON(out, digits = NA))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=42)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        jobs = []
        for i in range(args.n):
            kind = KINDS[i % len(KINDS)]
            formula, data = draw(kind, rng)
            data = data.assign(**{c: data[c] * args.scale for c in ("x", "z") if c in data})
            path = Path(tmp) / f"d{i}.csv"
            data.to_csv(path, index=False)
            fit = workbench.fit(formula, data)
            jobs.append({"path": str(path), "formula": formula})
            rows.append({"kind": kind, "formula": formula, "n": len(data),
                         "workbench": fit.criterion, "singular": fit.singular,
                         "converged": fit.converged})
        (Path(tmp) / "jobs.json").write_text(json.dumps(jobs))
        script = R_SCRIPT % (Path(tmp) / "jobs.json")
        res = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(res.stderr)
        lme4 = json.loads(res.stdout)
    worst = -np.inf
    for r, c in zip(rows, lme4):
        d = r["workbench"] - c
        worst = max(worst, d / abs(c))
        flag = "  <-- above lme4" if d > 1e-7 * abs(c) else ""
        print(f"{r['kind']:13s} n={r['n']:4d} singular={r['singular']!s:5s} "
              f"converged={r['converged']!s:5s} workbench - lme4 = {d:+.2e}{flag}")
    print(f"worst relative difference (positive = workbench worse): {worst:+.2e}; "
          f"not converged: {sum(not r['converged'] for r in rows)} of {len(rows)}")


if __name__ == "__main__":
    main()
