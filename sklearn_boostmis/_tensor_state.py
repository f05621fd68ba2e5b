"""Pickling helper for objects that keep torch tensors on the model's device."""

import torch


class TensorStateMixin:
    """Pickle tensors on the CPU so that a GPU-fitted object loads anywhere."""

    def __getstate__(self):
        state = self.__dict__.copy()
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                state[key] = value.detach().cpu()
            elif isinstance(value, torch.Generator) and value.device.type != "cpu":
                state[key] = None
        return state
