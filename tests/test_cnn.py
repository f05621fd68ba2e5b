import re

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits

from sklearn_boostmis import AnnotationLoop, BoostMISClassifier, InformativeQuerySampler
from sklearn_boostmis.cnn import (
    ResNetStyleCNN,
    SmallCNN,
    make_image_module,
)
from sklearn_boostmis.image_augment import StrongImageAugment, WeakImageAugment
from sklearn_boostmis.modules import no_weight_decay_names, supports_embedding

FAST_IMAGES = dict(max_epochs=3, batch_size=16, random_state=0)


@pytest.mark.parametrize(
    "size, n_poolings", [(8, 1), (16, 2), ((12, 20), 1), (32, 3), (64, 4), (4, 0)]
)
def test_small_cnn_shapes(size, n_poolings):
    module = SmallCNN(n_channels=3, n_classes=5, image_size=size).eval()
    h, w = (size, size) if isinstance(size, int) else size
    x = torch.randn(4, 3, h, w, generator=torch.Generator().manual_seed(0))
    z = module.embed(x)
    assert module.n_poolings_ == n_poolings
    assert z.shape == (4, module.embedding_dim)
    assert module(x).shape == (4, 5)
    assert torch.equal(module(x), module.head(module.embed(x)))


def test_small_cnn_width_and_dropout():
    module = SmallCNN(1, 10, 32, width=8, convs_per_stage=1, dropout=0.5)
    assert module.embedding_dim == 32  # 8 -> 16 -> 32 (capped at 4 * width)
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4
    assert isinstance(module.dropout, torch.nn.Dropout)


@pytest.mark.parametrize("size", [96, (80, 120), 32])
def test_resnet_style_shapes(size):
    module = ResNetStyleCNN(n_channels=1, n_classes=3, image_size=size, width=8).eval()
    h, w = (size, size) if isinstance(size, int) else size
    x = torch.randn(2, 1, h, w, generator=torch.Generator().manual_seed(0))
    assert module.embed(x).shape == (2, 64)
    assert torch.equal(module(x), module.head(module.embed(x)))
    assert supports_embedding(module)


def test_resnet_blocks_and_no_weight_decay():
    module = ResNetStyleCNN(3, 2, 128, width=16, blocks=(2, 2, 2, 2))
    assert module.embedding_dim == 128
    names = no_weight_decay_names(module)
    assert "classifier.bias" in names
    assert not any(name.endswith("conv1.weight") for name in names)
    assert any("bn" in name for name in names)


def test_make_image_module():
    cls, kwargs = make_image_module((1, 8, 8), 10)
    assert cls is SmallCNN
    assert kwargs == {"n_channels": 1, "n_classes": 10, "image_size": (8, 8)}
    assert make_image_module((3, 64, 64), 2)[0] is SmallCNN
    cls, kwargs = make_image_module((3, 65, 224), 2)
    assert cls is ResNetStyleCNN and kwargs["image_size"] == (65, 224)
    with pytest.raises(ValueError, match="C, H, W"):
        make_image_module((64,), 2)


# -- the estimator on images ---------------------------------------------------
@pytest.fixture(scope="module")
def digit_images():
    X, y = load_digits(return_X_y=True)
    X = (X[:400] / 16).reshape(-1, 8, 8).astype(np.float32)
    y = y[:400]
    rng = np.random.RandomState(0)
    y_partial = np.full_like(y, -1)
    for c in range(10):
        keep = rng.choice(np.flatnonzero(y == c), 3, replace=False)
        y_partial[keep] = y[keep]
    return X, y, y_partial


@pytest.fixture(scope="module")
def fitted_images(digit_images):
    X, _, y_partial = digit_images
    return BoostMISClassifier(**FAST_IMAGES).fit(X, y_partial)


def test_estimator_picks_small_cnn_and_image_augmentations(fitted_images, digit_images):
    X, y, _ = digit_images
    clf = fitted_images
    assert clf.input_shape_ == (1, 8, 8)
    assert isinstance(clf.net_.module_, SmallCNN)
    assert isinstance(clf.net_.weak_, WeakImageAugment)
    assert isinstance(clf.net_.strong_, StrongImageAugment)
    assert clf.n_iter_ == 3
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    pred = clf.predict(X)
    assert set(pred) <= set(clf.classes_)
    assert (pred == y).mean() > 0.15  # learned something in 3 epochs (chance 0.1)
    # 4-D input of the same shape is accepted too
    np.testing.assert_allclose(clf.predict_proba(X[:, None]), proba, rtol=1e-6)


def test_estimator_embed_head_protocol(fitted_images, digit_images):
    X, _, _ = digit_images
    module = fitted_images.net_.ema_module_.eval()
    x = torch.as_tensor(X[:32, None])
    with torch.no_grad():
        z = module.embed(x)
        assert z.shape == (32, module.embedding_dim)
        assert torch.allclose(module(x), module.head(z))
    assert supports_embedding(module)


def test_estimator_clone_refit_is_identical(fitted_images, digit_images):
    X, _, y_partial = digit_images
    refit = clone(fitted_images).fit(X, y_partial)
    np.testing.assert_array_equal(
        refit.predict_proba(X), fitted_images.predict_proba(X)
    )


def test_estimator_module_params_and_wrong_shape(digit_images):
    X, _, y_partial = digit_images
    clf = BoostMISClassifier(
        max_epochs=1, batch_size=16, random_state=0, module_params={"width": 8}
    ).fit(X, y_partial)
    assert clf.net_.module_.embedding_dim == 16
    with pytest.raises(ValueError, match="shape"):
        clf.predict(np.zeros((2, 10, 10), dtype=np.float32))


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (2, 64), (2, 1, 1, 8, 8)])
def test_wrong_image_shape_names_both_shapes(fitted_images, shape):
    expected = (
        f"X has samples of shape {shape[1:]}, but BoostMISClassifier was fitted on "
        "samples of shape (1, 8, 8) (images:"
    )
    with pytest.raises(ValueError, match=re.escape(expected)):
        fitted_images.predict(np.zeros(shape, dtype=np.float32))


def test_query_sampler_takes_image_pools(fitted_images, digit_images):
    X, _, y_partial = digit_images
    pool = X[y_partial == -1]
    sampler = InformativeQuerySampler(random_state=0)
    picked, scores = sampler(fitted_images, pool, n_instances=6)
    assert len(set(picked.tolist())) == 6 and scores.shape == (6,)
    # (N, H, W) and (N, 1, H, W) are the same pool
    again, _ = sampler(fitted_images, pool[:, None], n_instances=6)
    np.testing.assert_array_equal(picked, again)
    with pytest.raises(ValueError, match="shape"):
        sampler(fitted_images, np.zeros((4, 10, 10), dtype=np.float32), 2)


def test_annotation_loop_on_images(digit_images):
    X, y, y_partial = digit_images
    loop = AnnotationLoop(
        BoostMISClassifier(**FAST_IMAGES),
        oracle=lambda idx: y[idx],
        n_cycles=2,
        budget=3,
        final_fit=False,
    ).fit(X, y_partial)
    first = loop.history_[0]
    assert first["n_labeled"] == 30 and 3 <= first["n_queried"] <= 6
    assert loop.history_[1]["n_labeled"] == 30 + first["n_queried"]
    assert np.all(loop.y_[loop.annotated_indices_] == y[loop.annotated_indices_])


@pytest.mark.cuda
def test_estimator_on_cuda(digit_images):
    X, _, y_partial = digit_images
    clf = BoostMISClassifier(device="cuda", **FAST_IMAGES).fit(X, y_partial)
    assert next(clf.net_.module_.parameters()).device.type == "cuda"
    assert clf.predict(X).shape == (len(X),)


def test_image_module_classes_get_their_sizes_and_channels_last_is_flagged():
    X = np.random.RandomState(0).rand(40, 8, 8).astype(np.float32)
    y = np.r_[[0, 1] * 5, [-1] * 30]
    clf = BoostMISClassifier(module=SmallCNN, max_epochs=1, random_state=0).fit(X, y)
    assert isinstance(clf.net_.module_, SmallCNN)
    with pytest.warns(UserWarning, match="looks channels-last"):
        BoostMISClassifier(max_epochs=1).fit(np.repeat(X[..., None], 3, axis=3), y)
    with pytest.raises(ValueError, match="X has 5 dimensions"):
        BoostMISClassifier(max_epochs=1).fit(X[:, None, None], y)


def test_images_moved_to_channels_first_fit_like_contiguous_ones():
    # the layout that np.moveaxis(X, -1, 1), the channels-last warning's
    # advice, gives: not C-contiguous (equalize's view failed on it)
    hwc = np.random.RandomState(0).rand(48, 8, 8, 3).astype(np.float32)
    y = np.r_[[0, 1] * 8, [-1] * 32]
    moved = np.moveaxis(hwc, -1, 1)
    assert not moved.flags.c_contiguous
    params = dict(max_epochs=2, batch_size=8, random_state=0)
    clf = BoostMISClassifier(**params).fit(moved, y)
    reference = BoostMISClassifier(**params).fit(np.ascontiguousarray(moved), y)
    np.testing.assert_array_equal(
        clf.predict_proba(moved), reference.predict_proba(moved)
    )
