"""Random effects with a residual correlation structure: workbench (gls/lme.py) beside nlme.

    PYTHONPATH=. python benchmarks/bench_lme.py            # the 12 fits of the nlme reference
    PYTHONPATH=. python benchmarks/bench_lme.py --repeat 5 --no-r

For each case of ``tests/reference/gls/lme_reference.json`` (REML and ML): the median time of
``workbench.fit(..., correlation=)`` (the committed fitter: theta profiled by the engine
inside a search over the structure's parameter, plus the interval and the identifiability and
convergence checks), of a joint L-BFGS-B over (theta, u) on the same criterion (the analytic
theta gradient of the whitened system, central differences in u; no interval, no checks),
which is the alternative fit_lme's docstring weighs, and of ``nlme::lme`` in the same run
(Rscript, ``system.time`` over the same repeats).  The criterion columns show where each
search ended (-2 log L; lower is better).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import workbench  # noqa: E402
from workbench.design import build_design  # noqa: E402
from workbench.formula import parse_formula  # noqa: E402
from workbench.gls.corstruct import correlation_rows, parse_correlation  # noqa: E402
from workbench.gls.lme import LmeProblem  # noqa: E402
from workbench.gls.residual import STRUCTURES  # noqa: E402
from workbench.reml.criterion import make_objective  # noqa: E402

REF_DIR = ROOT / "tests" / "reference" / "gls"
GROUPS = {k: str for k in ("Mare", "Subject", "Rat", "Diet")}

R_TIMING = r"""
suppressPackageStartupMessages(library(nlme))
args <- commandArgs(trailingOnly = TRUE)
here <- args[1]; reps <- as.integer(args[2]); out <- args[3]
src <- readLines(file.path(here, "make_lme_reference.R"))
# the cases and the data as the reference script builds them, without its fits
stop_at <- grep("^re_rows <- function", src)[1] - 1
exprs <- parse(text = src[grep("^bw <- as.data.frame", src)[1]:stop_at])
for (e in exprs) if (!grepl("write.csv", deparse(e)[1])) eval(e)
res <- c()
for (nm in names(cases)) for (method in c("REML", "ML")) {
  cc <- cases[[nm]]
  one <- function(i) system.time(lme(cc$fixed, data = cc$data, random = cc$random,
                                     correlation = cc$cor, method = method))[["elapsed"]]
  t <- sapply(seq_len(reps), one)
  res[paste(nm, method)] <- median(t)
}
writeLines(jsonlite::toJSON(as.list(res), auto_unbox = TRUE, digits = NA), out)
"""


def joint_fit(prob: LmeProblem):
    from scipy.optimize import Bounds, minimize

    wh, nf = prob.wh, len(prob.lower)

    def fg(x):
        phi, u = x[:nf], x[nf:]
        theta = phi * prob.scale
        system, logdet = prob.system(u)
        v, g = make_objective(system, prob.reml)(theta)
        gu = np.empty(u.size)
        for k in range(u.size):
            e = np.zeros(u.size)
            e[k] = 1e-6
            gu[k] = (prob.joint(theta, u + e) - prob.joint(theta, u - e)) / 2e-6
        return v + logdet, np.concatenate([g * prob.scale, gu])

    x0 = np.concatenate([prob.theta / prob.scale, wh.start()])
    lo = np.concatenate([prob.lower / prob.scale, [-30.0] * wh.size])
    hi = np.concatenate([np.full(nf, np.inf), [30.0] * wh.size])
    return minimize(fg, x0, jac=True, method="L-BFGS-B", bounds=Bounds(lo, hi),
                    options={"ftol": 1e-13, "gtol": 1e-7, "maxiter": 2000, "maxls": 40}).fun


def median_time(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-r", action="store_true", help="skip the nlme timings")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    ref = json.loads((REF_DIR / "lme_reference.json").read_text())
    nlme = {}
    if not args.no_r:
        with tempfile.TemporaryDirectory() as tmp:
            script, out = Path(tmp) / "t.R", Path(tmp) / "t.json"
            script.write_text(R_TIMING)
            subprocess.run(["Rscript", str(script), str(REF_DIR), str(args.repeat), str(out)],
                           check=True)
            nlme = json.loads(out.read_text())
    print(f"{'case':22s} {'':4s} {'workbench':>9s} {'joint':>7s} {'nlme':>7s}  "
          f"{'-2logL workbench':>17s} {'joint - workbench':>17s}")
    for name, c in ref["cases"].items():
        data = pd.read_csv(REF_DIR / c["csv"], dtype=GROUPS)
        spec, corr = parse_formula(c["formula"]), parse_correlation(c["correlation"])
        rows, codes, pos = correlation_rows(spec, data, corr)
        design = build_design(spec, rows)
        for method in ("REML", "ML"):
            reml = method == "REML"
            fit = workbench.fit(c["formula"], data, method=method.lower(),
                                correlation=c["correlation"])
            t_wb = median_time(lambda: workbench.fit(c["formula"], data, method=method.lower(),
                                                     correlation=c["correlation"]), args.repeat)
            crit = {}

            def joint():
                crit["joint"] = joint_fit(LmeProblem(design, STRUCTURES[corr.kind](codes, pos),
                                                     reml))

            t_joint = median_time(joint, args.repeat)
            t_r = nlme.get(f"{name} {method}", float("nan"))
            print(f"{name:22s} {method:4s} {t_wb:8.3f}s {t_joint:6.3f}s {t_r:6.3f}s  "
                  f"{fit.criterion:17.9f} {crit['joint'] - fit.criterion:+17.1e}")


if __name__ == "__main__":
    main()
