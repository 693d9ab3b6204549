# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # From GLS to REML to Bayes: the random-intercept model, numerically
#
# This walk-through shows, one identity at a time, how the three views of a linear mixed model
# fit together:
#
# 1. the marginal covariance matrix $V$ of the random-intercept model (compound symmetry);
# 2. generalised least squares with that $V$ gives the mixed model's fixed effects;
# 3. REML maximises the *restricted* likelihood of the variance parameters, ML the full one;
# 4. BLUPs are shrunken group means, with a closed-form shrinkage factor;
# 5. a Bayesian model with flat fixed-effect priors and the variances held fixed has the GLS
#    estimate and the BLUPs as its posterior mean, exactly;
# 6. with the variances estimated, the two answers are close when groups are many and differ
#    when they are few or the estimate sits on the boundary (eight schools);
# 7. random slopes and a second, crossed grouping factor: $V = Z G Z' + \sigma^2 I$;
# 8. the other GLS traditions on one data set: nlme's compound-symmetry GLS, feasible GLS,
#    IGLS and RIGLS beside REML, ML and the posterior, and which of them coincide;
# 9. forecast reconciliation: the same GLS projection.
#
# Every identity is computed on a small simulated data set and on the Minnesota radon data, and
# recorded with `check(name, discrepancy, tolerance)`: the script stops if one fails, and the
# test suite (`tests/test_walkthrough.py`) runs it and asserts every recorded check.
#
# Run it as a script (`python studies/walkthrough.py`), or render it to HTML:
#
# ```
# jupytext --to notebook --output studies/walkthrough.ipynb studies/walkthrough.py
# jupyter nbconvert --to html --execute studies/walkthrough.ipynb
# ```
#
# Set `WALKTHROUGH_MCMC=1` to also run the PyMC sampler for steps 5 and 6 (slower: it compiles
# models); the identities themselves are checked in closed form.

# %%
import os

import matplotlib

if "ipykernel" not in __import__("sys").modules:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.optimize import minimize

import workbench
from workbench.compare import group_effects
from workbench.plots import likelihood as L
from workbench.plots import plot_covariance, plot_shrinkage
from workbench.reml.fit import assemble_fit
from workbench.reml.gls import build_V

RUN_MCMC = os.environ.get("WALKTHROUGH_MCMC", "0") == "1"
pd.set_option("display.precision", 4)

CHECKS = {}


def check(name, discrepancy, tol):
    """Record an identity: ``discrepancy`` (>= 0) must not exceed ``tol``."""
    discrepancy = float(discrepancy)
    CHECKS[name] = (discrepancy, tol)
    status = "ok" if discrepancy <= tol else "FAILED"
    print(f"[{status}] {name}: {discrepancy:.2e} (tolerance {tol:.0e})")
    assert discrepancy <= tol, f"{name}: {discrepancy} > {tol}"


def rel(a, b):
    """Largest relative difference between two arrays."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def maxabs(a, b):
    return float(np.max(np.abs(np.asarray(a, float) - np.asarray(b, float))))


# %% [markdown]
# ## The data
#
# A small data set: six groups of 2 to 8 observations (so the groups differ in how much they
# shrink), one predictor `x`, random intercepts and slopes drawn from a known truth.  And the
# radon data (Gelman & Hill 2007): 919 houses in 85 Minnesota counties, log radon against the
# floor of the measurement (0 basement, 1 first floor).

# %%
rng = np.random.default_rng(2030)
sizes = np.array([2, 3, 4, 5, 6, 8])
g = np.repeat(np.arange(sizes.size), sizes)
x = np.round(rng.uniform(-1, 1, g.size), 3)
a = rng.normal(0, 1.0, sizes.size)   # true group intercepts, sd 1
b = rng.normal(0, 0.7, sizes.size)   # true group slopes, sd 0.7
y = np.round(1.0 + 0.5 * x + a[g] + b[g] * x + rng.normal(0, 0.4, g.size), 3)
small = pd.DataFrame({"g": [f"g{j + 1}" for j in g], "x": x, "y": y})

radon = workbench.datasets.load("radon")
schools = workbench.datasets.load("eight_schools")
print(small.groupby("g").size().to_dict())
print(radon.shape, radon["county"].nunique(), "counties")

# %% [markdown]
# ## 1. The covariance matrix of the random-intercept model
#
# $y_{ij} = x_{ij}'\beta + a_j + \varepsilon_{ij}$ with $a_j \sim N(0, \sigma_a^2)$ and
# $\varepsilon_{ij} \sim N(0, \sigma^2)$, all independent.  Marginally $y \sim N(X\beta, V)$ with
#
# $$V_{ii} = \sigma^2 + \sigma_a^2,\qquad V_{ik} = \sigma_a^2 \text{ if } i, k \text{ share a
# group},\qquad V_{ik} = 0 \text{ otherwise}:$$
#
# block diagonal, one compound-symmetry block per group.  We build it from this formula with
# the REML estimates and compare it with the engine's `build_V` (which computes $Z G Z' +
# \sigma^2 I$).

# %%
def cs_V(codes, sd_a, sigma):
    """V from the compound-symmetry formula, entry by entry."""
    n = len(codes)
    V = np.zeros((n, n))
    for i in range(n):
        for k in range(n):
            if codes[i] == codes[k]:
                V[i, k] = sd_a**2 + (sigma**2 if i == k else 0.0)
    return V


def sd_of(fit, grp):
    return next(r["sdcor"] for r in fit.varcorr if r["grp"] == grp and r["var2"] is None)


fit_s = workbench.fit("y ~ 1 + x + (1 | g)", small)
V_s = cs_V(small["g"].to_numpy(), sd_of(fit_s, "g"), fit_s.sigma)
print(f"sigma_a = {sd_of(fit_s, 'g'):.4f}, sigma = {fit_s.sigma:.4f}")
print(np.round(V_s[:5, :5], 3))
check("1 small: V from compound symmetry = Z G Z' + sigma^2 I", maxabs(V_s, build_V(fit_s)), 1e-12)

fit_r = workbench.fit("log_radon ~ floor + (1 | county)", radon)
sa_r, s_r = sd_of(fit_r, "county"), fit_r.sigma
V_r = np.where(radon["county"].to_numpy()[:, None] == radon["county"].to_numpy()[None, :],
               sa_r**2, 0.0) + s_r**2 * np.eye(len(radon))
check("1 radon: V from compound symmetry = Z G Z' + sigma^2 I", maxabs(V_r, build_V(fit_r)), 1e-12)

# %% [markdown]
# The heat map makes the block structure visible (left); the right panel anticipates step 7.

# %%
fig = plot_covariance(fit_s, workbench.fit("y ~ 1 + x + (1 + x | g)", small))
plt.show()
plt.close(fig)

# %% [markdown]
# ## 2. GLS with that $V$ gives the mixed model's fixed effects
#
# Given $V$, the best linear unbiased estimator of $\beta$ is generalised least squares,
# $\hat\beta = (X'V^{-1}X)^{-1} X'V^{-1}y$ with covariance $(X'V^{-1}X)^{-1}$.  statsmodels'
# `GLS(y, X, sigma=V)` computes it; the mixed model's $\hat\beta$ and standard errors are the
# same numbers (the engine never forms $V$: it solves the penalised least-squares system).

# %%
def gls(y, X, V):
    res = sm.GLS(y, X, sigma=V).fit(cov_type="fixed scale", cov_kwds={"scale": 1.0})
    return res.params, res.bse


for label, fit, V, y_, X_ in [
    ("small", fit_s, V_s, small["y"].to_numpy(), fit_s.design.X),
    ("radon", fit_r, V_r, radon["log_radon"].to_numpy(), fit_r.design.X),
]:
    beta, se = gls(y_, X_, V)
    print(label, "GLS:", np.round(beta, 6), " mixed model:", np.round(list(fit.beta.values()), 6))
    check(f"2 {label}: GLS(sigma=V) beta = mixed-model beta", rel(beta, list(fit.beta.values())), 1e-9)
    check(f"2 {label}: GLS standard errors = mixed-model standard errors",
          rel(se, list(fit.beta_se.values())), 1e-9)

# %% [markdown]
# ## 3. REML maximises the restricted likelihood; ML the full likelihood
#
# The variance parameters are unknown.  ML maximises the likelihood of $y$ with $\beta$ at its
# GLS value; REML maximises the likelihood of the residual contrasts, which integrates $\beta$
# out and so accounts for the degrees of freedom spent on it:
#
# $$-2\ell_{ML} = \log|V| + r'V^{-1}r + n\log 2\pi,\qquad
#   -2\ell_{R} = \log|V| + \log|X'V^{-1}X| + r'V^{-1}r + (n-p)\log 2\pi,$$
#
# with $r = y - X\hat\beta_{GLS}$.  We write both down with the dense $V$ and maximise them with
# a general-purpose optimiser, over $\log\sigma_a$ and $\log\sigma$.

# %%
def neg2loglik(params, y, X, codes, reml):
    sa, s = np.exp(params)
    V = np.where(codes[:, None] == codes[None, :], sa**2, 0.0) + s**2 * np.eye(len(y))
    Vi = np.linalg.inv(V)
    XtViX = X.T @ Vi @ X
    beta = np.linalg.solve(XtViX, X.T @ Vi @ y)
    r = y - X @ beta
    n, p = X.shape
    val = np.linalg.slogdet(V)[1] + r @ Vi @ r
    if reml:
        return val + np.linalg.slogdet(XtViX)[1] + (n - p) * np.log(2 * np.pi)
    return val + n * np.log(2 * np.pi)


codes_s = small["g"].to_numpy()
ys, Xs = small["y"].to_numpy(), fit_s.design.X
rows = []
for reml in (True, False):
    fit = workbench.fit("y ~ 1 + x + (1 | g)", small, method="reml" if reml else "ml")
    opt = minimize(neg2loglik, np.log([1.0, 1.0]), args=(ys, Xs, codes_s, reml),
                   method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})
    sa_opt, s_opt = np.exp(opt.x)
    name = "REML" if reml else "ML"
    rows.append({"method": name, "sd_a (dense optimiser)": sa_opt, "sd_a (workbench)": sd_of(fit, "g"),
                 "sigma (dense)": s_opt, "sigma (workbench)": fit.sigma,
                 "-2 log L (dense)": opt.fun, "criterion (workbench)": fit.criterion})
    check(f"3 small {name}: dense criterion at workbench's estimates = workbench's criterion",
          rel(neg2loglik(np.log([sd_of(fit, "g"), fit.sigma]), ys, Xs, codes_s, reml), fit.criterion),
          1e-10)
    check(f"3 small {name}: maximising the dense likelihood finds workbench's estimates",
          rel([sa_opt, s_opt], [sd_of(fit, "g"), fit.sigma]), 1e-4)
pd.DataFrame(rows)

# %% [markdown]
# ML's variance estimates are smaller: it treats $\hat\beta$ as known and so underestimates
# the spread, as dividing a residual sum of squares by $n$ instead of $n - p$ does.  REML makes
# that correction.  On the radon data the dense restricted likelihood at the engine's estimates
# is again the engine's criterion:

# %%
check("3 radon REML: dense -2 log L_R at the estimates = workbench's criterion",
      rel(neg2loglik(np.log([sa_r, s_r]), radon["log_radon"].to_numpy(), fit_r.design.X,
                     radon["county"].to_numpy(), True), fit_r.criterion), 1e-10)
fit_r_ml = workbench.fit("log_radon ~ floor + (1 | county)", radon, method="ml")
print(f"radon sd_a: REML {sa_r:.4f}, ML {sd_of(fit_r_ml, 'county'):.4f}")

# %% [markdown]
# ## 4. BLUPs are shrunken group means
#
# The best linear unbiased predictor of the group effects is $\hat b = G Z' V^{-1}(y -
# X\hat\beta)$.  For a random intercept this collapses to a scalar per group:
#
# $$\hat a_j = k_j\,\bar r_j,\qquad k_j = \frac{n_j\sigma_a^2}{n_j\sigma_a^2 + \sigma^2},\qquad
#   \bar r_j = \text{mean of } y - X\hat\beta \text{ in group } j:$$
#
# the raw (no-pooling) group mean, pulled toward zero by a factor that grows with the group's
# size.  Small groups shrink most.

# %%
def blup_dense(fit, V, y_, codes, sd_a):
    r = y_ - fit.design.X @ np.array(list(fit.beta.values()))
    levels = list(dict.fromkeys(sorted(set(codes), key=str)))
    Z = (np.asarray(codes)[:, None] == np.array(levels, dtype=object)[None, :]).astype(float)
    return pd.Series(sd_a**2 * Z.T @ np.linalg.solve(V, r), index=[str(v) for v in levels])


for label, fit, V, y_, codes, sa, s in [
    ("small", fit_s, V_s, ys, codes_s, sd_of(fit_s, "g"), fit_s.sigma),
    ("radon", fit_r, V_r, radon["log_radon"].to_numpy(), radon["county"].to_numpy(), sa_r, s_r),
]:
    ge = group_effects(fit).set_index("level")
    dense = blup_dense(fit, V, y_, codes, sa).reindex(ge.index)
    k = ge["n"] * sa**2 / (ge["n"] * sa**2 + s**2)
    check(f"4 {label}: BLUP = G Z' V^-1 (y - X beta)", maxabs(dense, ge["estimate"]), 1e-9)
    check(f"4 {label}: BLUP = k_j * raw mean, k_j = n sa^2/(n sa^2 + s^2)",
          maxabs(k * ge["raw"], ge["estimate"]), 1e-9)

ge_s = group_effects(fit_s)[["level", "n", "raw", "shrinkage", "estimate"]]
ge_s.rename(columns={"shrinkage": "k_j", "estimate": "BLUP"})

# %%
fig = plot_shrinkage(fit_r, response_label="county intercept (log radon, basement)")
plt.show()
plt.close(fig)

# %% [markdown]
# ## 5. Bayes with flat fixed-effect priors and fixed variances = GLS + BLUPs, exactly
#
# Put a flat prior on $\beta$, keep $b \sim N(0, G)$, and hold $G$ and $\sigma$ at the REML
# values.  Then $(\beta, b)$ has a Gaussian posterior with precision and mean
#
# $$Q = \frac{1}{\sigma^2}[X\;Z]'[X\;Z] + \begin{pmatrix}0 & 0\\ 0 & G^{-1}\end{pmatrix},\qquad
#   m = Q^{-1}\frac{1}{\sigma^2}[X\;Z]'y.$$
#
# Henderson's mixed-model equations are exactly $Q m = [X\,Z]'y/\sigma^2$, so the posterior mean
# is the GLS estimate and the BLUPs, and the posterior covariance of $\beta$ is the GLS
# covariance $(X'V^{-1}X)^{-1}$.  The posterior sd of $b$ is larger than the conditional sd the
# engine reports (as lme4's `condVar` does, that one holds $\beta$ at $\hat\beta$); with $\beta$
# also fixed, the two agree.

# %%
def gaussian_posterior(fit, y_, codes, sd_a, sigma):
    X = fit.design.X
    levels = sorted(set(codes), key=str)
    Z = (np.asarray(codes)[:, None] == np.array(levels, dtype=object)[None, :]).astype(float)
    W = np.hstack([X, Z])
    p, q = X.shape[1], Z.shape[1]
    prior_prec = np.zeros((p + q, p + q))
    prior_prec[p:, p:] = np.eye(q) / sd_a**2
    Q = W.T @ W / sigma**2 + prior_prec
    cov = np.linalg.inv(Q)
    mean = cov @ (W.T @ y_) / sigma**2
    # beta held at its estimate: b | y, beta ~ N(., (Z'Z/s^2 + G^-1)^-1)
    cond_cov = np.linalg.inv(Q[p:, p:])
    return mean[:p], mean[p:], cov[:p, :p], np.sqrt(np.diag(cov[p:, p:])), \
        np.sqrt(np.diag(cond_cov)), [str(v) for v in levels]


for label, fit, y_, codes, sa, s in [
    ("small", fit_s, ys, codes_s, sd_of(fit_s, "g"), fit_s.sigma),
    ("radon", fit_r, radon["log_radon"].to_numpy(), radon["county"].to_numpy(), sa_r, s_r),
]:
    m_beta, m_b, cov_beta, post_sd_b, cond_sd_b, levels = gaussian_posterior(fit, y_, codes, sa, s)
    ge = group_effects(fit).set_index("level").reindex(levels)
    check(f"5 {label}: posterior mean of beta = GLS beta", maxabs(m_beta, list(fit.beta.values())), 1e-8)
    check(f"5 {label}: posterior mean of b = BLUPs", maxabs(m_b, ge["estimate"]), 1e-8)
    check(f"5 {label}: posterior covariance of beta = (X'V^-1 X)^-1", maxabs(cov_beta, fit.state.vcov), 1e-8)
    check(f"5 {label}: posterior sd of b given beta = conditional sd", maxabs(cond_sd_b, ge["sd"]), 1e-8)
    print(f"{label}: posterior sd of b exceeds the conditional sd by up to "
          f"{np.max(post_sd_b / ge['sd'] - 1):.1%} (the uncertainty in beta)")

# %% [markdown]
# The sampler, given the same model (flat prior on $\beta$, variances fixed with `Fixed(...)`),
# reproduces these numbers up to Monte Carlo error (run with `WALKTHROUGH_MCMC=1`):

# %%
if RUN_MCMC:
    post = workbench.fit("y ~ 1 + x + (1 | g)", small, method="bayes", seed=1, progressbar=False,
                         priors={"beta": "Flat()", "sd": f"Fixed({sd_of(fit_s, 'g')})",
                                 "sigma": f"Fixed({fit_s.sigma})"})
    print(pd.DataFrame({"GLS": fit_s.beta, "MCMC posterior mean": post.beta,
                        "GLS SE": fit_s.beta_se, "MCMC posterior sd": post.beta_se}))

# %% [markdown]
# ## 6. With the variances estimated: close with many groups, different with few
#
# A full Bayesian analysis also integrates over $\sigma_a$ and $\sigma$.  Conditional on them,
# step 5 holds, so the posterior mean is the GLS estimate and BLUP *averaged over the
# posterior of the variances*:
# $E[\beta \mid y] = \int \hat\beta_{GLS}(\sigma_a, \sigma)\,p(\sigma_a, \sigma \mid y)$.
# With flat priors on $\beta$ the marginal posterior of the variances is the restricted
# likelihood times their prior, which we evaluate on a grid (no sampling needed).
#
# **Radon (85 counties).** The posterior of $\sigma_a$ is concentrated near the REML estimate, so
# the averaged answers sit next to the plug-in ones.

# %%
def averaged(fit, sd_grid, log_prior=None, sigma_values=None):
    """Posterior means of beta, b and sd_a by averaging the conditional answers over a grid."""
    known = fit.design.known_sd is not None
    lp = L.log_posterior_grid(fit, sd_grid, sigma_values, log_prior)
    sig = [None] if known else (L.sigma_grid(fit) if sigma_values is None else sigma_values)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    system = fit.state.system
    beta_m, b_m = 0.0, 0.0
    for i, sa in enumerate(sd_grid):
        for j, s in enumerate(sig):
            if w[i, j] < 1e-14:
                continue
            theta = sa if known else sa / s
            f = assemble_fit(system, np.array([theta]))
            beta_m = beta_m + w[i, j] * np.array(list(f.beta.values()))
            b_m = b_m + w[i, j] * np.array([r["value"] for r in f.ranef])
    return beta_m, b_m, float((w.sum(axis=1) * sd_grid).sum())


grid_r = np.linspace(0.05, 0.7, 66)
beta_bayes_r, b_bayes_r, sa_bayes_r = averaged(fit_r, grid_r, sigma_values=L.sigma_grid(fit_r, 21))
se_r = np.array(list(fit_r.beta_se.values()))
blup_r = np.array([r["value"] for r in fit_r.ranef])
print(pd.DataFrame({"REML": list(fit_r.beta.values()), "posterior mean": beta_bayes_r,
                    "difference / SE": (beta_bayes_r - list(fit_r.beta.values())) / se_r},
                   index=list(fit_r.beta)))
print(f"sd_a: REML {sa_r:.4f}, posterior mean {sa_bayes_r:.4f}")
check("6 radon: posterior means of beta within 0.05 SE of REML",
      np.max(np.abs(beta_bayes_r - list(fit_r.beta.values())) / se_r), 0.05)
check("6 radon: posterior means of county effects within 0.02 of the BLUPs",
      maxabs(b_bayes_r, blup_r), 0.02)

# %% [markdown]
# **Eight schools (8 groups, known standard errors).** REML puts the between-school sd $\tau$ on
# the boundary, $\hat\tau = 0$: the BLUPs are all zero and every school gets the pooled mean.
# The posterior of $\tau$ (here under a half-Cauchy(0, 25) prior, Gelman 2006) has most of its mass
# away from 0, and the school effects are only partly pooled.

# %%
from scipy import stats

fit_8 = workbench.fit("y ~ 1 + (1 | school)", schools, known_sd="sigma")
tau_hat = sd_of(fit_8, "school")
grid_8 = np.linspace(0.0, 60.0, 601)
beta_8, b_8, tau_mean = averaged(fit_8, grid_8, lambda t: stats.halfcauchy.logpdf(t, scale=25.0))
table_8 = pd.DataFrame({
    "y": schools["y"], "se": schools["sigma"],
    "REML: mu + BLUP": fit_8.beta["(Intercept)"] + np.array([r["value"] for r in fit_8.ranef]),
    "posterior mean": beta_8[0] + b_8}, index=schools["school"])
print(f"tau: REML {tau_hat:.3g} (singular fit: {fit_8.singular}); posterior mean {tau_mean:.2f}")
table_8

# %%
check("6 eight schools: REML estimate of tau sits on the boundary", tau_hat, 1e-6)
check("6 eight schools: every BLUP is 0 (complete pooling)",
      np.max(np.abs([r["value"] for r in fit_8.ranef])), 1e-6)
spread = float(np.ptp(table_8["posterior mean"]))
print(f"spread of posterior school means: {spread:.2f} points (REML: 0)")
check("6 eight schools: posterior school means spread by more than 2 points (partial pooling)",
      max(0.0, 2.0 - spread), 0.0)

# %%
if RUN_MCMC:
    post8 = workbench.fit("y ~ 1 + (1 | school)", schools, method="bayes", known_sd="sigma",
                          priors={"beta": "Flat()", "sd": "HalfCauchy(25)"}, seed=1,
                          target_accept=0.95, progressbar=False)
    print("MCMC posterior mean of tau:",
          next(r["sdcor"] for r in post8.varcorr if r["grp"] == "school"), "grid:", tau_mean)

# %% [markdown]
# ## 7. Random slopes and a crossed factor: $V = Z G Z' + \sigma^2 I$
#
# With random slopes, each group has a vector $(a_j, b_j) \sim N(0, \Sigma)$ and row $i$ of $Z$
# holds $(1, x_i)$ in its group's two columns.  $G = I_J \otimes \Sigma$, and $V = ZGZ' +
# \sigma^2 I$ is still block diagonal, but the within-group covariance now depends on $x$:
# $\mathrm{Cov}(y_i, y_k) = z_i'\Sigma z_k$.  With a second grouping factor crossed with the
# first (each sample on every plate, say), $Z = [Z_1\; Z_2]$, $G = \mathrm{diag}(\sigma_1^2 I,
# \sigma_2^2 I)$ and $V$ is no longer block diagonal.  In each case GLS with this $V$ gives the
# mixed model's fixed effects.

# %%
def sigma_matrix(fit, grp, terms):
    sds = {r["var1"]: r["sdcor"] for r in fit.varcorr if r["grp"] == grp and r["var2"] is None}
    S = np.diag([sds[t] ** 2 for t in terms])
    for r in fit.varcorr:
        if r["grp"] == grp and r["var2"] is not None:
            i, k = terms.index(r["var1"]), terms.index(r["var2"])
            S[i, k] = S[k, i] = r["sdcor"] * sds[r["var1"]] * sds[r["var2"]]
    return S


def slopes_V(fit, codes, xcol, grp):
    levels = sorted(set(codes), key=str)
    J, n = len(levels), len(codes)
    Z = np.zeros((n, 2 * J))
    for i, (c, xi) in enumerate(zip(codes, xcol)):
        j = levels.index(c)
        Z[i, 2 * j], Z[i, 2 * j + 1] = 1.0, xi
    G = np.kron(np.eye(J), sigma_matrix(fit, grp, ["(Intercept)", fit.design.terms[0].columns[1]]))
    return Z @ G @ Z.T + fit.sigma**2 * np.eye(n)


fit_s2 = workbench.fit("y ~ 1 + x + (1 + x | g)", small)
fit_r2 = workbench.fit("log_radon ~ floor + (1 + floor | county)", radon)
for label, fit, codes, xcol, grp, y_ in [
    ("small", fit_s2, codes_s, small["x"].to_numpy(), "g", ys),
    ("radon", fit_r2, radon["county"].to_numpy(), radon["floor"].to_numpy(float), "county",
     radon["log_radon"].to_numpy()),
]:
    V = slopes_V(fit, codes, xcol, grp)
    check(f"7 {label} slopes: V = Z (I kron Sigma) Z' + sigma^2 I matches build_V",
          maxabs(V, build_V(fit)), 1e-12)
    beta, se = gls(y_, fit.design.X, V)
    check(f"7 {label} slopes: GLS(sigma=V) beta = mixed-model beta", rel(beta, list(fit.beta.values())), 1e-9)
    check(f"7 {label} slopes: GLS standard errors = mixed-model standard errors",
          rel(se, list(fit.beta_se.values())), 1e-9)

# %% [markdown]
# A crossed design: the radon data have one grouping factor, so we add a second one crossed
# with it in the small data (four measurement batches running across the groups, each shifting
# its measurements by a random amount), and also
# use lme4's Penicillin data when the reference folder is present (24 plates x 6 samples).

# %%
def crossed_V(fit, data, factors):
    n = len(data)
    V = fit.sigma**2 * np.eye(n)
    for f in factors:
        codes = data[f].to_numpy()
        V += sd_of(fit, f) ** 2 * (codes[:, None] == codes[None, :])
    return V


batch = np.arange(len(small)) % 4                  # four batches, crossed with the groups
small["batch"] = [f"b{k + 1}" for k in batch]
small["y_batch"] = small["y"] + np.round(rng.normal(0, 0.8, 4), 3)[batch]  # batch effects, sd 0.8
crossed = [("small", small, "y_batch ~ 1 + x + (1 | g) + (1 | batch)", ["g", "batch"], "y_batch"),
           ("penicillin", workbench.datasets.load("Penicillin"), "diameter ~ 1 + (1 | plate) + (1 | sample)",
            ["plate", "sample"], "diameter")]
for label, data, formula, factors, resp in crossed:
    fit = workbench.fit(formula, data)
    V = crossed_V(fit, data, factors)
    check(f"7 {label} crossed: V = Z1 Z1' s1^2 + Z2 Z2' s2^2 + sigma^2 I matches build_V",
          maxabs(V, build_V(fit)), 1e-10)
    beta, se = gls(data[resp].to_numpy(float), fit.design.X, V)
    check(f"7 {label} crossed: GLS(sigma=V) beta = mixed-model beta", rel(beta, list(fit.beta.values())), 1e-9)
    print(label, {k: round(v, 4) for k, v in fit.beta.items()},
          {f: round(sd_of(fit, f), 4) for f in factors})

# %% [markdown]
# ## 8. Three other GLS traditions on one data set
#
# Users arrive from three traditions that each fit the random-intercept model by GLS, and none
# of them is REML:
#
# * **nlme's marginal model.** `gls(log_radon ~ floor, correlation = corCompSymm(form = ~ 1 |
#   county))` writes the model as a residual correlation: $V_j = s^2((1-\rho) I + \rho J)$ with
#   no random effects at all.  Step 1's $V_j$ has exactly this form with $s^2 = \sigma_a^2 +
#   \sigma^2$ and $\rho = \sigma_a^2 / (\sigma_a^2 + \sigma^2)$, so for $\rho > 0$ it is the same
#   model, with the same restricted likelihood, and the fits coincide (a negative $\rho$, which
#   the random-effects form cannot express, is the `nobound` fit).
# * **Econometrics' feasible GLS** (Stata's `xtreg, re`, R's `plm(model = "random")`): the two
#   variances from moment (ANOVA) estimators, here Swamy and Arora's from a within and a between
#   regression, then one GLS step.  No likelihood is maximised, so the variances differ from
#   REML's; the fixed effects are GLS at those variances.
# * **MLwiN's iterated GLS** (Goldstein 1986, 1989): alternate GLS for $\beta$ at the current
#   variances and GLS for the variances on the residual cross-products $r_j r_j'$.  Its fixed
#   point solves the ML score equations, so IGLS converges to the ML fit; RIGLS adds the bias
#   correction $X_j C X_j'$ to the cross-products and converges to REML.
#
# And the posterior (the fast path: $\beta$ integrated out, the two variances sampled) integrates
# over the variances instead of plugging in an estimate, under its default priors.

# %%
RADON_RI = "log_radon ~ floor + (1 | county)"
fit_cs = workbench.fit("log_radon ~ floor", radon, correlation="cs(~ 1 | county)")
fit_fg = workbench.fit(RADON_RI, radon, method="fgls", fgls="swar")
fit_ig = workbench.fit(RADON_RI, radon, method="igls")
fit_rig = workbench.fit(RADON_RI, radon, method="rigls")
fit_post = workbench.fit(RADON_RI, radon, method="bayes", seed=2026, progressbar=False)

rho, s2_cs = fit_cs.diagnostics["corstruct"]["Rho"], fit_cs.sigma**2


def components(fit):
    """(var[county], var[Residual]) of a fit; nlme's cs GLS mapped to the random intercept."""
    if fit is fit_cs:
        return rho * s2_cs, (1 - rho) * s2_cs
    return sd_of(fit, "county") ** 2, fit.sigma**2


traditions = {"REML": fit_r, "nlme gls, cs (REML)": fit_cs, "RIGLS": fit_rig, "ML": fit_r_ml,
              "IGLS": fit_ig, "FGLS (Swamy-Arora)": fit_fg, "posterior mean": fit_post}
table_gls = pd.DataFrame({
    label: {**{f"beta[{k}]": v for k, v in f.beta.items()},
            **{f"se[{k}]": v for k, v in f.beta_se.items()},
            "var[county]": components(f)[0], "var[Residual]": components(f)[1],
            "-2 log L (own criterion)": f.criterion if f.criterion is not None else np.nan}
    for label, f in traditions.items()})
table_gls

# %% [markdown]
# The columns that coincide, and why:

# %%
check("8 radon: cs GLS criterion = REML criterion (the same restricted likelihood)",
      rel(fit_cs.criterion, fit_r.criterion), 1e-10)
check("8 radon: cs GLS beta = REML beta", rel(list(fit_cs.beta.values()), list(fit_r.beta.values())), 1e-7)
check("8 radon: cs GLS standard errors = REML standard errors",
      rel(list(fit_cs.beta_se.values()), list(fit_r.beta_se.values())), 1e-6)
check("8 radon: cs GLS Rho = var[county] / (var[county] + sigma^2) of REML",
      abs(rho - sa_r**2 / (sa_r**2 + s_r**2)), 1e-6)
for label, a, b in [("RIGLS = REML", fit_rig, fit_r), ("IGLS = ML", fit_ig, fit_r_ml)]:
    check(f"8 radon: {label}, fixed effects", rel(list(a.beta.values()), list(b.beta.values())), 1e-7)
    check(f"8 radon: {label}, variance components", rel(components(a), components(b)), 1e-6)
    check(f"8 radon: {label}, criterion", rel(a.criterion, b.criterion), 1e-10)

# %% [markdown]
# Feasible GLS is GLS too, at its own variances: step 2's dense GLS with $V$ built from the
# Swamy-Arora estimates gives its fixed effects.  It differs from REML only through the moment
# estimator, and the difference shrinks as the number of groups grows (the FGLS arm of the
# equivalence study, `studies/equivalence_fgls.toml`, measures it: see `studies/README.md`).

# %%
va_fg, ve_fg = components(fit_fg)
V_fg = np.where(radon["county"].to_numpy()[:, None] == radon["county"].to_numpy()[None, :],
                va_fg, 0.0) + ve_fg * np.eye(len(radon))
beta_fg, _ = gls(radon["log_radon"].to_numpy(), fit_fg.design.X, V_fg)
check("8 radon: FGLS beta = GLS(sigma=V) at its moment estimates",
      rel(beta_fg, list(fit_fg.beta.values())), 1e-9)
print(f"var[county]: FGLS {va_fg:.5f}, REML {sa_r**2:.5f} "
      f"({100 * (va_fg / sa_r**2 - 1):+.1f}%); var[Residual]: FGLS {ve_fg:.5f}, REML {s_r**2:.5f}")

# %% [markdown]
# IGLS, iteration by iteration: from the OLS start (no county variance), each alternation of
# the two GLS steps moves the variances and lowers the ML deviance until the fixed point.

# %%
trace = pd.DataFrame([{"iteration": t["iteration"], **t["variance"], **t["beta"],
                       "ML deviance": t["criterion"]} for t in fit_ig.diagnostics["iterations"]])
trace.head(6)

# %% [markdown]
# The posterior differs from all of them in two ways: its priors (weak here, with 85 counties),
# and averaging over the variances rather than plugging in one estimate (step 6).  With many
# groups the differences are small:

# %%
post_se = np.array(list(fit_r.beta_se.values()))
post_gap = np.abs(np.array(list(fit_post.beta.values())) - list(fit_r.beta.values())) / post_se
print("posterior mean - REML, in REML standard errors:", np.round(post_gap, 3))
check("8 radon: posterior means of beta within 0.1 SE of REML", np.max(post_gap), 0.1)

# %% [markdown]
# ## 9. The seed's aside: forecast reconciliation is the same GLS projection
#
# A hierarchy of series (a total, two regions, four shops) is summed by a matrix $S$: coherent
# forecasts are $y = S b$ for bottom-level forecasts $b$.  Forecasts made series by series,
# $\hat y$, do not add up.  Reconciliation (Hyndman et al. 2011; Wickramasuriya et al. 2019)
# treats them as a regression $\hat y = S b + e$, $\mathrm{var}(e) = W$, and takes the GLS fit
# $\tilde y = S(S'W^{-1}S)^{-1}S'W^{-1}\hat y$: the projection of step 2, with $S$ as the design
# matrix and $W$ as $V$.

# %%
from workbench.gls.reconcile import projection

S = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1],
              [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)
base = np.array([102.0, 49.0, 50.0, 22.0, 29.0, 24.0, 27.0])   # 49 + 50 != 102
W_struct = np.diag(S.sum(axis=1))                                # wls_struct: W = diag(S 1)
coherent = workbench.reconcile(base, S, method="wls_struct")
b_gls, _ = gls(base, S, W_struct)
print("base:", base, "\nreconciled:", np.round(coherent, 3))
check("9 reconciliation: reconcile(wls_struct) = S times GLS(sigma=W) of the base on S",
      rel(coherent, S @ b_gls), 1e-12)
check("9 reconciliation: the reconciled forecasts add up",
      maxabs(coherent[:3], [coherent[3:].sum(), coherent[3:5].sum(), coherent[5:].sum()]), 1e-12)
check("9 radon: reconcile's projection with S = X and W = V gives the mixed model's beta",
      rel(projection(fit_r.design.X, V_r) @ radon["log_radon"].to_numpy(), list(fit_r.beta.values())),
      1e-9)

# %% [markdown]
# ## Summary
#
# Every identity above, with its numerical discrepancy:

# %%
summary = pd.DataFrame([(k, v, t) for k, (v, t) in CHECKS.items()],
                       columns=["identity", "discrepancy", "tolerance"])
print(f"{len(summary)} checks, all within tolerance: {bool((summary.discrepancy <= summary.tolerance).all())}")
summary
