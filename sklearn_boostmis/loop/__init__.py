"""The BoostMIS closed loop (``_loop``), its crash-safe files (``_store``) and
the oracle's answers (``_answers``)."""

from ._loop import AnnotationLoop
from ._store import update_digest

__all__ = ["AnnotationLoop", "update_digest"]
