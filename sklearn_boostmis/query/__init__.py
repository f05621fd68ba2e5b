"""Query utilities of BoostMIS active annotation (AUS and BUS).

The method page states the selectors (:ref:`method-aus`, :ref:`method-bus`)
and how they combine (:ref:`method-combining`): ``aus`` holds the
Adversarial Unstability Selector, ``bus`` the Balanced Uncertainty Selector,
``combine`` the candidate pool, the merge of their rankings and which selector
picked a row, and ``sampler`` the query strategy built from them.
"""

from .aus import adversarial_instability, aus_ranking
from .bus import (
    balanced_top_k,
    bus_ranking,
    density_weighted_entropy,
    entropy,
    knn_density,
)
from .combine import (
    attribute,
    interleave_rankings,
    low_confidence_candidates,
    union_candidates,
)
from .sampler import InformativeQuerySampler, QueryUnion, unwrap_classifier

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
    "union_candidates",
    "unwrap_classifier",
]
