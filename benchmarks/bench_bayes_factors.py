"""Cost of a Bayesian replicate with several grouping factors (issue 12, item 4).

The fast path (bayes/fast.py) needs one grouping factor; with several, ``workbench.fit(...,
method="bayes")`` runs NUTS (nutpie) on the non-centred model (``parameterization="auto"``),
and ``parameterization="marginal"`` (dense in all stacked random effects, at most 500) is the
option.  This prints, per design and parameterisation, the first fit (compilation included), the
median refit of new data of the same shape (the per-replicate cost of a study), the least bulk
ESS over the parameters, divergences and the path the record names.

Designs (intercepts only, one covariate ``x``):

* ``crossed AxB``: ``y ~ x + (1 | a) + (1 | b)``, every cell of A x B levels with 2 rows;
* ``nested SxC``: ``y ~ x + (1 | school/class)``, S schools of C classes of 5 rows.

Run::

    python benchmarks/bench_bayes_factors.py                 # the default designs
    python benchmarks/bench_bayes_factors.py --designs crossed40x30 --refits 3

Timings are wall-clock on a shared machine: rerun when the load is high.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd


def simulate(kind: str, m: int, k: int, seed: int) -> tuple[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    if kind == "crossed":
        a, b = np.meshgrid(np.arange(m), np.arange(k), indexing="ij")
        a, b = np.repeat(a.ravel(), 2), np.repeat(b.ravel(), 2)
        x = rng.normal(size=a.size)
        y = 1 + 0.5 * x + rng.normal(0, 0.6, m)[a] + rng.normal(0, 0.4, k)[b] + rng.normal(size=a.size)
        return "y ~ x + (1 | a) + (1 | b)", pd.DataFrame({"y": y, "x": x, "a": a, "b": b})
    school = np.repeat(np.arange(m), k * 5)
    cls = np.repeat(np.arange(m * k), 5)
    x = rng.normal(size=school.size)
    y = (1 + 0.5 * x + rng.normal(0, 0.6, m)[school] + rng.normal(0, 0.4, m * k)[cls]
         + rng.normal(size=school.size))
    return "y ~ x + (1 | school/class)", pd.DataFrame({"y": y, "x": x, "school": school,
                                                         "class": cls % k})


def run(kind, m, k, param: str, refits: int, seed: int) -> dict:
    import workbench

    formula, d0 = simulate(kind, m, k, seed)
    opts = dict(method="bayes", draws=1000, tune=1000, chains=2, progressbar=False,
                parameterization=param)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = workbench.fit(formula, d0, seed=seed, **opts)
    first = time.perf_counter() - t0
    walls, ess, div = [], [], f.diagnostics["divergences"]
    for i in range(refits):
        _, d = simulate(kind, m, k, seed + 1 + i)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = workbench.fit(formula, d, seed=seed + 1 + i, **opts)
        walls.append(time.perf_counter() - t0)
        ess.append(f.diagnostics["min_ess_bulk"])
        div += f.diagnostics["divergences"]
    levels = m + k if kind == "crossed" else m + m * k
    return {"design": f"{kind} {m}x{k}", "rows": len(d0), "levels": levels,
            "parameterization": f.diagnostics["parameterization"], "path": f.diagnostics["path"],
            "sampler": f.diagnostics["sampler"], "first s": round(first, 1),
            "refit s (median)": round(float(np.median(walls)), 2),
            "min bulk ESS": round(float(np.min(ess))), "div": div}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", default="crossed40x30,nested100x10,nested200x10")
    ap.add_argument("--params", default="auto,marginal")
    ap.add_argument("--refits", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rows = []
    for spec in args.designs.split(","):
        kind = "crossed" if spec.startswith("crossed") else "nested"
        m, k = (int(v) for v in spec[len(kind):].split("x"))
        for param in args.params.split(","):
            levels = m + k if kind == "crossed" else m + m * k
            if param == "marginal" and levels > 500:
                continue  # the dense marginal form is capped at 500 stacked effects
            rows.append(run(kind, m, k, param, args.refits, args.seed))
            print(rows[-1], f"load {os.getloadavg()[0]:.1f}", flush=True)
    from bench_bayes import markdown

    print(markdown(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
