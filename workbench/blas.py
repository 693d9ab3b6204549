"""BLAS thread limits for small dense products (one ``ThreadpoolController`` per process).

The fits' matrices are small: on a few cores, threaded BLAS mostly adds contention (a fast
Bayesian refit ran 3x slower with OpenBLAS's two threads on a busy machine; a 224 x 50 lstsq
took 0.26 s), so the REML/ML engine and the fast Bayesian path run on one thread.
"""

from __future__ import annotations

import contextlib
import sys
import threading

_controller = None


def blas_limits(threads: int | None, user_api: str | None = None):
    """``threadpool_limits(threads)`` through one ``ThreadpoolController`` per process (a
    context manager; ``None`` leaves the setting alone).

    Finding the BLAS libraries (threadpoolctl reads the process's loaded libraries) costs
    about a millisecond, more than a small fit's criterion evaluations; the libraries are
    found again only when a new one has been loaded since (a new entry in ``sys.modules``
    is the cheap proxy for that).
    """
    if threads is None:
        return contextlib.nullcontext()
    active = getattr(_limits_in_force, "stack", None)
    if active and active[-1] == (threads, user_api):  # nested in the same limit (the api's,
        # then the fit's)
        return contextlib.nullcontext()
    global _controller
    if _controller is None or _controller[0] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _controller = (len(sys.modules), ThreadpoolController())
    return _limited(_controller[1], threads, user_api)


_limits_in_force = threading.local()


@contextlib.contextmanager
def _limited(controller, threads: int, user_api: str | None):
    stack = _limits_in_force.__dict__.setdefault("stack", [])
    with controller.limit(limits=threads, user_api=user_api):
        stack.append((threads, user_api))
        try:
            yield
        finally:
            stack.pop()


__all__ = ["blas_limits"]
