"""Query utilities of BoostMIS active annotation (METHOD.md, AUS and BUS).

Public functions that compute selection scores and combine rankings; query
strategies are thin layers over them.
"""

from .adversarial import adversarial_instability
from .balanced import balanced_top_k
from .combine import interleave_rankings, union_candidates
from .density import knn_density
from .uncertainty import density_weighted_entropy, entropy

__all__ = [
    "adversarial_instability",
    "balanced_top_k",
    "density_weighted_entropy",
    "entropy",
    "interleave_rankings",
    "knn_density",
    "union_candidates",
]
