"""The BoostMIS closed loop: train, query AUS + BUS, annotate, repeat.

:class:`AnnotationLoop` runs the cycle (``_loop``); ``_store`` keeps its
crash-safe log, state and model, and ``_answers`` reads the oracle's answers.
"""

from ._loop import AnnotationLoop
from ._store import update_digest

__all__ = ["AnnotationLoop", "update_digest"]
