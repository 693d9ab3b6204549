"""Fixed cost of a small fit: per-model median time and the share spent evaluating the criterion.

    PYTHONPATH=. python benchmarks/bench_small.py                  # every committed model < 1,000 rows
    PYTHONPATH=. python benchmarks/bench_small.py --only penicillin,pastes --repeat 21
    PYTHONPATH=. python benchmarks/bench_small.py --json out.json  # rows kept for a before/after

Each fit is ``workbench.fit(formula, df, method)`` from a data frame in memory (the real-data
suite's CSVs in ``benchmarks/realdata/data``, read once), timed ``--repeat`` times after one
warm-up fit; ``ms`` is elapsed time, ``cpu`` CPU time (steadier on a loaded machine; the
before/after comparison uses it). ``crit`` is the CPU time inside the criterion (and objective)
callables the optimizer calls, measured by wrapping :func:`workbench.reml.criterion.make_criterion` and
``make_objective`` as ``workbench.reml.fit`` sees them (the wrappers add about a microsecond per
evaluation); ``other`` is the rest: parsing, design, structure, the optimizer's own Python,
the record. ``--compare FILE`` prints the medians of an earlier ``--json`` run beside these.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "realdata"))

import workbench  # noqa: E402
import workbench.reml.fit as reml_fit  # noqa: E402
from crosscheck import load_references, read_data  # noqa: E402

_spent = [0.0, 0]  # seconds inside criterion evaluations, evaluations


def _timed(fn):
    if fn is None:
        return None

    def wrapped(theta):
        t = time.process_time()
        try:
            return fn(theta)
        finally:
            _spent[0] += time.process_time() - t
            _spent[1] += 1

    for attr in ("system", "reml"):
        if hasattr(fn, attr):
            setattr(wrapped, attr, getattr(fn, attr))
    return wrapped


_make_criterion, _make_objective = reml_fit.make_criterion, reml_fit.make_objective
reml_fit.make_criterion = lambda *a, **k: _timed(_make_criterion(*a, **k))
reml_fit.make_objective = lambda *a, **k: _timed(_make_objective(*a, **k))


def time_fit(ref: dict, df, repeat: int) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        workbench.fit(ref["formula"], df, method=ref["method"])
        total, cpu, crit, evals = [], [], [], []
        for _ in range(repeat):
            _spent[:] = [0.0, 0]
            t, c = time.perf_counter(), time.process_time()
            workbench.fit(ref["formula"], df, method=ref["method"])
            total.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
            crit.append(_spent[0])
            evals.append(_spent[1])
    return {"key": ref["name"], "nobs": ref["nobs"], "ms": 1000 * statistics.median(total),
            "cpu_ms": 1000 * statistics.median(cpu), "crit_ms": 1000 * statistics.median(crit),
            "evals": int(statistics.median(evals))}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated model or fit names")
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--max-rows", type=int, default=1000)
    ap.add_argument("--json", help="write the rows to this path")
    ap.add_argument("--compare", help="an earlier --json output to print beside this run")
    args = ap.parse_args(argv)
    refs = load_references()["models"]
    only = set(args.only.split(",")) if args.only else None
    todo = [r for r in refs.values() if r["committed"] and r["nobs"] < args.max_rows
            and "error" not in r and (only is None or r["model"] in only or r["name"] in only)]
    before = {}
    if args.compare:
        before = {r["key"]: r for r in json.loads(Path(args.compare).read_text())}
    frames = {}
    rows = []
    print(f"{'fit':28s} {'rows':>5s} {'evals':>5s} {'ms':>7s} {'cpu ms':>7s} {'crit':>6s} {'other':>6s}"
          f" {'crit %':>6s}" + (f" {'cpu before':>10s} {'x':>5s}" if before else ""))
    for ref in todo:
        df = frames.get(ref["data"])
        if df is None:
            df = frames[ref["data"]] = read_data(ref)
        r = time_fit(ref, df, args.repeat)
        rows.append(r)
        line = (f"{r['key']:28s} {r['nobs']:5d} {r['evals']:5d} {r['ms']:7.2f} {r['cpu_ms']:7.2f}"
                f" {r['crit_ms']:6.2f} {r['cpu_ms'] - r['crit_ms']:6.2f}"
                f" {100 * r['crit_ms'] / r['cpu_ms']:6.0f}")
        if r["key"] in before:
            b = before[r["key"]]["cpu_ms"]
            line += f" {b:10.2f} {b / r['cpu_ms']:5.2f}"
        print(line, flush=True)
    print()
    for col, what in (("ms", "elapsed"), ("cpu_ms", "CPU")):
        ms = [r[col] for r in rows]
        print(f"{len(rows)} fits, {what}: median {statistics.median(ms):.2f} ms; "
              f"{sum(m < 10 for m in ms)} of {len(rows)} under 10 ms")
    print(f"median criterion share {100 * statistics.median(r['crit_ms'] / r['cpu_ms'] for r in rows):.0f}%"
          f" of CPU; median CPU outside the criterion "
          f"{statistics.median(r['cpu_ms'] - r['crit_ms'] for r in rows):.2f} ms")
    if before:
        common = [r for r in rows if r["key"] in before]
        for col, what in (("ms", "elapsed"), ("cpu_ms", "CPU")):
            b = [before[r["key"]][col] for r in common]
            print(f"before, {what}: median {statistics.median(b):.2f} ms, {sum(m < 10 for m in b)} under "
                  f"10 ms; median speed-up {statistics.median(bb / r[col] for bb, r in zip(b, common)):.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
