"""The EMA teacher used for evaluation and query scoring (METHOD.md)."""

import copy

import torch


def make_teacher(module):
    """A frozen copy of ``module`` that will hold the averaged weights."""
    teacher = copy.deepcopy(module)
    for param in teacher.parameters():
        param.requires_grad_(False)
    return teacher.eval()


def effective_decay(decay, n_updates):
    """EMA decay with a warm-up: ``min(decay, (1 + n) / (10 + n))``.

    With the paper's decay 0.999 the average spans about 1,000 steps; a fit on a
    few thousand rows makes only a few thousand steps, so without the warm-up
    the teacher would still be dominated by the random initial weights. The
    warm-up (as in TensorFlow's ``ExponentialMovingAverage(num_updates=...)``)
    reaches ``decay`` after about 9,000 updates and leaves long runs unchanged.
    """
    return min(float(decay), (1.0 + n_updates) / (10.0 + n_updates))


@torch.no_grad()
def ema_update(teacher, student, decay):
    """``teacher <- decay * teacher + (1 - decay) * student`` for parameters;
    buffers (BatchNorm statistics) are copied."""
    t_params = [p for p in teacher.parameters()]
    s_params = [p.detach() for p in student.parameters()]
    if t_params:
        torch._foreach_lerp_(t_params, s_params, 1.0 - decay)
    for t_buf, s_buf in zip(teacher.buffers(), student.buffers(), strict=True):
        t_buf.copy_(s_buf)
