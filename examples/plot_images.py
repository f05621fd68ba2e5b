"""
==========================================
Images: a small CNN and the image views
==========================================

With ``X`` of shape ``(N, H, W)`` or ``(N, C, H, W)``,
:class:`~sklearn_boostmis.BoostMISClassifier` builds a CNN
(:class:`~sklearn_boostmis.cnn.SmallCNN` for sides up to 64 pixels) and uses
the paper's image views, computed as batched torch operations on the model's
device:

- weak (:class:`~sklearn_boostmis.image_augment.WeakImageAugment`): random
  horizontal flip and a translation by reflect-pad and crop;
- strong (:class:`~sklearn_boostmis.image_augment.StrongImageAugment`): three
  random RandAugment-style operations, then Cutout.

A mirrored digit is often another digit, so this example turns the flip off
(``WeakImageAugment(flip=False)``), as one would for any image whose class
depends on its orientation. It trains for ``max_epochs=20`` on 50 labels to
stay fast; the 10-seed benchmark (50 epochs) is in ``benchmarks/RESULTS.md``
(section "Images").
"""

# %%
# The two views of a few digits
# -----------------------------
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.image_augment import StrongImageAugment, WeakImageAugment

X, y = load_digits(return_X_y=True)
images = (X / 16.0).reshape(-1, 8, 8).astype(np.float32)

batch = torch.as_tensor(images[:6, None])
generator = torch.Generator().manual_seed(0)
weak = WeakImageAugment(flip=False).fit(batch, generator)
strong = StrongImageAugment().fit(batch, generator)
rows = {"original": batch, "weak": weak(batch), "strong": strong(batch)}

fig, axes = plt.subplots(3, 6, figsize=(7, 3.6))
for r, (name, views) in enumerate(rows.items()):
    for c in range(6):
        axes[r, c].imshow(views[c, 0].numpy(), cmap="gray_r", vmin=0, vmax=1)
        axes[r, c].set_xticks([])
        axes[r, c].set_yticks([])
    axes[r, 0].set_ylabel(name)
fig.tight_layout()

# %%
# Fit on 50 labels
# ----------------
X_train, X_test, y_train, y_test = train_test_split(
    images, y, test_size=0.3, stratify=y, random_state=0
)
rng = np.random.RandomState(0)
y_partial = np.full_like(y_train, -1)
for c in range(10):
    keep = rng.choice(np.flatnonzero(y_train == c), 5, replace=False)
    y_partial[keep] = c

clf = BoostMISClassifier(
    weak_augment=WeakImageAugment(flip=False), max_epochs=20, random_state=0
).fit(X_train, y_partial)
print(type(clf.net_.module_).__name__, "input shape", clf.input_shape_)
print(f"macro-F1 on held-out images: "
      f"{f1_score(y_test, clf.predict(X_test), average='macro'):.3f}")
