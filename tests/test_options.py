"""Method options and error classes, each defined once."""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import pytest

import workbench
from workbench import cli, errors
from workbench.errors import OptionError, SpecError, WorkbenchError
from workbench.options import (METHODS, PARAMETERIZATIONS, SAMPLERS, BayesOptions, RemlOptions,
                               method_options)

PACKAGE = Path(workbench.__file__).resolve().parent


def test_defaults():
    assert method_options("reml") == RemlOptions()
    assert method_options("ml", nobound=True).nobound is True
    b = method_options("bayes", draws=10, seed=3)
    assert isinstance(b, BayesOptions) and (b.draws, b.tune, b.seed) == (10, 1000, 3)
    assert b.kwargs()["parameterization"] == "auto"


@pytest.mark.parametrize("method,options,needle", [
    ("reml", {"draws": 10}, "unknown option(s) for method 'reml': draws (known: blas_threads"),
    ("bayes", {"nobound": True}, "unknown option(s) for method 'bayes': nobound"),
    ("mcmc", {}, "unknown method 'mcmc'; choose one of reml, ml, fgls, igls, rigls, bayes"),
    ("reml", {"level": 1.5}, "level must lie in (0, 1)"),
    ("reml", {"vc_se": "hessian"}, "unknown vc_se 'hessian'"),
    ("reml", {"nobound": "yes"}, "nobound must be true or false"),
    ("reml", {"blas_threads": 0}, "blas_threads must be an integer >= 1"),
    ("bayes", {"draws": 0}, "draws must be an integer >= 1"),
    ("bayes", {"tune": 1.5}, "tune must be an integer >= 1"),
    # nutpie panics (a BaseException) without a tuning step: refused before sampling
    ("bayes", {"tune": 0}, "tune must be an integer >= 1, got 0"),
    ("bayes", {"chains": True}, "chains must be an integer >= 1"),
    ("bayes", {"seed": -1}, "seed must be an integer >= 0"),
    ("bayes", {"target_accept": 1.0}, "target_accept must lie in (0, 1)"),
    ("bayes", {"priors": "sd=HalfNormal(1)"}, "priors must be a dict"),
    ("bayes", {"parameterization": "whitened"}, "unknown parameterization 'whitened'"),
    ("bayes", {"sampler": "stan"}, "unknown sampler 'stan'; choose one of pymc, nutpie, auto"),
])
def test_bad_options_raise_option_error(method, options, needle):
    with pytest.raises(OptionError) as err:
        method_options(method, **options)
    assert needle in str(err.value)
    assert isinstance(err.value, SpecError)


def test_fit_checks_options_before_reading_the_data():
    with pytest.raises(OptionError, match="unknown option"):
        workbench.fit("y ~ 1 + (1 | g)", pd.DataFrame(), method="reml", draws=5)


def test_cli_choices_are_the_option_constants():
    assert [m.value for m in cli.Method] == list(METHODS)
    assert [p.value for p in cli.Parameterization] == ["auto", *PARAMETERIZATIONS]
    assert [s.value for s in cli.Sampler] == ["auto", *SAMPLERS]


def test_every_error_class_is_defined_in_errors_py():
    known = {name for name, obj in vars(errors).items()
             if isinstance(obj, type) and issubclass(obj, Exception)}
    elsewhere = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", None)) for b in node.bases}
                if bases & (known | {"Exception", "ValueError", "RuntimeError"}):
                    elsewhere.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert elsewhere == []
    assert all(issubclass(getattr(errors, n), WorkbenchError) for n in known - {"WorkbenchError"})
