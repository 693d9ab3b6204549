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


def cache_stats() -> dict:
    """``{"compiles": n, "hits": m, "entries": k}`` since the process started (or cleared)."""
    return {**_STATS, "entries": len(_CACHE)}


def clear_cache() -> None:
    """Forget every compiled model (the counters too)."""
    _CACHE.clear()
    _STATS.update(compiles=0, hits=0)


__all__ = ["get_compiled", "is_cached", "cache_stats", "clear_cache", "MAX_ENTRIES"]
