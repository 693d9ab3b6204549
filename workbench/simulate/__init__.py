"""Simulate hierarchical data from a stated truth.

``simulate(design, seed) -> (data, truth)``; designs are :class:`SimDesign` objects, usually read
from TOML with :func:`load_design` (see :mod:`workbench.simulate.schema` for the format).
"""

from .generate import as_design, design_json, formula_layout, generate, simulate, truth
from .schema import SimDesign, design_from_dict, load_design, read_toml

__all__ = ["simulate", "load_design", "SimDesign", "design_from_dict", "truth", "generate",
           "as_design", "formula_layout", "design_json", "read_toml"]


class _CallableModule(type(__import__("sys"))):
    """Lets ``workbench.simulate(design, seed)`` call :func:`simulate` while
    ``workbench.simulate.load_design`` etc. stay reachable as module attributes."""

    def __call__(self, design, seed):
        return simulate(design, seed)

    __call__.__doc__ = simulate.__doc__


__import__("sys").modules[__name__].__class__ = _CallableModule
