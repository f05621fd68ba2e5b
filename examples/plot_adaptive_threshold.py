"""
===============================================
The adaptive threshold eps_t and the mask ratio
===============================================

BoostMIS replaces FixMatch's fixed pseudo-label threshold (0.95) by eps_t
(``threshold="adaptive"``, :class:`~sklearn_boostmis.AdaptiveThreshold`)::

    eps_t = alpha * min(1, Count_t / Count_{t-1}) + beta * N_A / (2K)   while t < T_max
    eps_t = alpha + beta                                                 afterwards

where Count_t is the number of unlabeled rows whose weak-view confidence is
at least ``alpha + beta`` and t counts passes over the unlabeled data. Before
the first annotation round N_A = 0, so eps_t starts at ``alpha = 0.9`` and
only settles at 0.95 from ``t_max`` (default: half the passes).

A fitted :class:`~sklearn_boostmis.BoostMISClassifier` keeps eps_t per pass in
``threshold_history_``, and per training step in ``history_`` (skorch's
history) the fraction of the unlabeled batch whose pseudo-label passed the
threshold (``mask_ratio``), the threshold and the two losses. This example
plots them for BoostMIS and for the fixed FixMatch threshold, on digits with
50 labels and ``max_epochs=60`` (so T_max = 30).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.preprocessing import scale

from sklearn_boostmis import BoostMISClassifier

SEED = 0
X, y = load_digits(return_X_y=True)
X = scale(X)
rng = np.random.RandomState(SEED)
y_partial = np.full_like(y, -1)
for c in range(10):
    keep = rng.choice(np.flatnonzero(y == c), 5, replace=False)
    y_partial[keep] = c

fits = {
    "adaptive (BoostMIS)": BoostMISClassifier(max_epochs=60, random_state=SEED),
    "fixed 0.95 (FixMatch)": BoostMISClassifier(
        threshold="fixed", max_epochs=60, random_state=SEED
    ),
}
for clf in fits.values():
    clf.fit(X, y_partial)

# %%
# Per-epoch mean of the per-batch records
# ---------------------------------------
# ``history_[:, "batches", :, key]`` is skorch's way to read a per-batch
# column: one list of batch values per epoch.


def per_epoch(clf, key):
    return np.array([np.mean(b) for b in clf.history_[:, "batches", :, key]])


fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
for name, clf in fits.items():
    epochs = np.arange(1, clf.n_iter_ + 1)
    axes[0].plot(epochs, clf.threshold_history_, label=name)
    axes[1].plot(epochs, per_epoch(clf, "mask_ratio"), label=name)
    axes[2].plot(epochs, per_epoch(clf, "unsup_loss"), label=name)
axes[0].set_title("threshold eps_t (threshold_history_)")
axes[1].set_title("mask ratio (pseudo-labels used)")
axes[2].set_title("unsupervised loss L_u")
for ax in axes:
    ax.set_xlabel("pass over the unlabeled rows")
axes[0].legend()
fig.tight_layout()
plt.show()

# %%
# The learning-status term: while the number of confident rows Count_t grows
# from one pass to the next, the ratio is clipped at 1 and eps_t stays at
# alpha; when it falls, eps_t drops below alpha and lets more pseudo-labels
# in. From T_max on, both policies use 0.95.
adaptive = fits["adaptive (BoostMIS)"]
print("eps_t, first 5 passes:", np.round(adaptive.threshold_history_[:5], 4))
print("eps_t, last pass:", round(float(adaptive.threshold_history_[-1]), 4))
#
# ``transduction_`` holds the pseudo-labels that passed the threshold on their
# last visit (-1 otherwise); their accuracy is measured against the true labels.
unlabeled = y_partial == -1
for name, clf in fits.items():
    pseudo = clf.transduction_[unlabeled]
    passed = pseudo != -1
    right = (pseudo[passed] == y[unlabeled][passed]).mean()
    print(
        f"{name}: {passed.sum()} of {unlabeled.sum()} unlabeled rows pseudo-labeled "
        f"at the end; {right:.1%} of these pseudo-labels are right"
    )
