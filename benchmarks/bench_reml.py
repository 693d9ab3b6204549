"""REML speed: workbench vs statsmodels MixedLM vs lme4, on the same data in one run.

    python benchmarks/bench_reml.py                  # cases A and B
    python benchmarks/bench_reml.py --case A --skip-statsmodels
    python benchmarks/bench_reml.py --peers          # also mixedlm and mixedlm-rs (PyPI)

A: 200,000 rows, 10,000 groups of 20, ``y ~ 1 + x + (1 + x | g)`` (targets: >= 600x
   statsmodels, >= 60x lme4, peak memory < 1 GB).
B: InstEval, ``y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)`` (target: >= 5x lme4).

Each tool fits from data already in memory (lme4: an R data frame read before the clock starts);
times are the median of ``--repeat`` runs after one warm-up run (statsmodels: one run; the
workbench: at least a second's worth of runs, at most 25, when a fit is quick).  lme4 is
timed when ``Rscript`` with lme4 is installed (Debian: r-base-core r-cran-lme4), with its default
optimizer settings.  The REML criteria are printed too: speed means nothing without agreement.
With ``--peers``, the Python peers ``mixedlm`` (an lme4 port with a Rust backend) and
``mixedlm-rs`` (one grouping factor, so case A only) are timed the same way in their own virtual
environment (``--peers-python``; see ``benchmarks/realdata/crosscheck.py`` for how to make it) by
``benchmarks/realdata/peer_fit.py``, in a subprocess with BLAS held to one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import workbench  # noqa: E402

FORMULA_A = "y ~ 1 + x + (1 + x | g)"
FORMULA_B = "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)"


def data_a(seed: int = 20261125) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    G, m = 10_000, 20
    g = np.repeat(np.arange(G), m)
    x = rng.standard_normal(G * m)
    u = rng.multivariate_normal([0, 0], [[1.0, 0.3], [0.3, 0.5]], size=G)
    y = 1 + 0.5 * x + u[g, 0] + u[g, 1] * x + rng.standard_normal(G * m)
    return pd.DataFrame({"y": y, "x": x, "g": g})


def data_b() -> pd.DataFrame:
    from workbench import datasets

    # factors as strings, as the other tools read them from the CSV written for them
    return datasets.load("InstEval").astype({c: str for c in ["s", "d", "studage", "lectage",
                                                                "service", "dept"]})


def time_workbench(formula, df, repeat):
    """Median elapsed seconds of ``repeat`` fits after a warm-up, and at least a second's worth
    of fits (at most 25) when a fit is quick: a median of three 20 ms fits says little on a
    shared machine."""
    t = time.perf_counter()
    fit = workbench.fit(formula, df)  # warm-up (imports, caches)
    first = time.perf_counter() - t
    times = []
    for _ in range(max(repeat, min(25, int(1.0 / max(first, 1e-3))))):
        t = time.perf_counter()
        fit = workbench.fit(formula, df)
        times.append(time.perf_counter() - t)
    return statistics.median(times), fit.criterion, fit.diagnostics["optimizer"]["evaluations"]


def peak_memory_mb(case: str) -> float:
    """Peak RSS of a fresh process that builds the data and fits it once."""
    code = (
        "import resource, sys; sys.path.insert(0, %r); sys.path.insert(0, %r)\n"
        "import bench_reml as b, workbench\n"
        "df = b.data_a() if %r == 'A' else b.data_b()\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "workbench.fit(b.FORMULA_A if %r == 'A' else b.FORMULA_B, df)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, base / 1024)\n"
    ) % (str(ROOT), str(Path(__file__).parent), case, case)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    peak, base = map(float, out.stdout.split())
    return peak, base


def time_statsmodels(df, formula_kind):
    import statsmodels.formula.api as smf

    t = time.perf_counter()
    if formula_kind == "A":
        model = smf.mixedlm("y ~ x", df, groups="g", re_formula="~x")
    else:
        raise ValueError
    res = model.fit(reml=True)
    elapsed = time.perf_counter() - t
    # statsmodels reports the REML log-likelihood; lme4's criterion is -2 times it
    return elapsed, -2 * res.llf


def lme4_available() -> bool:
    if not shutil.which("Rscript"):
        return False
    r = subprocess.run(["Rscript", "-e", "suppressMessages(library(lme4))"], capture_output=True)
    return r.returncode == 0


def time_lme4(df, formula, factors, repeat):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        df.to_csv(path, index=False)
        fac = "; ".join(f"d${c} <- factor(d${c})" for c in factors)
        script = f"""
suppressMessages(library(lme4))
d <- read.csv("{path}"); {fac}
m <- lmer({formula}, d, REML = TRUE)  # warm-up
ts <- replicate({repeat}, system.time(m <- lmer({formula}, d, REML = TRUE))[["elapsed"]])
cat(median(ts), format(REMLcrit(m), digits = 15), m@optinfo$feval, "\\n")
"""
        out = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        t, crit, nev = out.stdout.split()
        return float(t), float(crit), int(nev)


def time_peers(df, formula, factors, repeat, python):
    """{tool: (seconds, criterion) or an error string} for mixedlm and mixedlm-rs."""
    sys.path.insert(0, str(Path(__file__).parent / "realdata"))
    from crosscheck import PEERS, run_peers

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        df.to_csv(path, index=False)
        jobs = [{"key": "case", "tool": t, "path": str(path), "factors": factors, "formula": formula,
                 "method": "reml", "repeat": repeat} for t in PEERS]
        got = run_peers(jobs, python)
    out = {}
    for t in PEERS:
        r = got[("case", t)]
        out[t] = (r["elapsed"], r["criterion"]) if "elapsed" in r else (r.get("error") or r.get("unsupported"))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=["A", "B", "all"], default="all")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-statsmodels", action="store_true")
    ap.add_argument("--skip-lme4", action="store_true")
    ap.add_argument("--peers", action="store_true", help="also time mixedlm and mixedlm-rs")
    ap.add_argument("--peers-python", default="/work/wt/peers-venv/bin/python")
    ap.add_argument("--json", help="also write the results as JSON to this path")
    args = ap.parse_args(argv)
    have_r = not args.skip_lme4 and lme4_available()
    results = []
    cases = ["A", "B"] if args.case == "all" else [args.case]
    for case in cases:
        if case == "A":
            df, formula, factors = data_a(), FORMULA_A, ["g"]
        else:
            df, formula, factors = data_b(), FORMULA_B, ["s", "d", "service", "dept"]
        row = {"case": case, "formula": formula, "nobs": len(df)}
        load_before = os.getloadavg()[0]
        row["workbench_s"], row["workbench_crit"], row["workbench_evals"] = time_workbench(formula, df, args.repeat)
        row["load_average_1min"] = [load_before, os.getloadavg()[0]]
        row["peak_rss_mb"], row["baseline_rss_mb"] = peak_memory_mb(case)
        if case == "A" and not args.skip_statsmodels:
            row["statsmodels_s"], row["statsmodels_crit"] = time_statsmodels(df, case)
            row["x_statsmodels"] = row["statsmodels_s"] / row["workbench_s"]
        if have_r:
            row["lme4_s"], row["lme4_crit"], row["lme4_evals"] = time_lme4(df, formula, factors, args.repeat)
            row["x_lme4"] = row["lme4_s"] / row["workbench_s"]
        if args.peers:
            for tool, got in time_peers(df, formula, factors, args.repeat, args.peers_python).items():
                if isinstance(got, tuple):
                    row[f"{tool}_s"], row[f"{tool}_crit"] = got
                    row[f"x_{tool}"] = got[0] / row["workbench_s"]
                else:
                    row[f"{tool}_error"] = got
        results.append(row)
        print(f"\n== case {case}: {formula}  ({len(df):,} rows)")
        print(f"  workbench   {row['workbench_s'] * 1000:9.1f} ms   criterion {row['workbench_crit']:.6f}"
              f"   ({row['workbench_evals']} evaluations; peak RSS of a fresh process that makes the"
              f" data and fits it once: {row['peak_rss_mb']:.0f} MB; 1-minute load average"
              f" {row['load_average_1min'][0]:.2f} before, {row['load_average_1min'][1]:.2f} after)")
        if "statsmodels_s" in row:
            print(f"  statsmodels {row['statsmodels_s'] * 1000:9.1f} ms   criterion {row['statsmodels_crit']:.6f}"
                  f"   -> workbench {row['x_statsmodels']:.0f}x faster")
        elif case == "B":
            print("  statsmodels   n/a (MixedLM has no crossed random effects)")
        if "lme4_s" in row:
            print(f"  lme4        {row['lme4_s'] * 1000:9.1f} ms   criterion {row['lme4_crit']:.6f}"
                  f"   ({row['lme4_evals']} evaluations) -> workbench {row['x_lme4']:.1f}x faster")
        else:
            print("  lme4          not timed (Rscript with lme4 not found, or --skip-lme4)")
        for tool in ("mixedlm", "mixedlm-rs") if args.peers else ():
            if f"{tool}_s" in row:
                print(f"  {tool:11s} {row[f'{tool}_s'] * 1000:9.1f} ms   criterion {row[f'{tool}_crit']:.6f}"
                      f"   -> workbench {row[f'x_{tool}']:.1f}x faster")
            else:
                print(f"  {tool:11s}   n/a ({row[f'{tool}_error']})")
        sys.stdout.flush()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
