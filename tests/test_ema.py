import pytest
import torch
from torch import nn

from sklearn_boostmis.ema import effective_decay, ema_update, make_teacher


def test_teacher_is_frozen_copy():
    student = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    teacher = make_teacher(student)
    assert all(not p.requires_grad for p in teacher.parameters())
    assert not teacher.training
    assert teacher[0].weight.data_ptr() != student[0].weight.data_ptr()


def test_parameters_averaged_buffers_copied():
    student = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    teacher = make_teacher(student)
    with torch.no_grad():
        teacher[0].weight.fill_(1.0)
        student[0].weight.fill_(3.0)
        student[1].running_mean.fill_(7.0)
    ema_update(teacher, student, decay=0.75)
    assert float(teacher[0].weight) == pytest.approx(0.75 * 1.0 + 0.25 * 3.0)
    assert float(teacher[1].running_mean) == 7.0
    assert student[0].weight.item() == 3.0


@pytest.mark.parametrize(
    "n, expected", [(0, 0.1), (1, 2 / 11), (90, 91 / 100), (10**6, 0.999)]
)
def test_effective_decay_warms_up_to_decay(n, expected):
    assert effective_decay(0.999, n) == pytest.approx(expected)
