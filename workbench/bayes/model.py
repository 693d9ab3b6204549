"""Design + priors -> PyMC model, in one of three parameterisations.

The model is built from a :class:`Layout` (shapes, prior families, parameterisation: what a
compiled model depends on) and fed every number through ``pm.Data``: the response, the design
matrices or the sufficient statistics, and every prior argument and ``Fixed`` value.  A compiled
model therefore refits new data of the same layout, default (data-scaled) priors included,
without recompiling.

Variables every parameterisation leaves in the posterior (block ``k`` is the k-th factor block
of :func:`workbench.structure.build_structure`):

* ``beta`` (p,) fixed effects, formula order;
* ``sd{k}`` (q_k,) group sds of block k's columns; ``corr{k}`` (q_k, q_k) their correlation
  matrix (identity across uncorrelated terms), present when the block has a correlated term;
* ``sigma`` residual sd (absent with known sds);
* ``b{k}`` (levels_k, q_k) group effects (the marginal form adds them after sampling);
* ``rcor`` the correlation of a residual structure (``Layout.residual``; marginal form only,
  :mod:`.corstruct`).

Parameterisations: ``centered`` (``b ~ N(0, G)``), ``noncentered`` (``b = z C'``, ``z ~ N(0, 1)``),
``marginal`` (the random effects integrated out, :mod:`.marginal`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import names
from ..errors import NotYetSupportedError, SpecError
from ..options import AUTO, PARAMETERIZATIONS
from .marginal import MAX_DENSE, n_stacked, sufficient_stats
from .priors import FAMILIES, Prior, corr_matrix



@dataclass(frozen=True)
class BlockLayout:
    nlevels: int
    q: int
    term_sizes: tuple[int, ...]
    sd_families: tuple[str, ...]
    corr_families: tuple[str, ...]  # one per term of size >= 2


@dataclass(frozen=True)
class Layout:
    """Everything a compiled model depends on besides the numbers (a cache key)."""

    parameterization: str
    n: int
    p: int
    known_sd: bool
    beta_families: tuple[str, ...]
    sigma_family: str | None
    blocks: tuple[BlockLayout, ...]
    weighted: bool = False  # prior weights: residual sd of row i is sigma / sqrt(w_i)
    residual: object = None  # a residual correlation structure (corstruct.ResidualLayout)

    @property
    def nstacked(self) -> int:
        return sum(b.nlevels * b.q for b in self.blocks)


def make_layout(design, structure, priors: dict[str, Prior], parameterization: str,
                residual=None) -> Layout:
    """The :class:`Layout` of a design under resolved priors (``residual``: the
    :class:`~.corstruct.ResidualLayout` of a residual correlation structure).

    Raises
    ------
    NotYetSupportedError
        ``marginal`` with several grouping factors and more than :data:`MAX_DENSE` stacked
        random effects.
    """
    if parameterization not in PARAMETERIZATIONS:
        raise SpecError(f"unknown parameterization '{parameterization}'; choose one of "
                        + ", ".join(PARAMETERIZATIONS + (AUTO,)))
    if parameterization == "marginal" and len(structure.blocks) > 1 and n_stacked(structure) > MAX_DENSE:
        raise NotYetSupportedError(
            f"parameterization 'marginal' with several grouping factors needs a dense matrix over "
            f"all {n_stacked(structure)} random effects (limit {MAX_DENSE}); use 'noncentered'"
        )
    blocks = []
    for blk in structure.blocks:
        sizes = tuple(sl.stop - sl.start for _, sl in blk.terms)
        sdf = tuple(priors[names.sd(blk.group, c)].family for c in blk.columns)
        cf = tuple(priors[names.corr_key(label)].family for label, sl in blk.terms if sl.stop - sl.start >= 2)
        blocks.append(BlockLayout(blk.nlevels, blk.q, sizes, sdf, cf))
    return Layout(
        parameterization=parameterization,
        n=design.n,
        p=design.p,
        known_sd=design.known_sd is not None,
        beta_families=tuple(priors[names.beta(n)].family for n in design.fixed_names),
        sigma_family=None if design.known_sd is not None else priors["sigma"].family,
        blocks=tuple(blocks),
        weighted=design.weights is not None,
        residual=residual,
    )


# --------------------------------------------------------------------------- numbers
def _groups(families: tuple[str, ...]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, f in enumerate(families):
        out.setdefault(f, []).append(i)
    return out


def _prior_arrays(prefix: str, priors: list[Prior]) -> dict[str, np.ndarray]:
    out = {}
    for fam, idx in _groups(tuple(p.family for p in priors)).items():
        for a, argname in enumerate(FAMILIES[fam].args):
            out[f"{prefix}_{fam}_{argname}"] = np.array([priors[i].args[a] for i in idx], dtype=float)
    return out


def model_data(design, structure, priors: dict[str, Prior], layout: Layout,
               residual=None) -> dict[str, np.ndarray]:
    """Every number the model of ``layout`` reads, by ``pm.Data`` name (``residual``: the
    :class:`~.corstruct.ResidualStats` of a residual correlation structure)."""
    d: dict[str, np.ndarray] = {}
    d.update(_prior_arrays("pbeta", [priors[names.beta(n)] for n in design.fixed_names]))
    for k, blk in enumerate(structure.blocks):
        d.update(_prior_arrays(f"psd{k}", [priors[names.sd(blk.group, c)] for c in blk.columns]))
        t = 0
        for label, sl in blk.terms:
            m = sl.stop - sl.start
            if m < 2:
                continue
            pr = priors[names.corr_key(label)]
            if pr.is_fixed:
                d[f"pcorr{k}_{t}_chol"] = np.linalg.cholesky(corr_matrix(pr, m, names.corr_key(label)))
            else:
                d[f"pcorr{k}_{t}_eta"] = np.asarray(pr.args[0])
            t += 1
    if not layout.known_sd:
        d.update({k: np.asarray(v[0]) for k, v in _prior_arrays("psigma", [priors["sigma"]]).items()})
    if layout.residual is not None:
        from .corstruct import INTERNAL

        d.update({k: np.asarray(v[0])
                  for k, v in _prior_arrays(f"p{INTERNAL}", [priors[residual.param]]).items()})
        d.update(residual.model_data())
    elif layout.parameterization == "marginal":
        d.update(sufficient_stats(design, structure))
    else:
        d["y"] = design.y_work  # the offset is held at coefficient 1
        d["X"] = design.X
        for k, blk in enumerate(structure.blocks):
            d[f"Z{k}"] = blk.Z
            d[f"codes{k}"] = blk.codes
        if layout.known_sd:
            d["obs_sd"] = design.known_sd
        if layout.weighted:
            d["obs_isqrtw"] = 1.0 / np.sqrt(design.weights)
    return d


# --------------------------------------------------------------------------- PyMC
def prior_variable(fam: str, name: str, args: dict, shape):
    """A PyMC variable of family ``fam`` (its :data:`~.priors.FAMILIES` entry); returns the
    parameter itself (the sd for a prior on the variance, the value for ``Fixed``)."""
    import pymc as pm
    import pytensor.tensor as pt

    family = FAMILIES[fam]
    if fam == "Fixed":
        return args["value"]
    if family.pymc is None:
        raise SpecError(f"prior family {fam} cannot be used here")  # pragma: no cover
    dist = getattr(pm, family.pymc)
    if family.on_variance:
        return pt.sqrt(dist(f"{name}_var", **args, shape=shape))
    return dist(name, **args, shape=shape)


def _vector(prefix: str, families: tuple[str, ...], data: dict):
    """A vector parameter whose entries may have priors of different families."""
    import pytensor.tensor as pt

    groups = _groups(families)
    parts = {}
    for fam, idx in groups.items():
        args = {an: data[f"{prefix}_{fam}_{an}"] for an in FAMILIES[fam].args}
        parts[fam] = (idx, prior_variable(fam, f"{prefix}_{fam.lower()}", args, (len(idx),)))
    if len(groups) == 1:
        return next(iter(parts.values()))[1]
    out = pt.zeros((len(families),))
    for idx, val in parts.values():
        out = pt.set_subtensor(out[np.asarray(idx)], val)
    return out


def build_model(layout: Layout, data: dict[str, np.ndarray]):
    """The PyMC model of ``layout``, with ``data`` as the initial ``pm.Data`` values.

    Returns
    -------
    pymc.Model
    """
    import pymc as pm
    import pytensor.tensor as pt

    from .lkj import lkj_cholesky, stack_matrix
    from .marginal import loglik_graph

    with pm.Model() as model:
        d = {k: pm.Data(k, v) for k, v in data.items()}
        beta = pm.Deterministic("beta", _vector("pbeta", layout.beta_families, d))
        chols = []
        for k, bl in enumerate(layout.blocks):
            sd = pm.Deterministic(f"sd{k}", _vector(f"psd{k}", bl.sd_families, d))
            q = bl.q
            Lb = [[1.0 if i == j else None for j in range(q)] for i in range(q)]
            correlated = False
            off, t = 0, 0
            for m in bl.term_sizes:
                if m >= 2:
                    correlated = True
                    if bl.corr_families[t] == "Fixed":
                        Ld = d[f"pcorr{k}_{t}_chol"]
                        Lt = [[Ld[i, j] if j <= i else None for j in range(m)] for i in range(m)]
                    else:
                        Lt = lkj_cholesky(f"corr{k}_{t}", m, d[f"pcorr{k}_{t}_eta"])
                    for i in range(m):
                        for j in range(m):
                            Lb[off + i][off + j] = Lt[i][j]
                    t += 1
                off += m
            if correlated:
                Lmat = stack_matrix(Lb)
                pm.Deterministic(f"corr{k}", pt.dot(Lmat, Lmat.T))
            Cn = [[None if Lb[a][i] is None else sd[a] * Lb[a][i] for i in range(q)] for a in range(q)]
            chols.append((sd, correlated, Cn))
        if layout.known_sd:
            sigma, s2 = None, pt.constant(1.0)
        else:
            fam = layout.sigma_family
            args = {an: d[f"psigma_{fam}_{an}"] for an in FAMILIES[fam].args}
            sigma = prior_variable(fam, "sigma_raw", args, ())
            sigma = pm.Deterministic("sigma", sigma)
            s2 = sigma ** 2

        if layout.residual is not None:
            from .corstruct import INTERNAL
            from .corstruct import loglik_graph as residual_loglik

            fam = layout.residual.family
            args = {an: d[f"p{INTERNAL}_{fam}_{an}"] for an in FAMILIES[fam].args}
            rho = pm.Deterministic(INTERNAL, prior_variable(fam, f"{INTERNAL}_raw", args, ()))
            ll = residual_loglik(layout.residual, d, beta, [c[2] for c in chols], s2, rho,
                                 layout.p, [b.q for b in layout.blocks],
                                 [b.nlevels for b in layout.blocks])
            pm.Potential("marginal_loglik", ll)
            return model
        if layout.parameterization == "marginal":
            ll = loglik_graph(d, beta, [c[2] for c in chols], s2,
                              [b.q for b in layout.blocks], [b.nlevels for b in layout.blocks])
            pm.Potential("marginal_loglik", ll)
            return model

        mu = pt.dot(d["X"], beta)
        for k, (bl, (sd, correlated, Cn)) in enumerate(zip(layout.blocks, chols)):
            if layout.parameterization == "noncentered":
                z = pm.Normal(f"z{k}", 0.0, 1.0, shape=(bl.nlevels, bl.q))
                if correlated:
                    b = pm.Deterministic(f"b{k}", pt.dot(z, stack_matrix(Cn).T))
                else:
                    b = pm.Deterministic(f"b{k}", z * sd[None, :])
            elif not correlated:
                b = pm.Normal(f"b{k}", 0.0, sd[None, :], shape=(bl.nlevels, bl.q))
            else:
                b = pm.MvNormal(f"b{k}", mu=pt.zeros(bl.q), chol=stack_matrix(Cn),
                                shape=(bl.nlevels, bl.q))
            mu = mu + pt.sum(d[f"Z{k}"] * b[d[f"codes{k}"]], axis=1)
        obs_sd = d["obs_sd"] if layout.known_sd else sigma
        if layout.weighted:
            obs_sd = obs_sd * d["obs_isqrtw"]
        pm.Normal("y_obs", mu=mu, sigma=obs_sd, observed=d["y"])
    return model


__all__ = ["Layout", "make_layout", "model_data", "build_model", "prior_variable", "PARAMETERIZATIONS"]
