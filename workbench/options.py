"""The options of each fitting method, defined and checked once (lme4's ``lmerControl``).

:class:`RemlOptions` (methods ``reml`` and ``ml``), :class:`FglsOptions` (``fgls``),
:class:`IglsOptions` (``igls``, ``rigls``) and :class:`BayesOptions` (``bayes``) are frozen
dataclasses that check their values when built; :func:`method_options` builds the right one from
keyword arguments and names an unknown option with the known ones.  ``workbench.fit``, the
Bayesian fitter, the CLI (its choices are generated from the constants here) and the study file
(each arm's ``options`` table) all go through them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .errors import OptionError

METHODS = ("reml", "ml", "fgls", "igls", "rigls", "bayes")
#: Feasible-GLS variance-component estimators (plm's ``random.method``), default first.
FGLS_ESTIMATORS = ("swar", "walhus", "amemiya", "nerlove")
#: Forecast-reconciliation weights (:func:`workbench.reconcile`; the names of hts/fable).
RECONCILE_METHODS = ("ols", "wls_struct", "wls_var", "mint_sample", "mint_shrink")
#: Random-effects parameterisations of the Bayesian model (``"auto"`` chooses one).
PARAMETERIZATIONS = ("centered", "noncentered", "marginal")
#: NUTS implementations (``"auto"``: nutpie when installed).
SAMPLERS = ("pymc", "nutpie")
#: Routes to a posterior: ``fast`` (:mod:`workbench.bayes.fast`, one grouping factor) or ``nuts``
#: (a PyMC model sampled by NUTS); ``"auto"``: fast where it applies and passes its checks.
BAYES_PATHS = ("fast", "nuts")
AUTO = "auto"
VC_SE = ("expected", "observed")


def _integer(name: str, value, lowest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not _is_numpy_int(value) \
            or value < lowest:
        raise OptionError(f"option {name} must be an integer >= {lowest}, got {value!r}")
    return int(value)


def _is_numpy_int(value) -> bool:
    import numpy as np

    return isinstance(value, np.integer)


def _choice(name: str, value, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise OptionError(f"unknown {name} '{value}'; choose one of {', '.join(allowed)}")
    return value


def _flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise OptionError(f"option {name} must be true or false, got {value!r}")
    return value


def _open_unit(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 < float(value) < 1:
        raise OptionError(f"option {name} must lie in (0, 1), got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RemlOptions:
    """Options of a REML or ML fit (:func:`workbench.reml.fit.fit_reml`).

    Attributes
    ----------
    level : float
        Coverage of the Wald intervals, in (0, 1).
    blas_threads : int or None
        BLAS threads while fitting (None leaves the setting alone).
    nobound : bool
        Let variances go negative (MLwiN's and SAS's NOBOUND); REML, one grouping factor.
    vc_se : {None, "expected", "observed"}
        Variance-scale standard errors from that information matrix.
    """

    level: float = 0.95
    blas_threads: int | None = 1
    nobound: bool = False
    vc_se: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "level", _open_unit("level", self.level))
        if self.blas_threads is not None:
            object.__setattr__(self, "blas_threads", _integer("blas_threads", self.blas_threads, 1))
        _flag("nobound", self.nobound)
        if self.vc_se is not None:
            _choice("vc_se", self.vc_se, VC_SE)

    def kwargs(self) -> dict:
        """The options as keyword arguments (all scalars: no deep copy needed)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class BayesOptions:
    """Options of a Bayesian fit (:func:`workbench.bayes.fit.fit_bayes`, where each is described).

    Attributes
    ----------
    draws, tune, chains : int
        Posterior draws (>= 1) and tuning steps (>= 1) per chain; chains (>= 1).
    seed : int or None
        Sampler seed (>= 0); None draws one.
    priors : dict or None
        ``{key: "Dist(args)"}`` (checked against the model by :mod:`workbench.bayes.priors`).
    parameterization : {"auto", "centered", "noncentered", "marginal"}
    sampler : {"auto", "pymc", "nutpie"}
    target_accept : float
        In (0, 1).
    progressbar : bool
    cores : int or None
        Parallel chains (>= 1); None: min(chains, CPUs).
    path : {"auto", "fast", "nuts"}
        ``auto``: the fast path where it applies (and ``parameterization``/``sampler`` are
        ``auto``), else NUTS.
    """

    draws: int = 1000
    tune: int = 1000
    chains: int = 2
    seed: int | None = None
    priors: dict | None = None
    parameterization: str = AUTO
    sampler: str = AUTO
    target_accept: float = 0.9
    progressbar: bool = True
    cores: int | None = None
    path: str = AUTO

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "draws", _integer("draws", self.draws, 1))
        # nutpie panics (a Rust PanicException, not an Exception) with no tuning step
        set_(self, "tune", _integer("tune", self.tune, 1))
        set_(self, "chains", _integer("chains", self.chains, 1))
        if self.cores is not None:
            set_(self, "cores", _integer("cores", self.cores, 1))
        if self.seed is not None:
            set_(self, "seed", _integer("seed", self.seed, 0))
        set_(self, "target_accept", _open_unit("target_accept", self.target_accept))
        if self.priors is not None and not isinstance(self.priors, dict):
            raise OptionError("option priors must be a dict {key: 'Dist(args)'}")
        _choice("parameterization", self.parameterization, PARAMETERIZATIONS + (AUTO,))
        _choice("sampler", self.sampler, SAMPLERS + (AUTO,))
        _choice("path", self.path, BAYES_PATHS + (AUTO,))
        set_(self, "progressbar", bool(self.progressbar))

    def kwargs(self) -> dict:
        """The options as keyword arguments (``priors`` kept as given, not copied)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class FglsOptions:
    """Options of a feasible-GLS fit (:func:`workbench.gls.fgls.fit_fgls`).

    Attributes
    ----------
    level : float
        Coverage of the Wald intervals, in (0, 1).
    fgls : {"swar", "walhus", "amemiya", "nerlove"}
        The variance-component estimator (plm's ``random.method``): Swamy-Arora,
        Wallace-Hussain, Amemiya, Nerlove.
    """

    level: float = 0.95
    fgls: str = "swar"

    def __post_init__(self):
        object.__setattr__(self, "level", _open_unit("level", self.level))
        _choice("fgls estimator", self.fgls, FGLS_ESTIMATORS)

    def kwargs(self) -> dict:
        """The options as keyword arguments."""
        return asdict(self)


@dataclass(frozen=True)
class IglsOptions:
    """Options of an iterated-GLS fit (:func:`workbench.gls.igls.fit_igls`).

    Attributes
    ----------
    level : float
        Coverage of the Wald intervals, in (0, 1).
    tol : float
        Converged when no variance parameter changes between two iterations by more than
        ``tol`` times the largest of them, in (0, 1).
    maxiter : int
        At most this many iterations (>= 1); not converged after them.
    """

    level: float = 0.95
    tol: float = 1e-10
    maxiter: int = 500

    def __post_init__(self):
        object.__setattr__(self, "level", _open_unit("level", self.level))
        object.__setattr__(self, "tol", _open_unit("tol", self.tol))
        object.__setattr__(self, "maxiter", _integer("maxiter", self.maxiter, 1))

    def kwargs(self) -> dict:
        """The options as keyword arguments."""
        return asdict(self)


_OPTIONS = {"reml": RemlOptions, "ml": RemlOptions, "fgls": FglsOptions, "igls": IglsOptions,
            "rigls": IglsOptions, "bayes": BayesOptions}


def method_options(method: str, **options) -> RemlOptions | FglsOptions | IglsOptions | BayesOptions:
    """The checked options of one method.

    Raises
    ------
    OptionError
        An unknown method, an unknown option (named with the known ones) or a bad value.
    """
    _choice("method", method, METHODS)
    cls = _OPTIONS[method]
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise OptionError(f"unknown option(s) for method '{method}': {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(known))})")
    return cls(**options)


__all__ = ["METHODS", "FGLS_ESTIMATORS", "PARAMETERIZATIONS", "SAMPLERS", "BAYES_PATHS", "AUTO",
           "RemlOptions", "FglsOptions", "IglsOptions", "BayesOptions", "method_options"]
