"""The PyMC model's log density, term by term, against scipy: every prior family is wired to
the parameter it names, and the marginal likelihood is the GLS density (one compile, no MCMC)."""

import numpy as np
import pytest
from scipy import stats

from tests.bayes.conftest import slopes_data
from workbench.bayes.model import build_model, make_layout, model_data
from workbench.bayes.priors import resolve_priors
from workbench.design import build_design
from workbench.structure import build_structure

PRIORS = {"beta[(Intercept)]": "Normal(1, 3)", "beta[x]": "StudentT(3, 0, 2.5)",
          "sd[g:(Intercept)]": "HalfCauchy(2)", "sd[g:x]": "InverseGamma(2, 0.5)",
          "corr": "LKJ(3)", "sigma": "HalfStudentT(4, 1.5)"}


def test_log_density_term_by_term():
    design = build_design("y ~ 1 + x + (1 + x | g)", slopes_data())
    st = build_structure(design)
    pri = resolve_priors(design, st, PRIORS)
    layout = make_layout(design, st, pri, "marginal")
    model = build_model(layout, model_data(design, st, pri, layout))
    logp = model.compile_logp(jacobian=False)

    beta = np.array([1.7, 0.4])
    sd = np.array([0.9, 0.45])
    raw, sigma = 0.3, 0.8
    r = np.tanh(raw)
    names = {v.name for v in model.value_vars}
    assert names == {"pbeta_normal", "pbeta_studentt", "psd0_halfcauchy_log__",
                     "psd0_inversegamma_var_log__", "corr0_0_raw", "sigma_raw_log__"}
    point = {"pbeta_normal": beta[:1], "pbeta_studentt": beta[1:],
             "psd0_halfcauchy_log__": np.log(sd[:1]),
             "psd0_inversegamma_var_log__": np.log(sd[1:] ** 2),
             "corr0_0_raw": np.array([raw]), "sigma_raw_log__": np.log(sigma)}

    ref = stats.norm(1, 3).logpdf(beta[0]) + stats.t(3, 0, 2.5).logpdf(beta[1])
    ref += stats.halfcauchy(scale=2).logpdf(sd[0])
    ref += stats.invgamma(2, scale=0.5).logpdf(sd[1] ** 2)  # the prior is on the variance
    ref += np.log(2) + stats.t(4, 0, 1.5).logpdf(sigma)
    # LKJ(3), q = 2: (1 - r^2)^(eta - 1) on r, plus the tanh Jacobian (a potential)
    ref += (3 - 1) * np.log(1 - r ** 2) + np.log(1 - r ** 2)
    Z = st.stacked_Z().toarray()
    S = np.array([[sd[0] ** 2, r * sd[0] * sd[1]], [r * sd[0] * sd[1], sd[1] ** 2]])
    V = Z @ np.kron(np.eye(st.blocks[0].nlevels), S) @ Z.T + sigma ** 2 * np.eye(design.n)
    ref += stats.multivariate_normal(design.X @ beta, V).logpdf(design.y)
    # LKJ's normalising constant is left out of the potential (it is constant in r)
    got = logp(point)
    assert got == pytest.approx(ref, rel=1e-9)
