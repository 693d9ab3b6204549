"""Speed of the Bayesian fitter: ESS per second and wall time per parameterisation and sampler.

Model ``y ~ 1 + x + (1 + x | g)`` on simulated data with 30 groups of 5 and 100 groups of 10
(issue 4, "Speed"; issue 12).  For the fast path (the default, bayes/fast.py: one core, refit
median over 11 new data sets) and each parameterisation (marginal, noncentered, centered) and
sampler (nutpie, pymc) it reports, for 2 chains x 1000 draws (after 1000 tuning steps for NUTS):

* ``first s``: wall time of the first ``workbench.fit`` (compilation included);
* ``compile s``: the compilation part of it;
* ``sample s``: sampling seconds of a refit (the marginal form's exact draws of the random
  effects included);
* ``refit s``: wall time of ``workbench.fit`` on a new data set of the same shape (the compiled
  model is reused; this is the per-replicate cost of a simulation study); for the fast path
  the median CPU time of its refits (``time.process_time``, which load disturbs less) is
  printed beside its row;
* ``min ESS``: minimum bulk ESS over fixed effects, group sds, correlation and sigma (refit);
* ``ESS/s``: min ESS / sample s, and ``x base``: its ratio to the baseline;
* ``div``: divergences (first fit + refit).

The baseline is PyMC's default: the textbook non-centered model with ``LKJCholeskyCov`` and
``pm.sample`` (compiles on every call; its sampling time is PyMC's own ``sampling_time``).

Run::

    python benchmarks/bench_bayes.py            # both sizes, 5 configurations + 2 baselines (5-30 min)
    python benchmarks/bench_bayes.py --quick    # 30 x 5, fast path and marginal / nutpie
    python benchmarks/bench_bayes.py --sizes 100x10 --configs centered/nutpie

Rows are printed as they finish, then the whole table.  Timings are wall-clock on a shared
machine: compare ratios, and rerun when the load is high.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

FORMULA = "y ~ 1 + x + (1 + x | g)"


def simulate(groups: int, per: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per)
    x = rng.normal(size=g.size)
    u = rng.multivariate_normal([0, 0], [[1.0, 0.15], [0.15, 0.25]], size=groups)
    y = 1.0 + 0.5 * x + u[g, 0] + u[g, 1] * x + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def min_bulk_ess(frame: pd.DataFrame, nchains: int) -> float:
    import arviz as az

    cols = [c for c in frame.columns if c not in ("chain", "draw")]
    return min(float(az.ess(frame[c].to_numpy().reshape(nchains, -1), method="bulk")) for c in cols)


def baseline(data: pd.DataFrame, seed: int, cores: int | None = None) -> dict:
    """PyMC's default: non-centered model with LKJCholeskyCov, ``pm.sample``.

    PyMC's default ``cores`` counts half the CPUs (hyperthreads), so on 2 CPUs its chains run
    one after the other; ``cores=2`` runs them in parallel as the workbench's samplers do.
    """
    import pymc as pm

    g = data.g.to_numpy()
    J = int(g.max()) + 1
    sy = float(data.y.std())
    t0 = time.perf_counter()
    with pm.Model():
        b0 = pm.Normal("b0", data.y.mean(), 2.5 * sy * 2)
        b1 = pm.Normal("b1", 0, 2.5 * sy / data.x.std())
        chol, corr, sds = pm.LKJCholeskyCov("chol", n=2, eta=2.0,
                                            sd_dist=pm.HalfNormal.dist(2.5 * sy, shape=2),
                                            compute_corr=True)
        pm.Deterministic("sd", sds)
        pm.Deterministic("cor", corr[0, 1])
        z = pm.Normal("z", 0, 1, shape=(J, 2))
        u = pm.math.dot(z, chol.T)
        sigma = pm.Exponential("sigma", 1 / sy)
        mu = b0 + b1 * data.x.to_numpy() + u[g, 0] + u[g, 1] * data.x.to_numpy()
        pm.Normal("y", mu, sigma, observed=data.y.to_numpy())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = pm.sample(1000, tune=1000, chains=2, random_seed=seed, progressbar=False,
                              compute_convergence_checks=False, cores=cores)
    wall = time.perf_counter() - t0
    post = idata.posterior
    frame = pd.DataFrame({
        "b0": post.b0.values.ravel(), "b1": post.b1.values.ravel(),
        "sd0": post.sd.values[..., 0].ravel(), "sd1": post.sd.values[..., 1].ravel(),
        "cor": post.cor.values.ravel(), "sigma": post.sigma.values.ravel()})
    sampling = float(post.attrs.get("sampling_time", np.nan))
    ess = min_bulk_ess(frame, 2)
    return {"first": wall, "compile": wall - sampling, "sample": sampling, "refit": wall,
            "ess": ess, "ess_s": ess / sampling, "div": int(idata.sample_stats.diverging.sum())}


def run_workbench(data, data2, param: str, sampler: str, seed: int) -> dict:
    import workbench
    from workbench.bayes.draws import posterior_frame

    opts = dict(method="bayes", parameterization=param, sampler=sampler, draws=1000, tune=1000,
                chains=2, progressbar=False)
    t0 = time.perf_counter()
    f1 = workbench.fit(FORMULA, data, seed=seed, **opts)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    f2 = workbench.fit(FORMULA, data2, seed=seed + 1, **opts)
    refit = time.perf_counter() - t0
    ess = min_bulk_ess(posterior_frame(f2), 2)
    s = f2.diagnostics["sampling_seconds"]
    return {"first": first, "compile": f1.diagnostics["compile_seconds"], "sample": s,
            "refit": refit, "ess": ess, "ess_s": ess / s,
            "div": f1.diagnostics["divergences"] + f2.diagnostics["divergences"]}


def run_fast(data, data2, seed: int, refits: int = 11) -> dict:
    """The fast path (``path="fast"``, bayes/fast.py): first fit, then ``refits`` fits of new
    data sets of the same shape, one core; ``refit s`` is their median wall time and ``sample s``
    the median of the path's own seconds (mode, proposals, chains, conditional draws)."""
    import workbench
    from workbench.bayes.draws import posterior_frame

    groups, per = data.g.nunique(), len(data) // data.g.nunique()
    opts = dict(method="bayes", path="fast", draws=1000, chains=2, progressbar=False, cores=1)
    t0 = time.perf_counter()
    f1 = workbench.fit(FORMULA, data, seed=seed, **opts)
    first = time.perf_counter() - t0
    walls, cpus, samples, esses, div = [], [], [], [], f1.diagnostics["divergences"]
    for i in range(refits):
        d = data2 if i == 0 else simulate(groups, per, seed + 100 + i)
        t0, c0 = time.perf_counter(), time.process_time()
        f = workbench.fit(FORMULA, d, seed=seed + 1 + i, **opts)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        samples.append(f.diagnostics["sampling_seconds"])
        esses.append(min_bulk_ess(posterior_frame(f), 2))
        div += f.diagnostics["divergences"]
    ess, s = float(np.min(esses)), float(np.median(samples))
    return {"first": first, "compile": 0.0, "sample": s, "refit": float(np.median(walls)),
            "ess": ess, "ess_s": ess / s, "div": div, "cpu": float(np.median(cpus))}


def markdown(df: pd.DataFrame) -> str:
    """A GitHub-style table (3 significant digits), without extra dependencies."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * df.shape[1]]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


COLUMNS = ["data", "method", "first s", "compile s", "sample s", "refit s", "min ESS", "ESS/s",
           "x base", "div"]
ALL_CONFIGS = ["fast", "marginal/nutpie", "noncentered/nutpie", "marginal/pymc", "noncentered/pymc",
               "centered/nutpie", "centered/pymc"]


def _row(data: str, method: str, r: dict, base_ess_s: float) -> dict:
    return {"data": data, "method": method, "first s": r["first"], "compile s": r["compile"],
            "sample s": r["sample"], "refit s": r["refit"], "min ESS": r["ess"],
            "ESS/s": r["ess_s"], "x base": r["ess_s"] / base_ess_s, "div": r["div"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="30 x 5 data, fast and marginal/nutpie")
    ap.add_argument("--sizes", default="30x5,100x10", help="comma-separated GROUPSxPER")
    ap.add_argument("--configs", default=",".join(ALL_CONFIGS[:6]),
                    help=f"comma-separated PARAM/SAMPLER from {ALL_CONFIGS} (centered/pymc is "
                         "left out by default: at tree depth 10 PyMC's Python leapfrogs take minutes)")
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args()
    sizes = ["30x5"] if args.quick else args.sizes.split(",")
    configs = ["fast", "marginal/nutpie"] if args.quick else args.configs.split(",")
    rows = []
    print("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS), flush=True)
    for size in sizes:
        groups, per = (int(v) for v in size.split("x"))
        data = simulate(groups, per, args.seed)
        data2 = simulate(groups, per, args.seed + 1)
        base = baseline(data2, args.seed)
        todo = [("PyMC default (noncentered, pm.sample)", base),
                ("PyMC default, cores=2", baseline(data2, args.seed, cores=2))]
        for cfg in configs:
            if cfg == "fast":
                todo.append(("workbench fast path (default)", run_fast(data, data2, args.seed)))
            else:
                param, sampler = cfg.split("/")
                todo.append((f"workbench {param} / {sampler}",
                             run_workbench(data, data2, param, sampler, args.seed)))
            row = _row(size, *todo[-1], base["ess_s"])
            cpu = todo[-1][1].get("cpu")
            note = f"; refit CPU median {1e3 * cpu:.1f} ms" if cpu is not None else ""
            print(markdown(pd.DataFrame([row])).splitlines()[-1]
                  + f"  <!-- load {os.getloadavg()[0]:.1f}{note} -->", flush=True)
        rows.extend(_row(size, m, r, base["ess_s"]) for m, r in todo)
    print()
    print(f"2 chains x 1000 draws after 1000 tuning; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(markdown(pd.DataFrame(rows, columns=COLUMNS)))


if __name__ == "__main__":
    main()
