"""The EMA teacher used for evaluation and query scoring.

The update and its warm-up are on the method page (:ref:`method-training`,
:ref:`method-departures`).
"""

import copy

import torch


def make_teacher(module):
    """A frozen copy of ``module`` that will hold the averaged weights."""
    teacher = copy.deepcopy(module)
    for param in teacher.parameters():
        param.requires_grad_(False)
    return teacher.eval()


def effective_decay(decay, n_updates):
    """EMA decay with a warm-up: ``min(decay, (1 + n) / (10 + n))``, so that
    short fits are not dominated by the initial weights (:ref:`method-departures`).
    """
    return min(float(decay), (1.0 + n_updates) / (10.0 + n_updates))


def ema_pairs(teacher, student):
    """Aligned teacher/student parameter and buffer lists for :func:`ema_update`,
    built once per fit (walking the module tree costs more than the update)."""
    t_params, s_params = list(teacher.parameters()), list(student.parameters())
    t_buffers, s_buffers = list(teacher.buffers()), list(student.buffers())
    if len(t_params) != len(s_params) or len(t_buffers) != len(s_buffers):
        raise ValueError("teacher and student must have the same architecture")
    return t_params, [p.detach() for p in s_params], t_buffers, s_buffers


@torch.no_grad()
def ema_update(teacher, student, decay, pairs=None):
    """``teacher <- decay * teacher + (1 - decay) * student`` for parameters;
    buffers (BatchNorm statistics) are copied. ``pairs``: from :func:`ema_pairs`
    (computed here when None)."""
    t_params, s_params, t_buffers, s_buffers = pairs or ema_pairs(teacher, student)
    if t_params:
        torch._foreach_lerp_(t_params, s_params, 1.0 - decay)
    if t_buffers:
        torch._foreach_copy_(t_buffers, s_buffers)
