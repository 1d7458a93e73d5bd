"""A step that does not pass its target: Vowpal Wabbit's safe updates, in spirit, for a route's AdaGrad step.

AdaGrad's step on a feature is ``eta / l1 * sign(gradient)`` the first time it is seen, whatever the size of
the residual, so a route that meets a task's words for the first time (a tool tried 2 % of the time)
moved its prediction by up to half an outcome spread past a residual of a tenth of one, and a larger
``eta`` overshot small residuals as often as it helped large ones (``docs/benchmarks.md``, "Steps that do
not pass their target"). ``route_parts.adagrad_step`` calls ``within_residual`` on every step.
"""

from __future__ import annotations

import numpy as np


def within_residual(step: np.ndarray, vals: np.ndarray, resid: np.ndarray) -> None:
    """Shrink, in place, a table's ``step`` (features, 3) or a stack of them (tables, features, 3) where it would
    move the event's reward or latency prediction past its target: by ``|residual| / |change|``, per table and
    head. The error head is left as it is: its log loss on the logit scale has no finite target. Where a
    hinted event's features answer different residuals (``route_parts.apart_from_hint``), the one compared
    is their mean weighted by the features' sizes.

    >>> step = np.array([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]])
    >>> within_residual(step, np.array([1.0, 1.0]), np.array([0.25, 0.25, 2.0]))
    >>> step.tolist()  # the reward's change 1.0 against a residual of 0.25; the latency's 1.0 within 2.0
    [[0.125, 0.5, 0.5], [0.125, 0.5, 0.5]]
    """
    n = len(vals)
    per_table = step if step.ndim == 3 else step[None]  # a view either way: scaled in place
    change = (vals @ per_table).tolist()  # per table, each head's prediction moves by this much
    if resid.ndim == 1:
        target = [resid.tolist()] * len(change)
    elif resid.shape[-2] == 1 or n == 1:
        target = resid.reshape(-1, 3).tolist()
    else:  # per feature (a hinted event): the residuals weighted by the features' sizes
        size = np.abs(vals)
        target = (size @ resid.reshape(-1, n, 3) / float(size.sum())).tolist()
    for t, (c, r) in enumerate(zip(change, target, strict=True)):  # a few floats: cheaper than numpy calls
        for h in (0, 2):
            if abs(c[h]) > abs(r[h]):
                per_table[t, :, h] *= abs(r[h]) / abs(c[h])
