"""Run a study: schedule the missing replicates on Dask, write chunks as they complete.

Work is split into tasks of one condition x one method x a batch of replicates (25 for
REML/ML, 2 for Bayes by default), so scheduling overhead stays small next to millisecond fits.
By default the tasks run on a ``dask.distributed.LocalCluster`` (one single-threaded process per
worker); ``scheduler`` connects to an existing cluster instead (its workers need workbench
installed); ``workers=0`` runs them in this process, without Dask.  Results come back to this
process, which writes each task's chunk atomically; rerunning the same command resumes.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError, StudyCliError, StudyInterrupted, WorkbenchError
from ..io import check_output_dir
from ..simulate.generate import formula_layout
from .replicate import Task, run_batch
from .sbc import sbc_batch
from .spec import Study
from .store import Store

#: The most fits one run plans (its task list is held in memory).
MAX_FITS = 10_000_000
#: Seconds to wait for a ``--scheduler`` to answer.
CONNECT_TIMEOUT = 5
_WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class RunReport:
    """What a run did."""

    out: str
    tasks: int
    fits: int
    skipped_fits: int
    removed_chunks: list
    seconds: float

    def __str__(self) -> str:
        s = (f"{self.fits} fits in {self.tasks} tasks, {self.seconds:.1f} s; "
             f"{self.skipped_fits} already done; results in {self.out}")
        if self.removed_chunks:
            s += f"; {len(self.removed_chunks)} bad chunk(s) redone"
        return s


def make_task(study: Study, condition, label: str, replicates, seed: int) -> Task:
    """The task of some replicates of one condition under one method arm."""
    arm = study.spec.methods[label]
    sbc = ({"thin_to": study.spec.sbc_thin_to, "truth_priors": arm.truth_priors}
           if study.spec.truth == "prior" else None)
    return Task(condition=condition.id, design=condition.design.model_dump(mode="json"),
                truth=condition.truth, method=label,
                spec=study.spec.methods[label].model_dump(mode="json"),
                replicates=tuple(replicates), seed=seed, parameters=tuple(study.parameters),
                level=study.spec.level, group_effects=study.spec.group_effects,
                groups=formula_layout(condition.design)["groups"], sbc=sbc)


def run_task(task: Task):
    """Run one task: :func:`~workbench.study.sbc.sbc_batch` for a study whose truth is drawn
    from the prior, else :func:`~workbench.study.replicate.run_batch`."""
    return sbc_batch(task) if task.sbc is not None else run_batch(task)


def plan_tasks(study: Study, methods: list[str], replicates: int, seed: int, done: dict,
               batch: int | None = None) -> list[Task]:
    """The tasks of the replicates not yet done, conditions interleaved."""
    per_cond = []
    for c in study.conditions:
        tasks = []
        for m in methods:
            have = done.get((c.id, m), set())
            missing = [r for r in range(replicates) if r not in have]
            size = batch or study.spec.methods[m].default_batch
            for i in range(0, len(missing), size):
                tasks.append(make_task(study, c, m, missing[i:i + size], seed))
        per_cond.append(tasks)
    # round-robin over conditions so a partial run covers every condition
    out = []
    depth = max((len(t) for t in per_cond), default=0)
    for i in range(depth):
        for tasks in per_cond:
            if i < len(tasks):
                out.append(tasks[i])
    return out


def preflight(study: Study, methods: list[str], seed: int) -> None:
    """Fit replicate 0 of the first condition with every REML/ML arm, in this process, so a
    misconfigured arm fails before any work is scheduled.

    Raises
    ------
    SpecError
        From the fit: a bad option or prior (:func:`run_batch` re-raises it).
    """
    c = study.conditions[0]
    for m in methods:
        if study.spec.methods[m].method == "bayes":
            continue  # sampling is costly; a bad Bayesian option fails on the first task
        run_batch(make_task(study, c, m, [0], seed))


def _progress(total: int, enabled: bool):
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    return Progress(TextColumn("[bold]fits"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                    console=Console(file=sys.stderr), disable=not enabled, transient=False)


def _client(workers: int | None, scheduler: str | None):
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            return Client(scheduler, timeout=f"{CONNECT_TIMEOUT}s"), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise StudyCliError(f"cannot connect to the Dask scheduler at '{scheduler}' "
                                f"(waited {CONNECT_TIMEOUT} s): {' '.join(str(exc).split())[:200]}") from None
    n = workers or os.cpu_count() or 1
    # Ctrl-C reaches the whole process group: the workers ignore it (inherited by the processes
    # started now), and this process stops them after writing what it holds
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":0", env=_WORKER_ENV,
                               silence_logs=50)  # shutdown races log heartbeat errors
    finally:
        signal.signal(signal.SIGINT, previous)
    return Client(cluster), cluster


def run_study(study: Study, out, *, replicates: int | None = None, methods: list[str] | None = None,
              workers: int | None = None, scheduler: str | None = None, seed: int | None = None,
              batch: int | None = None, progress: bool = True) -> RunReport:
    """Run (or resume) a study.

    Parameters
    ----------
    study : Study
        From :func:`workbench.study.spec.load_study`.
    out : path
        Results directory (created; reused to resume).
    replicates : int, optional
        Replicates per condition (default: the spec's).
    methods : list of str, optional
        Method labels to run (default: all of the spec's).
    workers : int, optional
        Local Dask workers (default: the number of CPUs); 0 runs in this process.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:port``).
    seed : int, optional
        Overrides the spec's seed.
    batch : int, optional
        Replicates per task (default: per method, see :class:`MethodSpec`).
    progress : bool
        Show a progress bar with ETA on stderr.

    Returns
    -------
    RunReport
    """
    t0 = time.perf_counter()
    labels = list(study.spec.methods) if not methods else list(methods)
    unknown = [m for m in labels if m not in study.spec.methods]
    if unknown:
        raise SpecError(f"unknown method(s) {', '.join(unknown)}; the study has "
                        f"{', '.join(study.spec.methods)}")
    if replicates is not None and replicates < 1:
        raise SpecError("--replicates must be at least 1")
    if workers is not None and workers < 0:
        raise SpecError("--workers must be 0 (in this process) or more")
    if batch is not None and batch < 1:
        raise SpecError("--batch must be at least 1")
    nrep = replicates or study.spec.replicates
    fits = len(study.conditions) * len(labels) * nrep
    if fits > MAX_FITS:
        raise SpecError(f"{len(study.conditions)} conditions x {len(labels)} methods x {nrep:,} "
                        f"replicates are {fits:,} fits; a run plans at most {MAX_FITS:,} "
                        "(split the study, or run fewer replicates and add more later)")
    manifest = study.manifest()
    if seed is not None:
        manifest["seed"] = seed
    use_seed = manifest["seed"]
    check_output_dir(out)
    if scheduler:
        check_scheduler_address(scheduler)
    preflight(study, labels, use_seed)
    store = Store(out)
    client = cluster = None
    if scheduler:  # connect before anything is written: a bad scheduler leaves no directory
        client, cluster = _client(workers, scheduler)
    made = not Path(out).exists()
    try:
        store.open(manifest, labels)
        scan = store.scan(repair=True)
        for name, why in scan.removed:
            print(f"redoing bad chunk {name}: {why}", file=sys.stderr)
        tasks = plan_tasks(study, labels, nrep, use_seed, scan.done, batch)
        total = sum(len(t.replicates) for t in tasks)
        skipped = len(study.conditions) * len(labels) * nrep - total
        skipped = max(skipped, 0)
        if tasks:
            if workers == 0 and not scheduler:
                _run_local(tasks, store, total, progress)
            else:
                _run_dask(tasks, store, total, progress, workers, scheduler, client, cluster)
    except KeyboardInterrupt:
        raise _interrupted(store, len(study.conditions) * len(labels) * nrep, made) from None
    finally:
        if client is not None:
            _close(client, cluster)
    return RunReport(out=str(out), tasks=len(tasks), fits=total, skipped_fits=skipped,
                     removed_chunks=scan.removed, seconds=time.perf_counter() - t0)


def _save(store: Store, task: dict, frame) -> None:
    store.write_chunk(frame, task.condition, task.method, list(task.replicates))


def _run_local(tasks, store, total, progress):
    with _progress(total, progress) as bar:
        job = bar.add_task("fits", total=total)
        for task in tasks:
            _save(store, task, run_task(task))
            bar.advance(job, len(task.replicates))


def _interrupted(store: Store, total: int, made: bool) -> StudyInterrupted:
    """The interruption report: replicates stored, and how to resume (or nothing left)."""
    try:
        scan = store.scan(repair=True)
    except BaseException:  # noqa: BLE001 - a report, not a check; a second Ctrl-C included
        return StudyInterrupted(f"the results so far are in {store.root}; run the same "
                                "command again to resume")
    stored = sum(len(v) for v in scan.done.values())
    if stored == 0 and made:
        import shutil

        shutil.rmtree(store.root, ignore_errors=True)
        return StudyInterrupted("nothing was stored")
    return StudyInterrupted(f"{stored} of {total} replicates are stored in {store.root}; "
                            "run the same command again to resume")


def check_scheduler_address(address: str) -> None:
    """Refuse a scheduler address that is no ``[protocol://]host:port``, before connecting."""
    import re

    if not re.fullmatch(r"(?:(tcp|tls|inproc|ucx|ws|wss)://)?\[?[A-Za-z0-9_.:-]+\]?:\d{1,5}", address):
        raise StudyCliError(f"--scheduler '{address}' is not a Dask scheduler address such as "
                            "tcp://host:8786")


def _close(client, cluster) -> None:
    import contextlib
    import logging

    # a cluster torn down mid-task (Ctrl-C) logs errors from its comms: nothing a user can use
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    with contextlib.suppress(Exception):
        client.close(timeout=5)
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close(timeout=5)


def _run_dask(tasks, store, total, progress, workers, scheduler, client=None, cluster=None):
    from dask.distributed import as_completed

    if client is None:
        client, cluster = _client(workers, scheduler)
    try:
        by_key = {}
        for task in tasks:
            fut = client.submit(run_task, task, pure=False)
            by_key[fut.key] = (fut, task)
        with _progress(total, progress) as bar:
            job = bar.add_task("fits", total=total)
            for fut in as_completed([f for f, _ in by_key.values()]):
                task = by_key.pop(fut.key)[1]
                try:
                    frame = fut.result()
                except WorkbenchError:
                    raise
                except Exception as exc:
                    raise WorkbenchError(
                        f"a task failed (condition {task.condition}, method {task.method}): "
                        f"{type(exc).__name__}: {exc}"
                    ) from None
                _save(store, task, frame)
                fut.release()
                bar.advance(job, len(task.replicates))
    finally:
        _close(client, cluster)
