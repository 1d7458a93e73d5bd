"""Pure statistics with no knowledge of routers: running moments and confidence sequences.

The bottom floor beside ``wire`` and ``store``: learning keeps its running evidence with
these, evaluation turns that evidence into intervals.
"""

from memabrad.stats.confidence_sequence import asymptotic_cs, cs_half_width, cs_rho
from memabrad.stats.moments import Moments

__all__ = ["Moments", "asymptotic_cs", "cs_half_width", "cs_rho"]
