"""Benchmark: the REML arm of the Maas & Hox (2005) study, and the Bayesian arm's cost per replicate.

Targets: 27 conditions x 1000 replicates = 27,000 REML fits in under 5 minutes on 2 cores
(issue 6); the Bayesian arm's 27,000 fits in under 30 minutes on 2 workers (issue 12).  Usage::

    python benchmarks/bench_study.py                       # full REML arms, 2 workers
    python benchmarks/bench_study.py --methods bayes       # the full Bayesian arm, 2 workers
    python benchmarks/bench_study.py --replicates 40       # a sample, extrapolated to 27,000
    python benchmarks/bench_study.py --per-fit --bayes 3   # where the time goes; Bayes cost
    python benchmarks/bench_study.py --plain               # drop arm options the engine lacks

Prints the run time, fits per second, the extrapolation to 27,000 fits, the per-fit time split
(simulate / design / optimise) by condition, the Bayesian arm's compile and per-replicate
seconds, and the Maas & Hox non-coverage table of each REML arm.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "studies" / "maas_hox_2005.toml"
TARGET_S = {"reml": 300.0, "bayes": 1800.0}  # 27,000 fits on 2 workers


def _study(plain: bool):
    from workbench.simulate.schema import read_toml
    from workbench.study.spec import study_from_dict

    data = read_toml(STUDY)
    if plain:
        for m in data["methods"].values():
            if m["method"] != "bayes":
                m["options"] = {}
    return study_from_dict(data, source=str(STUDY), base_dir=STUDY.parent)


def time_arm(study, method: str, replicates: int, workers: int, out: Path) -> dict:
    from workbench.study.run import run_study

    t0 = time.perf_counter()
    report = run_study(study, out, replicates=replicates, methods=[method], workers=workers,
                       progress=True)
    secs = time.perf_counter() - t0
    fits = report.fits
    return {"method": method, "fits": fits, "seconds": secs, "per_fit_ms": 1e3 * secs / max(fits, 1),
            "extrapolated_27000_s": secs / max(fits, 1) * 27000}


def per_fit_split(study, method: str, reps: int = 5, profile: bool = False) -> None:
    """In one process: simulate, build_design and fit times per condition (mean of ``reps``)."""
    import warnings

    import workbench
    from workbench.design import build_design
    from workbench.simulate.generate import generate
    from workbench.study.replicate import replicate_rng

    opts = study.spec.methods[method].options
    kind = study.spec.methods[method].method
    print(f"\nper-fit time split, one process, arm '{method}' (mean of {reps} replicates):")
    print(f"{'n_groups':>9}{'size':>6}{'icc':>6}{'rows':>7}{'simulate ms':>13}{'design ms':>11}"
          f"{'fit ms':>9}{'evals':>7}")
    prof = cProfile.Profile() if profile else None
    for c in study.conditions:
        if c.values["icc"] != 0.2:
            continue
        ts, td, tf, ev, n = 0.0, 0.0, 0.0, 0, 0
        for r in range(reps):
            t0 = time.perf_counter()
            data = generate(c.design, replicate_rng(study.spec.seed, c.id, r))
            t1 = time.perf_counter()
            build_design(c.design.formula, data)
            t2 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if prof:
                    prof.enable()
                fit = workbench.fit(c.design.formula, data, method=kind, **opts)
                if prof:
                    prof.disable()
            t3 = time.perf_counter()
            ts, td, tf = ts + t1 - t0, td + t2 - t1, tf + t3 - t2
            ev += (fit.diagnostics.get("optimizer") or {}).get("evaluations", 0)
            n = len(data)
        print(f"{c.values['n_groups']:>9}{c.values['group_size']:>6}{c.values['icc']:>6}{n:>7}"
              f"{1e3 * ts / reps:>13.2f}{1e3 * td / reps:>11.2f}{1e3 * tf / reps:>9.1f}{ev / reps:>7.0f}")
    if prof:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(18)
        print("\nprofile of workbench.fit (cumulative):")
        print("\n".join(s.getvalue().splitlines()[:45]))


def bayes_cost(study, reps: int) -> None:
    """Seconds per replicate of the Bayesian arm, first (compiling) and later ones."""
    from workbench.study.replicate import run_batch
    from workbench.study.run import make_task

    ms = study.spec.methods["bayes"]
    c = next(x for x in study.conditions if x.values == {"n_groups": 50, "group_size": 30, "icc": 0.2})
    times = []
    for r in range(reps):
        t0 = time.perf_counter()
        rows = run_batch(make_task(study, c, "bayes", [r], study.spec.seed))
        times.append(time.perf_counter() - t0)
        err = rows["error"].dropna()
        if len(err):
            print(f"bayes replicate {r} failed: {err.iloc[0]}")
    print(f"\nBayesian arm ({ms.options}), condition {c.values}, one process:")
    print("  seconds per replicate: " + ", ".join(f"{t:.1f}" for t in times)
          + (f"  (first includes compiling; later mean {sum(times[1:]) / len(times[1:]):.1f} s)"
             if len(times) > 1 else ""))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--methods", default="reml,reml_lme4")
    ap.add_argument("--plain", action="store_true", help="drop REML arm options (timing only)")
    ap.add_argument("--per-fit", action="store_true", help="time the pieces of one fit")
    ap.add_argument("--profile", action="store_true", help="cProfile the fits (with --per-fit)")
    ap.add_argument("--bayes", type=int, default=0, metavar="N", help="time N Bayesian replicates")
    ap.add_argument("--out", type=Path, default=None, help="keep results here (default: temporary)")
    args = ap.parse_args(argv)

    from workbench.errors import WorkbenchError
    from workbench.study.store import open_results
    from workbench.study.summary import format_noncoverage, noncoverage_table

    study = _study(args.plain)
    tmp = Path(tempfile.mkdtemp(prefix="bench_study_"))
    try:
        for m in [x for x in args.methods.split(",") if x]:
            out = (args.out or tmp) / m
            try:
                r = time_arm(study, m, args.replicates, args.workers, out)
            except WorkbenchError as exc:
                print(f"arm {m}: not run: {exc}")
                continue
            target = TARGET_S["bayes" if study.spec.methods[m].method == "bayes" else "reml"]
            print(f"arm {m}: {r['fits']} fits in {r['seconds']:.1f} s on {args.workers} workers = "
                  f"{r['per_fit_ms']:.1f} ms/fit wall; 27,000 fits -> {r['extrapolated_27000_s'] / 60:.1f} min "
                  f"(target {target / 60:.0f} min: ratio {r['extrapolated_27000_s'] / target:.2f})")
            manifest, results = open_results(out)
            print(format_noncoverage(noncoverage_table(results, manifest, "n_groups"), "n_groups"))
            fails = results.groupby("replicate")["error"].apply(lambda e: e.notna().any()).mean()
            print(f"  failed fits: {fails:.3%}")
        if args.per_fit:
            arms = [x for x in args.methods.split(",") if x] or ["reml"]
            for arm in arms:
                per_fit_split(study, arm, profile=args.profile)
        if args.bayes:
            bayes_cost(study, args.bayes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
