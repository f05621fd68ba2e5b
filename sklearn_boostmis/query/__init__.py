"""Query utilities of BoostMIS active annotation: the selectors (``aus``,
``bus``), their combination (``combine``) and the strategy (``sampler``)."""

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
