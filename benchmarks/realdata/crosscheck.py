"""Real-data cross-check: the workbench against lme4 (and the Python peers) on R's data sets.

    python benchmarks/realdata/crosscheck.py                 # every model in references.json
    python benchmarks/realdata/crosscheck.py --small         # committed (small) data sets only
    python benchmarks/realdata/crosscheck.py --only spruce,sleepstudy --method reml
    python benchmarks/realdata/crosscheck.py --peers         # also time mixedlm and mixedlm-rs
    python benchmarks/realdata/crosscheck.py --retime-lme4   # time lme4 again, in this run

``references.json`` and the data come from ``Rscript benchmarks/realdata/export.R`` (the big data
sets, InstEval, STAR and Chem97, are regenerated into the git-ignored ``big/``).  Per fit it
prints:

- ``d_def``, ``d_tight``: our criterion (REML criterion or ML deviance, -2 log L) minus lme4's
  with default controls and with tight tolerances (the lower of nloptwrap and bobyqa);
- ``beta/SE``: the largest |our fixed effect - lme4-tight's| in lme4-tight's standard errors;
- ``conv``: our ``converged`` flag, and ``ok`` when it agrees with the truth, which is "converged"
  exactly when our criterion is at or below lme4-tight's + 1e-6 relative;
- ``x el``, ``x cpu``: lme4's time over ours (default controls; elapsed and CPU; median of 7 runs
  under 2,000 rows, 3 under 20,000, else 1, after a warm-up fit; each tool fits from a data frame
  in memory). lme4's times are export.R's unless ``--retime-lme4`` times it again in this run
  (needs Rscript with lme4), which is fairer on a machine whose load changes.

and a summary: worst criterion excess, wrong flags, errors, the median speed ratio, the models
slower than lme4, and the models under 1,000 rows fitted in under 10 ms.

With ``--peers``, ``peer_fit.py`` times ``mixedlm`` and ``mixedlm-rs`` (PyPI) on the same models in
their own virtual environment (``--peers-python``, default ``/work/wt/peers-venv/bin/python``;
create it with ``python3 -m venv /work/wt/peers-venv && /work/wt/peers-venv/bin/pip install
mixedlm mixedlm-rs``), and prints their times over ours and their criteria minus lme4-tight's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

import workbench  # noqa: E402

REL_TOL = 1e-6
# numbers parsed as R parses them (pandas 3 does by default and deprecates the option)
ROUND_TRIP = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
PEERS = ("mixedlm", "mixedlm-rs")
DEFAULT_PEERS_PYTHON = "/work/wt/peers-venv/bin/python"


def load_references(path: Path = HERE / "references.json") -> dict:
    return json.loads(path.read_text())


def read_data(ref: dict) -> pd.DataFrame:
    """The model's CSV as R wrote it: factors as strings (a level "None" is a level: the files
    hold complete cases only), numbers parsed as R parses them."""
    return pd.read_csv(HERE / ref["data"], dtype={c: str for c in ref["factors"]},
                       keep_default_na=False, **ROUND_TRIP)


def repeats(nobs: int) -> int:
    return 7 if nobs < 2000 else 3 if nobs < 20000 else 1


def fit_workbench(ref: dict, df: pd.DataFrame, repeat: int):
    """Fit once (kept), then time ``repeat`` more fits; returns the fit, elapsed and CPU medians."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = workbench.fit(ref["formula"], df, method=ref["method"])
    el, cpu = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeat):
            t, c = time.perf_counter(), time.process_time()
            workbench.fit(ref["formula"], df, method=ref["method"])
            el.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    return fit, statistics.median(el), statistics.median(cpu), [str(w.message) for w in caught]


def compare(ref: dict, fit) -> dict:
    """Our fit against lme4's default and tight fits."""
    tight, default = ref["tight"], ref["default"]
    crit = float(fit.criterion)
    excess = crit - tight["criterion"]
    rel = excess / abs(tight["criterion"])
    beta = {k: float(v) for k, v in fit.beta.items()}
    zs = []
    for name, value in tight["beta"].items():
        if name in beta:
            zs.append(abs(beta[name] - value) / tight["beta_se"][name])
        else:
            zs.append(math.inf)  # a coefficient we do not have (or name differently)
    truth = bool(rel <= REL_TOL)
    return {
        "criterion": crit,
        "d_default": crit - default["criterion"],
        "d_tight": excess,
        "rel_tight": rel,
        "beta_z": max(zs) if zs else 0.0,
        "sigma_rel": abs(float(fit.sigma) - tight["sigma"]) / tight["sigma"],
        "converged": bool(fit.converged),
        "truth": truth,
        "flag_ok": bool(fit.converged) == truth,
        "singular": bool(fit.singular),
        "lme4_singular": bool(tight["singular"]),
    }


def run_peers(jobs: list[dict], python: str) -> dict:
    """Run peer_fit.py in the peers' interpreter; returns {(key, tool): row}."""
    with tempfile.TemporaryDirectory() as tmp:
        jp, op = Path(tmp) / "jobs.json", Path(tmp) / "out.json"
        jp.write_text(json.dumps(jobs))
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        env.pop("PYTHONPATH", None)
        subprocess.run([python, str(HERE / "peer_fit.py"), str(jp), str(op)], check=True, env=env,
                       stderr=subprocess.DEVNULL)
        return {(r["key"], r["tool"]): r for r in json.loads(op.read_text())}


RETIME_R = r"""
suppressMessages({library(lme4); library(jsonlite)})
jobs <- fromJSON("%s", simplifyVector = FALSE)
out <- lapply(jobs, function(j) {
  cc <- setNames(rep("character", length(j$factors)), unlist(j$factors))
  d <- read.csv(j$path, colClasses = cc, na.strings = character())
  for (c in unlist(j$factors)) d[[c]] <- factor(d[[c]], levels = sort(unique(d[[c]]), method = "radix"))
  f <- function() suppressWarnings(suppressMessages(
    lmer(as.formula(j$formula), d, REML = j$method == "reml")))
  f()
  t <- replicate(j[["repeat"]], system.time(f()))
  list(key = j$key, elapsed = median(t["elapsed", ]),
       cpu = median(t["user.self", ] + t["sys.self", ]))
})
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA), "%s")
"""


def retime_lme4(todo: list[dict], repeat) -> dict:
    """lme4's default fit timed now, in this run (Rscript): {key: {"elapsed", "cpu", "reps"}}."""
    with tempfile.TemporaryDirectory() as tmp:
        jp, op = Path(tmp) / "jobs.json", Path(tmp) / "out.json"
        jp.write_text(json.dumps([{"key": r["name"], "path": str(HERE / r["data"]), "factors": r["factors"],
                                   "formula": r["formula"], "method": r["method"],
                                   "repeat": repeat or repeats(r["nobs"])} for r in todo]))
        r = subprocess.run(["Rscript", "-e", RETIME_R % (jp, op)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"Rscript failed: {r.stderr[-500:]}")
        return {r["key"]: r for r in json.loads(op.read_text())}


def fmt_ratio(x):
    return f"{x:7.1f}" if x is not None and math.isfinite(x) else "      -"


def size_class(n: int) -> str:
    return "<1k" if n < 1000 else "1k-10k" if n < 10000 else ">=10k"


def summarize(rows: list[dict], peers: bool) -> list[str]:
    ok = [r for r in rows if "error" not in r]
    lines = ["", f"== summary: {len(rows)} fits ({len(rows) - len(ok)} errors), "
             f"{len({r['model'] for r in rows})} models"]
    if not ok:
        return lines
    worst = max(ok, key=lambda r: r["rel_tight"])
    lines.append(f"correctness: worst criterion excess over lme4-tight {worst['d_tight']:+.3g} "
                 f"({worst['rel_tight']:+.2e} relative, {worst['key']}); "
                 f"{sum(r['rel_tight'] > REL_TOL for r in ok)} fits above it by more than 1e-6 relative; "
                 f"{sum(r['d_tight'] < -1e-6 for r in ok)} below it by more than 1e-6")
    wrong = [r["key"] for r in ok if not r["flag_ok"]]
    lines.append(f"converged flag wrong on {len(wrong)} fits: {', '.join(wrong) or '-'}")
    lines.append(f"largest fixed-effect difference: {max(r['beta_z'] for r in ok):.3g} SE "
                 f"({max(ok, key=lambda r: r['beta_z'])['key']})")
    for kind in ("el", "cpu"):
        ratios = [r[f"x_{kind}"] for r in ok]
        slow = [r["key"] for r in ok if r[f"x_{kind}"] < 1]
        lines.append(f"speed (lme4 / workbench, {'elapsed' if kind == 'el' else 'CPU'}): median "
                     f"{statistics.median(ratios):.2f}x, worst {min(ratios):.2f}x, best {max(ratios):.1f}x; "
                     f"{len(slow)} fits slower than lme4" + (f" ({', '.join(slow)})" if slow else ""))
    for cls in ("<1k", "1k-10k", ">=10k"):
        sub = [r for r in ok if size_class(r["nobs"]) == cls]
        if sub:
            lines.append(f"  {cls:>6} rows: {len(sub):3d} fits, median {statistics.median(r['x_el'] for r in sub):.2f}x"
                         f" elapsed, worst {min(r['x_el'] for r in sub):.2f}x; our median "
                         f"{1000 * statistics.median(r['elapsed'] for r in sub):.1f} ms")
    small = [r for r in ok if r["nobs"] < 1000]
    fast = [r for r in small if r["elapsed"] < 0.010]
    lines.append(f"under 1,000 rows: {len(fast)} of {len(small)} fits in under 10 ms")
    if peers:
        for tool in PEERS:
            got = [r for r in ok if r.get(f"{tool}_el")]
            if not got:
                continue
            ratios = [r[f"{tool}_el"] / r["elapsed"] for r in got]
            over = [r["key"] for r in got if r[f"{tool}_el"] * 1.5 < r["elapsed"]]
            ex = [r[f"{tool}_d_tight"] for r in got if r.get(f"{tool}_d_tight") is not None]
            worse = [r["key"] for r in got if r[f"{tool}_d_tight"] > REL_TOL * abs(r["criterion"])]
            lines.append(f"{tool}: {len(got)} fits; its time over ours median {statistics.median(ratios):.2f}x, "
                         f"worst {min(ratios):.2f}x; we are slower than it by more than 1.5x on {len(over)}"
                         + (f" ({', '.join(over)})" if over else ""))
            lines.append(f"  {tool} criterion minus lme4-tight: worst {max(ex):+.3g}; above by > 1e-6 relative on "
                         f"{len(worse)}" + (f" ({', '.join(worse)})" if worse else "")
                         + f"; errors/unsupported: {sum(1 for r in ok if r.get(f'{tool}_status'))}")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated model names (e.g. spruce,sleepstudy)")
    ap.add_argument("--method", choices=["reml", "ml", "both"], default="both")
    ap.add_argument("--small", action="store_true", help="committed data sets only")
    ap.add_argument("--repeat", type=int, help="timed runs per fit (default: by size, as export.R)")
    ap.add_argument("--peers", action="store_true", help="also time mixedlm and mixedlm-rs")
    ap.add_argument("--peers-python", default=DEFAULT_PEERS_PYTHON)
    ap.add_argument("--retime-lme4", action="store_true",
                    help="time lme4 again in this run (needs Rscript) instead of using export.R's times")
    ap.add_argument("--json", help="also write the per-fit rows as JSON to this path")
    args = ap.parse_args(argv)
    refs = load_references()["models"]
    only = set(args.only.split(",")) if args.only else None
    todo = [r for r in refs.values()
            if (only is None or r["model"] in only or r["name"] in only)
            and (args.method == "both" or r["method"] == args.method)
            and (r["committed"] or not args.small)
            and "error" not in r and (HERE / r["data"]).exists()]
    missing = [r["name"] for r in refs.values() if not (HERE / r["data"]).exists()]
    if missing:
        print(f"(no data for {len(missing)} fits: run Rscript benchmarks/realdata/export.R)")
    head = (f"{'fit':28s} {'rows':>6s} {'ours ms':>8s} {'d_def':>10s} {'d_tight':>10s} {'beta/SE':>8s}"
            f" {'conv':>5s} {'ok':>3s} {'x el':>7s} {'x cpu':>7s}")
    if args.peers:
        head += "  " + "  ".join(f"{t + ' x':>13s} {'d_tight':>9s}" for t in PEERS)
    print(head)
    rows = []
    peer_rows = {}
    if args.peers:
        jobs = [{"key": r["name"], "tool": t, "path": str(HERE / r["data"]), "factors": r["factors"],
                 "formula": r["formula"], "method": r["method"],
                 "repeat": args.repeat or repeats(r["nobs"])} for r in todo for t in PEERS]
        peer_rows = run_peers(jobs, args.peers_python)
    if args.retime_lme4:
        for key, t in retime_lme4(todo, args.repeat).items():
            refs[key] = dict(refs[key], time=t)
        todo = [refs[r["name"]] for r in todo]
    for ref in todo:
        row = {"key": ref["name"], "model": ref["model"], "nobs": ref["nobs"], "formula": ref["formula"]}
        try:
            df = read_data(ref)
            fit, el, cpu, warns = fit_workbench(ref, df, args.repeat or repeats(ref["nobs"]))
            row.update(compare(ref, fit), elapsed=el, cpu=cpu, warnings=warns,
                       x_el=ref["time"]["elapsed"] / el, x_cpu=ref["time"]["cpu"] / cpu)
        except Exception as e:  # an error is a finding, reported in the table
            row["error"] = f"{type(e).__name__}: {e}"
            print(f"{ref['name']:28s} {ref['nobs']:6d}  ERROR {row['error'][:150]}")
            rows.append(row)
            continue
        line = (f"{ref['name']:28s} {ref['nobs']:6d} {1000 * el:8.1f} {row['d_default']:+10.2e} "
                f"{row['d_tight']:+10.2e} {row['beta_z']:8.1e} {str(row['converged'])[0]:>5s} "
                f"{'ok' if row['flag_ok'] else 'NO':>3s} {fmt_ratio(row['x_el'])} {fmt_ratio(row['x_cpu'])}")
        for tool in PEERS:
            p = peer_rows.get((ref["name"], tool))
            if p is None:
                continue
            if "elapsed" in p:
                row[f"{tool}_el"] = p["elapsed"]
                row[f"{tool}_d_tight"] = p["criterion"] - ref["tight"]["criterion"]
                line += f"  {p['elapsed'] / el:13.2f} {row[f'{tool}_d_tight']:+9.1e}"
            else:
                row[f"{tool}_status"] = p.get("error") or p.get("unsupported")
                line += f"  {'error' if 'error' in p else 'n/a':>13s} {'':>9s}"
        print(line, flush=True)
        rows.append(row)
    for line in summarize(rows, args.peers):
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return rows


if __name__ == "__main__":
    main()
