"""A router's predictions for many tasks at once, as sparse-matrix products.

Evaluation scores thousands of benchmark tasks for two routers and three heads; doing
that one ``predict_one`` at a time dominated its cost. The router's table of every route's
weights (``RewardIndex``) times a CSR feature matrix gives the same numbers (up to float
summation order) in milliseconds, which keeps evaluation cheap and off the consumer's
critical path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix

from memabrad.learning.features import Features
from memabrad.learning.route_model import RouteModel
from memabrad.learning.router import Router
from memabrad.learning.window import PackedFeatures


def feature_matrix(xs: Sequence[Features | PackedFeatures], dim: int) -> csr_matrix:
    """Rows of hashed features as a CSR matrix of ``dim`` columns (the window's packed rows are
    concatenated, not iterated)."""
    rows = [PackedFeatures.of(x) for x in xs]
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, rows), dtype=np.int64, count=len(rows)), out=indptr[1:])
    if not rows:
        return csr_matrix((len(rows), dim))
    indices = np.concatenate([r.keys_array for r in rows])
    data = np.concatenate([r.values_array for r in rows])
    return csr_matrix((data, indices, indptr), shape=(len(rows), dim))


def predict_all(router: Router, X: csr_matrix, routes: Sequence[str],
                groups: Sequence[str | None] | None = None) -> dict[str, np.ndarray]:
    """``{"reward"|"error_rate"|"latency_ms"|"score": array (n, len(routes))}`` for the rows of ``X``
    (tasks of ``groups``, their task_types): the outcome predictions of ``Router.predict_outcome``
    and the pessimistic scores of ``Router.scores`` (what the router ranks by)."""
    n = X.shape[0]
    groups = list(groups) if groups is not None else [None] * n
    # each distinct group once: its offsets and standard errors are looked up per group, then gathered
    distinct = list(dict.fromkeys(groups))
    code = {g: k for k, g in enumerate(distinct)}
    rows_group = np.fromiter((code[g] for g in groups), np.int64, n)
    out = {m: np.zeros((n, len(routes))) for m in ("reward", "error_rate", "latency_ms", "score")}
    # every trained route's three contextual parts (the shared part's included), (n, 3K), in one product
    ix = router.reward_index()
    parts, k = ix.contextual_rows(X), len(ix.routes)
    for j, route in enumerate(routes):
        model = router.routes.get(route)
        if model is None or not model.n:
            out["reward"][:, j] = router.prior_reward
            out["score"][:, j] = router.untrained_score()
            continue
        c = ix.col[route]
        f = parts[:, [c, k + c, 2 * k + c]]  # (n, 3): each head's contextual part
        dg = group_parts(model, distinct)[rows_group]  # (n, 3): each head's group part
        (lgr, lfr), (lge, lfe), (lgl, lfl) = model.lambdas()
        m_err = model.error_rate
        base_err = np.clip(m_err + dg[:, 1], 1e-9, 1.0 - 1e-9)
        p_err = 1.0 / (1.0 + np.exp(-np.clip(np.log(base_err / (1.0 - base_err)) + f[:, 1], -30.0, 30.0)))
        reward = model.reward_mean + lgr * dg[:, 0] + lfr * f[:, 0]
        out["reward"][:, j] = reward
        out["error_rate"][:, j] = np.clip(m_err + lge * dg[:, 1] + lfe * (p_err - base_err), 0.0, 1.0)
        out["latency_ms"][:, j] = np.maximum(0.0, (model.latency_mean + lgl * dg[:, 2] + lfl * f[:, 2]) * 1000.0)
        se: np.ndarray | float
        if lgr > 0:
            se = np.fromiter((model.reward_se(g) for g in distinct), float, len(distinct))[rows_group]
        else:
            se = model.reward_se()
        out["score"][:, j] = reward - router.pessimism * se
        if router.prices.active:
            out["score"][:, j] -= router.prices.penalty(out["error_rate"][:, j], out["latency_ms"][:, j])
    return out


def group_parts(model: RouteModel, groups: list[str | None]) -> np.ndarray:
    """(len(groups), 3): the route's (reward, error, latency) group offsets per group (each distinct group
    once, then gathered)."""
    return np.array([model.group_offsets(g) for g in groups], dtype=float).reshape(-1, 3)


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
