"""Compiled models kept for reuse, keyed by layout (structure, shapes, prior families,
parameterisation) and sampler.

Prior arguments and data are ``pm.Data``, so they are not part of the key: a loop of fits of
new data of the same shape, with default (data-scaled) priors, compiles once.
"""

from __future__ import annotations

from collections import OrderedDict

from .model import Layout

MAX_ENTRIES = 16

_CACHE: "OrderedDict[tuple, object]" = OrderedDict()
_STATS = {"compiles": 0, "hits": 0}


def get_compiled(layout: Layout, sampler: str, data: dict):
    """The cached :class:`~.sample.CompiledModel` for ``(layout, sampler)``, compiling on a miss.

    Returns
    -------
    compiled : CompiledModel
    fresh : bool
        True when this call compiled it.
    """
    from .sample import CompiledModel

    key = (layout, sampler)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        _STATS["hits"] += 1
        return hit, False
    compiled = CompiledModel(layout, data, sampler)
    _CACHE[key] = compiled
    _STATS["compiles"] += 1
    while len(_CACHE) > MAX_ENTRIES:
        _CACHE.popitem(last=False)
    return compiled, True


def is_cached(layout: Layout, sampler: str) -> bool:
    """Whether :func:`get_compiled` would reuse a compiled model (no compilation)."""
    return (layout, sampler) in _CACHE


def compile_and_sample(layout: Layout, sampler: str, data: dict, seed: int, *, draws: int,
                       tune: int, chains: int, target_accept: float, progressbar: bool,
                       cores: int | None):
    """The cached compiled model refilled with ``data`` and sampled (a compile status line
    when it must compile first).

    The seed is split into the sampler's and the conditional random-effects draws' (for the
    marginal models), so both are pure functions of it.

    Returns
    -------
    idata : InferenceData
    sampling_s, compile_s : float
    ranef_seed : int
        For the random-effects draws after sampling.
    """
    import contextlib
    import time

    import numpy as np

    from .. import progress

    t0 = time.perf_counter()
    with (contextlib.nullcontext() if is_cached(layout, sampler)
          else progress.status(progress.COMPILING)):
        compiled, fresh = get_compiled(layout, sampler, data)
    compile_s = time.perf_counter() - t0 if fresh else 0.0
    s_sampler, s_ranef = (int(s.generate_state(1)[0] % (2**31))
                          for s in np.random.SeedSequence(seed).spawn(2))
    idata, sampling_s, extra = compiled.sample(
        data, draws=draws, tune=tune, chains=chains, seed=s_sampler,
        target_accept=float(target_accept), progressbar=progressbar, cores=cores)
    return idata, sampling_s, compile_s + extra, s_ranef


def cache_stats() -> dict:
    """``{"compiles": n, "hits": m, "entries": k}`` since the process started (or cleared)."""
    return {**_STATS, "entries": len(_CACHE)}


def clear_cache() -> None:
    """Forget every compiled model (the counters too)."""
    _CACHE.clear()
    _STATS.update(compiles=0, hits=0)


__all__ = ["get_compiled", "is_cached", "compile_and_sample", "cache_stats", "clear_cache", "MAX_ENTRIES"]
