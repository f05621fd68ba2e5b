"""The BoostMIS closed loop: train, query AUS + BUS, annotate, repeat."""

from ._loop import AnnotationLoop, update_digest

__all__ = ["AnnotationLoop", "update_digest"]
