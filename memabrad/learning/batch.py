"""A router's predictions for many tasks at once, as sparse-matrix products.

Evaluation scores thousands of benchmark tasks for two routers and three heads; doing
that one ``predict_one`` at a time dominated its cost. The same linear models as dense
weight vectors times a CSR feature matrix give the same numbers (up to float summation
order) in milliseconds, which keeps evaluation cheap and off the consumer's critical path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix

from memabrad.learning.features import Features
from memabrad.learning.router import Router


def feature_matrix(xs: Sequence[Features], dim: int) -> csr_matrix:
    """Rows of hashed features as a CSR matrix of ``dim`` columns."""
    indptr = np.zeros(len(xs) + 1, dtype=np.int64)
    for i, x in enumerate(xs):
        indptr[i + 1] = indptr[i] + len(x)
    indices = np.fromiter((k for x in xs for k in x), dtype=np.int64, count=int(indptr[-1]))
    data = np.fromiter((v for x in xs for v in x.values()), dtype=np.float64, count=int(indptr[-1]))
    return csr_matrix((data, indices, indptr), shape=(len(xs), dim))


def _dense(model: object, dim: int) -> tuple[np.ndarray, float]:
    w = np.zeros(dim)
    weights = model._weights  # type: ignore[attr-defined]
    if len(weights):
        keys = np.fromiter(weights.keys(), dtype=np.int64, count=len(weights))
        w[keys] = np.fromiter(weights.values(), dtype=np.float64, count=len(weights))
    return w, float(model.intercept)  # type: ignore[attr-defined]


def predict_all(router: Router, X: csr_matrix, routes: Sequence[str]) -> dict[str, np.ndarray]:
    """``{"reward"|"error_rate"|"latency_ms": array (n, len(routes))}`` like ``Router.predict_outcome``."""
    n, dim = X.shape
    out = {m: np.zeros((n, len(routes))) for m in ("reward", "error_rate", "latency_ms")}
    for j, route in enumerate(routes):
        model = router.routes.get(route)
        if model is None or not model.n:
            out["reward"][:, j] = router.prior_reward
            continue
        w, b = _dense(model.reward, dim)
        out["reward"][:, j] = X @ w + b
        w, b = _dense(model.error, dim)
        out["error_rate"][:, j] = 1.0 / (1.0 + np.exp(-np.clip(X @ w + b, -30.0, 30.0)))
        w, b = _dense(model.latency, dim)
        out["latency_ms"][:, j] = np.maximum(0.0, (X @ w + b) * 1000.0)
    return out


def best_columns(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per row, the allowed column with the highest score; ties go to the first column.

    With columns in sorted route order this is ``Router.best``'s tie-break.

    >>> best_columns(np.array([[0.5, 0.5, 0.1], [0.2, 0.9, 0.9]]), np.array([[True, True, True], [True, False, True]]))
    array([0, 2])
    """
    if scores.shape[0] == 0 or scores.shape[1] == 0:
        return np.zeros(scores.shape[0], dtype=np.int64)
    masked = np.where(allowed, scores, -np.inf)
    return np.argmax(masked, axis=1)
