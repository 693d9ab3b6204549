"""Samplers on a compiled model: PyMC's NUTS or nutpie, compile once, refit with new data.

A :class:`CompiledModel` holds one PyMC model of a :class:`~.model.Layout` and what the sampler
compiled from it: nutpie's compiled model (refit through ``with_data``), or PyMC NUTS step
methods (one per ``target_accept``) whose compiled log-density functions read the model's
``pm.Data`` containers, refilled with ``pm.set_data`` before each refit.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

from ..errors import SamplingInterrupted, SpecError
from ..options import AUTO, SAMPLERS
from .model import Layout, build_model



def nutpie_available() -> bool:
    """Whether nutpie can be imported."""
    try:
        import nutpie  # noqa: F401
    except Exception:  # pragma: no cover - depends on the environment
        return False
    return True


def kept_vars(layout: Layout) -> list[str]:
    """Names stored in the posterior (the others are sampler internals)."""
    names = ["beta"]
    for k, bl in enumerate(layout.blocks):
        names.append(f"sd{k}")
        if any(m >= 2 for m in bl.term_sizes):
            names.append(f"corr{k}")
        if layout.parameterization != "marginal":
            names.append(f"b{k}")
    if not layout.known_sd:
        names.append("sigma")
    if layout.residual is not None:
        names.append("rcor")  # bayes.corstruct.INTERNAL
    return names


class CompiledModel:
    """A PyMC model of one layout, compiled for one sampler.

    Parameters
    ----------
    layout : Layout
    data : dict
        Initial values of the model's ``pm.Data`` (any data set of this layout).
    sampler : {"pymc", "nutpie"}
    """

    def __init__(self, layout: Layout, data: dict[str, np.ndarray], sampler: str):
        if sampler not in SAMPLERS:
            raise SpecError(f"unknown sampler '{sampler}'; choose one of {', '.join(SAMPLERS + (AUTO,))}")
        t0 = time.perf_counter()
        self.layout = layout
        self.sampler = sampler
        self.model = build_model(layout, data)
        self.var_names = kept_vars(layout)
        self._steps: dict[float, tuple[object, object]] = {}
        self._nutpie = None
        if sampler == "nutpie":
            import nutpie

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._nutpie = nutpie.compile_pymc_model(self.model, freeze_model=False,
                                                         var_names=self.var_names)
        self.compile_seconds = time.perf_counter() - t0

    def sample(self, data: dict[str, np.ndarray], *, draws: int, tune: int, chains: int,
               seed: int, target_accept: float, progressbar: bool, cores: int | None = None):
        """Sample the posterior given ``data``.

        Returns
        -------
        idata : arviz.InferenceData
        sampling_seconds : float
        compile_seconds : float
            Compilation paid by this call (a PyMC step for a new ``target_accept``), else 0.
        """
        cores = cores or max(1, min(chains, os.cpu_count() or 1))
        compile_s = 0.0
        if self.sampler == "nutpie":
            import nutpie
            import pymc as pm

            # nutpie's with_data updates only its own copy of the data; the initial-point
            # function reads the PyMC model's containers, so refill those too, or the start
            # depends on whatever this cached model fitted before.
            pm.set_data(data, model=self.model)
            cm = self._nutpie.with_data(**data)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                idata = nutpie.sample(cm, draws=draws, tune=tune, chains=chains, cores=cores,
                                      seed=int(seed), progress_bar=progressbar,
                                      target_accept=target_accept)
            _check_complete(idata, chains, draws)
            return idata, time.perf_counter() - t0, compile_s
        import pymc as pm

        pm.set_data(data, model=self.model)
        cached = self._steps.get(target_accept)
        if cached is None:
            t0 = time.perf_counter()
            with self.model:
                step = pm.NUTS(target_accept=target_accept)
            cached = self._steps[target_accept] = (step, step.sampling_state)
            compile_s = time.perf_counter() - t0
        step, pristine = cached
        # Sequential chains adapt the step in place (its step size and mass matrix): start
        # every fit from the state it had when it was built, so no fit inherits another's.
        step.sampling_state = pristine
        t0 = time.perf_counter()
        import logging

        log = logging.getLogger("pymc")
        level = log.level
        if not progressbar:
            log.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores, step=step,
                                  random_seed=int(seed), progressbar=progressbar, model=self.model,
                                  compute_convergence_checks=False, var_names=self.var_names,
                                  return_inferencedata=True)
        finally:
            log.setLevel(level)
        _check_complete(idata, chains, draws)
        return idata, time.perf_counter() - t0, compile_s


def _check_complete(idata, chains: int, draws: int) -> None:
    """Raise :class:`SamplingInterrupted` unless every chain has every draw.

    On Ctrl-C both samplers stop and return what they have (nutpie aborts all chains
    mid-way; PyMC keeps the chains it finished): a truncated posterior must never pass for a
    finished one.
    """
    post = getattr(idata, "posterior", None)
    got = (0, 0) if post is None else (int(post.sizes.get("chain", 0)), int(post.sizes.get("draw", 0)))
    if got != (chains, draws):
        raise SamplingInterrupted(
            f"sampling was interrupted: {got[0]} chain(s) x {got[1]} draws of {chains} x {draws}; "
            "no fit was made")


__all__ = ["CompiledModel", "SAMPLERS", "nutpie_available", "kept_vars"]
