"""BoostMIS on images: scikit-learn's digits as 8x8 images, and augmentation speed.

Quality: digits as (N, 8, 8) images with pixels / 16 in [0, 1]; 30% held out
(stratified), 50 labels (5 per class) in the training split; for each seed,
every method sees the same split:

- ``BoostMIS (images)``: ``BoostMISClassifier(max_epochs=E)`` on the images, so
  ``module=None`` picks :class:`~sklearn_boostmis.cnn.SmallCNN` and the default
  image augmentations (weak flip + pad-and-crop, strong RandAugment + Cutout);
- the same with ``weak_augment=WeakImageAugment(flip=False)``: digits are not
  mirror-symmetric, so a horizontal flip is not label-preserving for them (a
  user-level choice for orientation-dependent images, not a library default);
- ``LabelSpreading (pixels)``: ``LabelSpreading(kernel="knn", n_neighbors=7)``
  on the 64 pixels in [0, 1];
- ``BoostMIS (flattened)``: ``BoostMISClassifier()`` at its defaults (MLP,
  feature-noise augmentations) on the standardised 64 pixels.

Macro-F1 and accuracy on the held-out rows, mean +- std over the seeds.

Throughput: images/s of ``WeakImageAugment`` and ``StrongImageAugment`` on a
4096x1x8x8 and a 512x3x32x32 batch (CPU, and CUDA when available), the strong
view with both of its strategies side by side (each operation on the rows that
drew it, the CPU default; every operation on the whole batch selected by masks,
the GPU default, which never waits for the host), next to the
training throughput of the image fits: ``steps * B * (1 + 2 mu) / fit time``
(each step runs the labeled batch and two views of ``mu * B`` unlabeled rows),
and the pool rows/s of a query's scoring with and without reusing the
representations (``query_throughput``).

Usage: ``python benchmarks/images.py [--seeds 3] [--max-epochs 50] [--write]``.
"""

import argparse
import sys
import time

import numpy as np
import torch
from _common import (
    fit_and_score,
    machine_info,
    markdown_table,
    paired_against,
    write_section,
)
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.image_augment import StrongImageAugment, WeakImageAugment
from sklearn_boostmis.query import adversarial_instability

N_PER_CLASS = 5


def split(seed):
    """Images in [0, 1], their standardised flattening, labels, one split."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=seed
    )
    rng = np.random.RandomState(seed)
    y_partial = np.full_like(y_train, -1)
    for c in np.unique(y_train):
        keep = rng.choice(np.flatnonzero(y_train == c), N_PER_CLASS, replace=False)
        y_partial[keep] = y_train[keep]
    scaler = StandardScaler().fit(X_train)
    return {
        "images": (X_train.reshape(-1, 8, 8), X_test.reshape(-1, 8, 8)),
        "pixels": (X_train, X_test),
        "standardised": (
            scaler.transform(X_train).astype(np.float32),
            scaler.transform(X_test).astype(np.float32),
        ),
        "y": (y_partial, y_test),
    }


def methods(seed, max_epochs):
    return [
        (
            f"BoostMIS (images, SmallCNN, {max_epochs} epochs)",
            "images",
            BoostMISClassifier(max_epochs=max_epochs, random_state=seed),
        ),
        (
            f"BoostMIS (images, SmallCNN, {max_epochs} epochs, weak without flip)",
            "images",
            BoostMISClassifier(
                max_epochs=max_epochs,
                weak_augment=WeakImageAugment(flip=False),
                random_state=seed,
            ),
        ),
        (
            "LabelSpreading (knn, 7; pixels)",
            "pixels",
            LabelSpreading(kernel="knn", n_neighbors=7),
        ),
        (
            "BoostMIS (flattened, standardised, MLP, defaults)",
            "standardised",
            BoostMISClassifier(random_state=seed),
        ),
    ]


def train_throughput(clf, seconds):
    steps = sum(len(epoch["batches"]) for epoch in clf.history_)
    return steps * clf.batch_size * (1 + 2 * clf.mu) / seconds


def run_quality(seeds, max_epochs):
    scores, speeds = {}, []
    for seed in range(seeds):
        data = split(seed)
        y_partial, y_test = data["y"]
        for name, view, model in methods(seed, max_epochs):
            X_train, X_test = data[view]
            f1, acc, seconds = fit_and_score(model, X_train, y_partial, X_test, y_test)
            scores.setdefault(name, []).append((f1, acc, seconds))
            if view == "images" and "without flip" not in name:
                speeds.append(train_throughput(model, seconds))
            print(f"seed {seed} {name}: F1 {f1:.3f} ({seconds:.1f} s)", file=sys.stderr)
    rows = []
    for name, values in scores.items():
        f1, acc, sec = np.array(values).T
        rows.append(
            [
                name,
                f"{f1.mean():.3f} +- {f1.std():.3f}",
                f"{acc.mean():.3f} +- {acc.std():.3f}",
                f"{sec.mean():.1f}",
            ]
        )
    f1 = {name: [v[0] for v in values] for name, values in scores.items()}
    return rows, f1, float(np.mean(speeds))


class _StrongOnSelectedRows(StrongImageAugment):
    """The CPU strategy on any device: each operation on the rows that drew it."""

    def _apply_round(self, z, op, mag, sign, axis):
        return self._round_on_selected_rows(z, op, mag, sign, axis)


class _StrongWithMasks(StrongImageAugment):
    """The GPU strategy on any device: every operation on the whole batch."""

    def _apply_round(self, z, op, mag, sign, axis):
        return self._round_with_masks(z, op, mag, sign, axis)


AUGMENTATIONS = [
    ("WeakImageAugment", WeakImageAugment),
    ("StrongImageAugment, ops on their rows (CPU default)", _StrongOnSelectedRows),
    ("StrongImageAugment, whole batch + masks (GPU default)", _StrongWithMasks),
]


def augmentation_throughput(device, repeats=5):
    rows = []
    for shape in [(4096, 1, 8, 8), (512, 3, 32, 32)]:
        X = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(device)
        for name, cls in AUGMENTATIONS:
            augment = cls().fit(X, torch.Generator(device).manual_seed(0))
            augment(X)  # warm-up
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(repeats):
                augment(X)
            if device == "cuda":
                torch.cuda.synchronize()
            seconds = (time.perf_counter() - start) / repeats
            rows.append(
                [name, "x".join(map(str, shape)), device, f"{shape[0] / seconds:,.0f}"]
            )
    return rows


def query_throughput(device, n_pool=3000, repeats=3):
    """Images/s of the AUS scoring of a query on a 3x32x32 pool (SmallCNN).

    Both rows run the scoring pass (probabilities and ``Z = embed(X)`` of every
    row) and then AUS on every row (after a short fit all rows are
    candidates): on ``Z`` as the sampler does (``embedded=True``), or on the
    inputs, which embeds every row a second time (the sampler before it
    reused ``Z``). Alternated ``repeats`` times; the median is reported.
    """
    rng = np.random.RandomState(0)
    X = rng.rand(n_pool, 3, 32, 32).astype(np.float32)
    y = np.full(n_pool, -1)
    y[:40] = np.arange(40) % 4
    clf = BoostMISClassifier(max_epochs=1, random_state=0, device=device).fit(X, y)
    teacher = clf.teacher_
    ways = {"AUS on the scoring pass's Z (sampler)": True, "AUS on the inputs": False}
    seconds = {name: [] for name in ways}
    for _ in range(repeats):
        for name, embedded in ways.items():
            start = time.perf_counter()
            _, Z, X_t = clf.teacher_outputs(X)
            adversarial_instability(
                teacher,
                Z if embedded else X_t,
                embedded=embedded,
                generator=torch.Generator(device).manual_seed(0),
            )
            if device == "cuda":
                torch.cuda.synchronize()
            seconds[name].append(time.perf_counter() - start)
    return [
        [
            f"query scoring, {name}",
            f"pool {n_pool}x3x32x32",
            device,
            f"{n_pool / np.median(seconds[name]):,.0f}",
        ]
        for name in ways
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-epochs", type=int, default=50)
    parser.add_argument("--write", action="store_true", help="update RESULTS.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    rows, f1, train_speed = run_quality(args.seeds, args.max_epochs)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    speed_rows = [row for device in devices for row in augmentation_throughput(device)]
    speed_rows += [row for device in devices for row in query_throughput(device)]
    speed_rows.append(
        [
            "training (BoostMIS images, B=64, mu=2)",
            "64+2x128 per step, 1x8x8",
            "cpu",
            f"{train_speed:,.0f}",
        ]
    )
    image_names = [row[0] for row in rows[:2]]
    others = [name for name in f1 if name not in image_names]
    verdicts = []
    for image_name in image_names:
        verdicts.append(
            f"{image_name} (macro-F1 {np.mean(f1[image_name]):.3f}) minus each "
            "method on flat pixels, "
            + paired_against(f1[image_name], {name: f1[name] for name in others})
        )
    body = "\n\n".join(
        [
            f"## Images: digits as 8x8 images, 50 labels ({args.seeds} seeds)",
            f"`python benchmarks/images.py --seeds {args.seeds} --max-epochs "
            f"{args.max_epochs}`; pixels / 16, 30% held out, 5 labels per class; "
            f"torch threads = 1. {machine_info()}",
            markdown_table(
                ["method", "macro-F1", "accuracy", "fit s"],
                rows,
            ),
            "\n\n".join(verdicts),
            "Throughput (images/s; training counts every forward view: "
            "steps x B x (1 + 2 mu) / fit time, CPU, 1 thread):",
            markdown_table(["what", "batch", "device", "images/s"], speed_rows),
        ]
    )
    print(body)
    if args.write:
        write_section("images", body)


if __name__ == "__main__":
    main()
