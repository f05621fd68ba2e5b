"""Per-row pseudo-label memory of the unlabeled set, kept on the device."""

import torch

from ._utils import TensorStateMixin


class PseudoLabelMemory(TensorStateMixin):
    """Last pseudo-label of each unlabeled row and the pass since which it has
    passed the threshold at every visit (-1 when its last visit did not pass).

    Updates cost O(batch); the arrays give ``transduction_`` and
    ``labeled_iter_`` of the estimator after ``fit``.
    """

    # per-row state, merged across data-parallel processes each pass
    row_state_attributes = ("labels", "since")

    def __init__(self, n_unlabeled, device="cpu"):
        self.labels = torch.full((n_unlabeled,), -1, dtype=torch.long, device=device)
        self.since = torch.full((n_unlabeled,), -1, dtype=torch.long, device=device)

    def update(self, idx, pseudo_labels, mask, current_pass):
        """Record a batch; ``current_pass`` is 1-based."""
        previous = self.since[idx]
        continued = (previous >= 0) & (self.labels[idx] == pseudo_labels)
        streak = torch.where(continued, previous, current_pass)
        self.since[idx] = streak.masked_fill(~mask, -1)
        self.labels[idx] = pseudo_labels

    def transduction(self):
        """Pseudo-labels of rows whose last visit passed the threshold, else -1."""
        labels = torch.where(self.since >= 0, self.labels, -1)
        return labels.cpu().numpy(), self.since.cpu().numpy()
