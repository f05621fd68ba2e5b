"""Small checks shared by several modules."""

from numbers import Integral


def is_int(value):
    """Whether ``value`` is an integer: a bool, though Integral, is not one."""
    return isinstance(value, Integral) and not isinstance(value, bool)
