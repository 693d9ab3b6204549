"""Simulate hierarchical data from a stated truth.

``simulate(design, seed) -> (data, truth)`` (``from workbench.simulate import simulate``);
designs are :class:`SimDesign` objects, usually read from TOML with :func:`load_design` (see
:mod:`workbench.simulate.schema` for the format).
"""

from .generate import as_design, design_json, formula_layout, generate, simulate, truth
from .schema import SimDesign, design_from_dict, load_design, read_toml

__all__ = ["simulate", "load_design", "SimDesign", "design_from_dict", "truth", "generate",
           "as_design", "formula_layout", "design_json", "read_toml"]
