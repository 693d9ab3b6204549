"""R's contrast matrices and orthogonal polynomials.

A factor with k levels enters a model matrix through a k x (k - 1) contrast matrix C (rows:
levels) and its column names:

* ``treatment`` (R's default for unordered factors): C = I_k without its first column; names
  are the levels 2..k;
* ``sum``: C = [I_{k-1}; -1'], names ``1..k-1``;
* ``helmert``: column j is (-1, .., -1, j, 0, ..) with j entries -1; names ``1..k-1``;
* ``poly`` (R's default for ordered factors): the orthonormal polynomials in the scores 1..k,
  degrees 1..k-1; names ``.L .Q .C ^4 ^5 ..``.

R's ``poly(x, degree)`` is the same construction on the data: the columns of
[1, x - mean, (x - mean)^2, ..] are orthogonalised in order (Gram-Schmidt, i.e. Q R_jj of a QR
decomposition, whose sign does not depend on the QR convention) and scaled to unit length.
"""

from __future__ import annotations

import numpy as np

from .errors import SpecError

KINDS = ("treatment", "sum", "helmert", "poly")


def canonical(kind: str) -> str:
    """``"contr.sum"`` or ``"sum"`` -> ``"sum"``; an unknown kind is a SpecError."""
    k = str(kind).removeprefix("contr.")
    if k not in KINDS:
        raise SpecError(f"unknown contrast '{kind}'; choose one of {', '.join(KINDS)}")
    return k


def orthopoly(x: np.ndarray, degree: int) -> np.ndarray:
    """R's ``poly(x, degree)``: orthonormal polynomial columns of degrees 1..degree."""
    x = np.asarray(x, dtype=float)
    if degree >= np.unique(x).size:
        raise SpecError(f"poly(): degree {degree} must be less than the number of unique "
                        f"points ({np.unique(x).size})")
    xc = x - x.mean()
    V = np.vander(xc, degree + 1, increasing=True)
    Q, R = np.linalg.qr(V)
    Z = Q * np.diag(R)[None, :]
    Z /= np.sqrt((Z**2).sum(axis=0))[None, :]
    return Z[:, 1:]


def _poly_names(k: int) -> list[str]:
    base = [".L", ".Q", ".C"]
    return [base[i] if i < 3 else f"^{i + 1}" for i in range(k - 1)]


def contrast_matrix(kind: str, k: int) -> tuple[np.ndarray, list[str] | None]:
    """Contrast matrix (k x (k-1)) and its column names (None: use the level names)."""
    kind = canonical(kind)
    if kind == "treatment":
        return np.eye(k)[:, 1:], None
    if kind == "sum":
        C = np.vstack([np.eye(k - 1), -np.ones((1, k - 1))])
        return C, [str(j + 1) for j in range(k - 1)]
    if kind == "helmert":
        C = np.zeros((k, k - 1))
        for j in range(k - 1):
            C[: j + 1, j] = -1.0
            C[j + 1, j] = j + 1
        return C, [str(j + 1) for j in range(k - 1)]
    return orthopoly(np.arange(1, k + 1, dtype=float), k - 1), _poly_names(k)


__all__ = ["contrast_matrix", "orthopoly", "canonical", "KINDS"]
