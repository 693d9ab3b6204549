"""Time a Python peer (``mixedlm`` or ``mixedlm-rs``, from PyPI) on the real-data models.

    /work/wt/peers-venv/bin/python benchmarks/realdata/peer_fit.py JOBS.json OUT.json

Run by ``crosscheck.py --peers`` and ``bench_reml.py --peers`` in the peers' own virtual
environment (their pins clash with the workbench's); it imports nothing from the workbench.
JOBS.json is a list of ``{"key", "tool", "path", "factors", "formula", "method", "repeat"}``;
OUT.json gets, per job, the median elapsed and CPU seconds of ``repeat`` fits after one warm-up,
the criterion (REML criterion or ML deviance, -2 log L) and the peer's version, or an error.

``mixedlm`` takes lme4's formula as it is.  ``mixedlm-rs`` has statsmodels' interface and one
grouping factor: ``y ~ X + (Z | g)`` becomes ``from_formula("y ~ X", groups="g",
re_formula="~Z")``; other models are marked unsupported.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import time
import warnings

import pandas as pd

BAR = re.compile(r"\(([^()|]+)\|\s*([\w.:/]+)\s*\)")


def read(path, factors):
    with warnings.catch_warnings():  # pandas 3 deprecates the option (its default round-trips)
        warnings.simplefilter("ignore")
        return pd.read_csv(path, dtype={c: str for c in factors}, keep_default_na=False,
                           float_precision="round_trip")


def one_factor_parts(formula):
    """Split ``y ~ X + (Z | g)`` into ("y ~ X", "~Z", "g"), or None for any other shape."""
    if "||" in formula or "/" in formula:
        return None
    bars = BAR.findall(formula)
    if len(bars) != 1 or ":" in bars[0][1]:
        return None
    fixed = BAR.sub("", formula)
    fixed = re.sub(r"\+\s*$", "", fixed.strip()).strip()
    fixed = re.sub(r"\+\s*\+", "+", fixed)
    lhs, rhs = fixed.split("~")
    if not rhs.strip():
        fixed = lhs + "~ 1"
    re_terms, group = bars[0]
    return fixed, "~" + re_terms.strip(), group


def fitter(tool, formula, df, method):
    reml = method == "reml"
    if tool == "mixedlm":
        import mixedlm

        def run():
            m = mixedlm.lmer(formula, df, REML=reml)
            crit = m.REMLcrit() if reml else m.deviance
            crit = crit() if callable(crit) else crit
            return float(crit), bool(getattr(m, "converged", True))

        return run, mixedlm.__version__ if hasattr(mixedlm, "__version__") else "?"
    if tool == "mixedlm-rs":
        import mixedlm_rs

        parts = one_factor_parts(formula)
        if parts is None:
            raise NotImplementedError("mixedlm-rs fits one grouping factor only")
        fixed, re_formula, group = parts

        def run():
            m = mixedlm_rs.MixedLM.from_formula(fixed, df, re_formula=re_formula, groups=group)
            r = m.fit(reml=reml)
            return float(-2 * r.llf), bool(getattr(r, "converged", True))

        return run, mixedlm_rs.__version__
    raise ValueError(tool)


def main(jobs_path, out_path):
    jobs = json.loads(open(jobs_path).read())
    out = []
    for job in jobs:
        row = {"key": job["key"], "tool": job["tool"]}
        try:
            df = read(job["path"], job["factors"])
            run, version = fitter(job["tool"], job["formula"], df, job["method"])
            row["version"] = version
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                run()  # warm-up
                el, cpu = [], []
                for _ in range(job["repeat"]):
                    t, c = time.perf_counter(), time.process_time()
                    crit, conv = run()
                    el.append(time.perf_counter() - t)
                    cpu.append(time.process_time() - c)
            row.update(elapsed=statistics.median(el), cpu=statistics.median(cpu),
                       criterion=crit, converged=conv)
        except NotImplementedError as e:
            row["unsupported"] = str(e)
        except Exception as e:  # a peer's failure is a result, not a crash of the benchmark
            row["error"] = f"{type(e).__name__}: {e}"[:300]
        out.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    open(out_path, "w").write(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:3])
