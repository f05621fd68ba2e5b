"""Query utilities of BoostMIS active annotation (AUS and BUS).

The method page states the selectors (:ref:`method-aus`, :ref:`method-bus`)
and how they combine (:ref:`method-combining`).

Public functions that compute selection scores and combine rankings; query
strategies are thin layers over them.
"""

from .adversarial import adversarial_instability
from .balanced import balanced_top_k
from .combine import attribute, interleave_rankings, union_candidates
from .density import knn_density
from .sampler import (
    InformativeQuerySampler,
    QueryUnion,
    aus_ranking,
    bus_ranking,
    low_confidence_candidates,
    teacher_outputs,
    unwrap_classifier,
)
from .uncertainty import density_weighted_entropy, entropy

__all__ = [
    "InformativeQuerySampler",
    "QueryUnion",
    "adversarial_instability",
    "attribute",
    "aus_ranking",
    "bus_ranking",
    "balanced_top_k",
    "density_weighted_entropy",
    "entropy",
    "interleave_rankings",
    "knn_density",
    "low_confidence_candidates",
    "teacher_outputs",
    "union_candidates",
    "unwrap_classifier",
]
