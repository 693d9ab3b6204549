"""Closed-form posterior of a linear mixed model with G and sigma known and a flat prior on
beta (dense formulas, for small test data only)."""

import numpy as np



def block_G(structure, covs):
    """Stacked covariance of all random effects from one q x q covariance per factor block."""
    Q = sum(b.nlevels * b.q for b in structure.blocks)
    G = np.zeros((Q, Q))
    off = 0
    for blk, S in zip(structure.blocks, covs):
        for _ in range(blk.nlevels):
            G[off:off + blk.q, off:off + blk.q] = S
            off += blk.q
    return G


def gaussian_posterior(design, structure, covs, sigma=None):
    """Means and sds of beta and of the stacked random effects (block, level, column order).

    The posterior is Gaussian: beta ~ N(GLS estimate, (X'V^-1X)^-1) and b has mean equal to
    the BLUPs and covariance G - G Z' P Z G, P = V^-1 - V^-1 X (X'V^-1X)^-1 X'V^-1.
    """
    Z = structure.stacked_Z().toarray()
    G = block_G(structure, covs)
    R = np.diag(design.known_sd ** 2) if design.known_sd is not None else sigma ** 2 * np.eye(design.n)
    V = Z @ G @ Z.T + R
    Vi = np.linalg.inv(V)
    X, y = design.X, design.y
    cov_beta = np.linalg.inv(X.T @ Vi @ X)
    beta = cov_beta @ X.T @ Vi @ y
    P = Vi - Vi @ X @ cov_beta @ X.T @ Vi
    b = G @ Z.T @ Vi @ (y - X @ beta)
    cov_b = G - G @ Z.T @ P @ Z @ G
    return beta, np.sqrt(np.diag(cov_beta)), b, np.sqrt(np.diag(cov_b))


def assert_matches(draws, mean, sd, nchains, z_max=4.5):
    """Sampled means and sds agree with the exact ones within Monte Carlo error.

    ``draws`` is (chains x draws, k); the Monte Carlo se of a mean is sd / sqrt(ESS_mean), of an
    sd about sd / sqrt(2 ESS_sd).
    """
    import arviz as az

    draws = np.asarray(draws)
    for j in range(draws.shape[1]):
        x = draws[:, j].reshape(nchains, -1)
        ess_m = float(az.ess(x, method="mean"))
        ess_s = float(az.ess(x, method="sd"))
        zm = (x.mean() - mean[j]) / (sd[j] / np.sqrt(ess_m))
        zs = (x.std(ddof=1) - sd[j]) / (sd[j] / np.sqrt(2 * ess_s))
        assert abs(zm) < z_max, f"column {j}: mean {x.mean():.4f} vs exact {mean[j]:.4f} (z={zm:.1f})"
        assert abs(zs) < z_max, f"column {j}: sd {x.std(ddof=1):.4f} vs exact {sd[j]:.4f} (z={zs:.1f})"
