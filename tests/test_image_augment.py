import pickle

import pytest
import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_boostmis import image_augment
from sklearn_boostmis.augment import default_augmentations
from sklearn_boostmis.image_augment import (
    STRONG_OPS,
    StrongImageAugment,
    WeakImageAugment,
    autocontrast,
    equalize,
    posterize,
    random_translate,
    smooth,
    solarize,
)


def _images(n=32, c=1, size=8, seed=0, low=0.0, high=1.0):
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(n, c, size, size, generator=g)


def _fit(augment, X, seed=0):
    return augment.fit(X, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cls", [WeakImageAugment, StrongImageAugment])
@pytest.mark.parametrize("shape", [(5, 1, 8, 8), (3, 3, 32, 32), (2, 2, 12, 20)])
def test_shape_dtype_and_range(cls, shape):
    X = torch.rand(*shape, generator=torch.Generator().manual_seed(1)) * 7 - 3
    out = _fit(cls(), X)(X)
    assert out.shape == X.shape and out.dtype == X.dtype
    low = X.amin(dim=(0, 2, 3)).view(1, -1, 1, 1)
    high = X.amax(dim=(0, 2, 3)).view(1, -1, 1, 1)
    assert torch.all(out >= low - 1e-5) and torch.all(out <= high + 1e-5)


def test_strong_changes_images_and_uses_all_ops():
    X = _images(256, size=16)
    out = _fit(StrongImageAugment(), X)(X)
    changed = (out - X).abs().flatten(1).amax(dim=1) > 1e-6
    assert changed.float().mean() > 0.9


@pytest.mark.parametrize("cls", [WeakImageAugment, StrongImageAugment])
def test_determinism_by_generator_seed(cls):
    X = _images(64, c=3, size=16)
    a = _fit(cls(), X, seed=3)(X)
    b = _fit(cls(), X, seed=3)(X)
    c = _fit(cls(), X, seed=4)(X)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # successive calls draw new views
    aug = _fit(cls(), X, seed=3)
    assert not torch.equal(aug(X), aug(X))


def test_flip_really_flips():
    X = torch.arange(64.0).view(1, 1, 8, 8).repeat(4, 1, 1, 1)  # asymmetric
    out = _fit(WeakImageAugment(translate=0, flip_p=1.0), X)(X)
    assert torch.equal(out, X.flip(-1))
    out = _fit(WeakImageAugment(translate=0, flip_p=0.0), X)(X)
    assert torch.equal(out, X)
    out = _fit(WeakImageAugment(flip=False, translate=0), X)(X)
    assert torch.equal(out, X)
    # with p = 0.5 both happen, per sample
    X = torch.arange(64.0).view(1, 1, 8, 8).repeat(200, 1, 1, 1)
    out = _fit(WeakImageAugment(translate=0), X)(X)
    flipped = (out == X.flip(-1)).flatten(1).all(dim=1)
    kept = (out == X).flatten(1).all(dim=1)
    assert torch.all(flipped ^ kept)
    assert 60 < int(flipped.sum()) < 140


def test_translation_moves_by_whole_pixels():
    size, pad = 32, 4  # translate=0.125 of 32 px = FixMatch's 4 px
    X = torch.zeros(300, 1, size, size)
    X[:, :, 12:20, 12:20] = torch.arange(64.0).view(8, 8) + 1  # away from borders
    out = _fit(WeakImageAugment(flip=False), X)(X)
    shifts = set()
    for image in out[:, 0]:
        found = None
        for dy in range(-pad, pad + 1):
            for dx in range(-pad, pad + 1):
                if torch.equal(image, torch.roll(X[0, 0], (dy, dx), dims=(0, 1))):
                    found = (dy, dx)
        assert found is not None, "not a whole-pixel shift of the content"
        shifts.add(found)
    assert len(shifts) > 40  # many of the 81 shifts occur
    assert max(abs(d) for s in shifts for d in s) == pad


def test_translation_pad_scales_with_size_and_reflects():
    X = torch.arange(64.0).view(1, 1, 8, 8).repeat(100, 1, 1, 1)
    out = random_translate(X, 1, 1, torch.Generator().manual_seed(0))
    # reflect padding: every value comes from the image, no zeros introduced
    assert set(out.unique().tolist()) <= set(X.unique().tolist())
    # 0.125 * 8 = 1 pixel: the centre 6x6 stays within one pixel of itself
    centre = X[0, 0, 1:7, 1:7]
    for image in out[:, 0]:
        assert any(
            torch.equal(image[1 + dy : 7 + dy, 1 + dx : 7 + dx], centre)
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        )


def test_cutout_fills_a_square_with_the_mean():
    fit_on = _images(64, size=16)  # fitted mean ~0.5
    X = torch.full((200, 1, 16, 16), 0.9)
    augment = _fit(StrongImageAugment(n_ops=0, cutout=0.5), fit_on)
    out = augment(X)
    mean = fit_on.mean()
    for image in out[:, 0]:
        changed = image != 0.9
        assert changed.any()
        assert torch.allclose(image[changed], mean.expand(int(changed.sum())))
        rows = changed.any(dim=1).nonzero()
        cols = changed.any(dim=0).nonzero()
        height = int(rows.max() - rows.min() + 1)
        width = int(cols.max() - cols.min() + 1)
        assert height * width == int(changed.sum())  # a (border-clipped) square
        assert max(height, width) <= 8  # at most half the side
    # the full-size (unclipped) squares reach half the side
    sides = (out[:, 0] != 0.9).sum(dim=(1, 2)).float().sqrt()
    assert sides.max() == 8


def test_no_cutout_and_no_ops_is_identity():
    X = _images(8)
    assert torch.equal(_fit(StrongImageAugment(n_ops=0, cutout=0), X)(X), X)


def test_arbitrary_value_range_is_normalised():
    """Solarize on raw 0..255 pixels and on [0, 1] pixels give the same view."""
    X = _images(64, size=8)
    a = _fit(StrongImageAugment(), X)(X)
    b = _fit(StrongImageAugment(), X * 255 - 100)(X * 255 - 100)
    assert torch.allclose((b + 100) / 255, a, atol=1e-4)


def test_pointwise_ops():
    z = torch.tensor([0.2, 0.4, 0.6]).view(1, 1, 1, 3)
    assert torch.allclose(
        autocontrast(z), torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3)
    )
    constant = torch.full((1, 1, 2, 2), 0.3)
    assert torch.equal(autocontrast(constant), constant)
    assert torch.equal(equalize(constant), constant)
    assert torch.allclose(
        solarize(z, torch.tensor([0.5])), torch.tensor([0.2, 0.4, 0.4]).view(1, 1, 1, 3)
    )
    out = posterize(torch.tensor([0.6, 1.0]).view(1, 1, 1, 2), torch.tensor([1.0]))
    assert torch.allclose(out.flatten(), torch.tensor([128 / 255, 128 / 255]))
    # equalize spreads a skewed histogram over the whole range
    skewed = torch.tensor([0.0, 0.01, 0.02, 0.03, 1.0]).view(1, 1, 1, 5)
    eq = equalize(skewed).flatten()
    assert eq[0] == 0 and eq[-1] == 1 and eq[1] > 0.2


def test_equalize_takes_a_channels_last_batch():
    z = _images(n=4, c=3)
    channels_last = z.to(memory_format=torch.channels_last)
    assert torch.equal(equalize(channels_last), equalize(z))


def test_smooth_matches_pil_kernel_inside_and_keeps_border():
    z = torch.rand(3, 2, 9, 7, generator=torch.Generator().manual_seed(0))
    kernel = torch.ones(3, 3)
    kernel[1, 1] = 5
    kernel = (kernel / 13).expand(2, 1, 3, 3)
    reference = F.conv2d(z, kernel, padding=1, groups=2)
    out = smooth(z)
    assert torch.allclose(out[..., 1:-1, 1:-1], reference[..., 1:-1, 1:-1], atol=1e-6)
    assert torch.equal(out[..., 0, :], z[..., 0, :])
    assert torch.equal(out[..., :, -1], z[..., :, -1])


@pytest.mark.parametrize("name", ["rotate", "shear", "translate"])
def test_affine_ops_keep_content_inside(name, monkeypatch):
    """Each affine op, forced, moves a centred square but keeps most of it."""
    op_id = STRONG_OPS.index(name)
    X = torch.zeros(32, 1, 32, 32)
    X[:, :, 8:24, 8:24] = 1
    augment = _fit(StrongImageAugment(n_ops=1, cutout=0), X)
    real_randint = torch.randint
    monkeypatch.setattr(
        image_augment.torch,
        "randint",
        lambda low, high, size, **kw: torch.full(size, op_id, device=kw.get("device")),
    )
    out = augment(X)
    monkeypatch.setattr(image_augment.torch, "randint", real_randint)
    moved = (out != X).flatten(1).any(dim=1)
    assert moved.float().mean() > 0.5
    mass = out.sum(dim=(1, 2, 3))
    assert torch.all(mass > 0.5 * 256) and torch.all(mass < 1.6 * 256)


def test_no_per_sample_calls(monkeypatch):
    """grid_sample runs at most once per round, whatever the batch size."""
    calls = []
    real = F.grid_sample

    def counting(*args, **kwargs):
        calls.append(args[0].shape[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(image_augment.F, "grid_sample", counting)
    for n in (4, 256):
        calls.clear()
        X = _images(n)
        _fit(StrongImageAugment(n_ops=3), X)(X)
        assert len(calls) <= 3
    # 256 images draw an affine op (3 of 11) in every round, on ~70 rows
    assert len(calls) == 3 and all(0 < rows < 256 for rows in calls)


@pytest.mark.parametrize("c, size", [(1, 8), (3, 16)])
def test_selected_rows_and_masked_rounds_agree(c, size, monkeypatch):
    """The CPU path (ops on their rows) gives the GPU path's (masks) images."""
    X = _images(200, c=c, size=size, low=-1.0, high=3.0)
    selected = _fit(StrongImageAugment(fill=0.3), X, seed=5)(X)
    monkeypatch.setattr(
        StrongImageAugment,
        "_round_on_selected_rows",
        StrongImageAugment._round_with_masks,
    )
    masked = _fit(StrongImageAugment(fill=0.3), X, seed=5)(X)
    assert torch.equal(selected, masked)
    assert not torch.equal(selected, X)


def test_unfitted_and_wrong_shape():
    with pytest.raises(RuntimeError, match="not fitted"):
        WeakImageAugment()(_images(2))
    with pytest.raises(ValueError, match="images"):
        WeakImageAugment().fit(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="batch of images"):
        _fit(StrongImageAugment(), _images(2))(torch.zeros(2, 8, 8))


@pytest.mark.parametrize(
    "cls, params",
    [
        (WeakImageAugment, {"translate": -0.5}),
        (WeakImageAugment, {"translate": 1.5}),
        (WeakImageAugment, {"flip_p": 2}),
        (WeakImageAugment, {"flip": "yes"}),
        (StrongImageAugment, {"fill": "x"}),
        (StrongImageAugment, {"fill": 2.0}),
        (StrongImageAugment, {"magnitude": -1}),
        (StrongImageAugment, {"magnitude": 0}),
        (StrongImageAugment, {"n_ops": -1}),
        (StrongImageAugment, {"n_ops": 1.5}),
        (StrongImageAugment, {"cutout": 1.5}),
        (StrongImageAugment, {"flip_and_crop": "no"}),
    ],
)
def test_invalid_parameters_are_refused_in_fit(cls, params):
    augment = cls(**params)  # construction stores, fit validates
    (name,) = params
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        _fit(augment, _images(2))


@pytest.mark.parametrize("cls", [WeakImageAugment, StrongImageAugment])
def test_calls_need_the_fitted_channel_count(cls):
    augment = _fit(cls(), _images(8, c=1))
    with pytest.raises(ValueError, match=r"with 1 channel.*\(2, 3, 8, 8\)"):
        augment(_images(2, c=3))
    assert augment(_images(2, c=1, size=12)).shape == (2, 1, 12, 12)  # any size


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_keeps_its_dtype(dtype):
    X = _images(64, c=2, low=-1.0, high=3.0).to(dtype)
    out = _fit(StrongImageAugment(flip_and_crop=True), X)(X)
    assert out.dtype == dtype
    # augmented in float32: the float32 view of the same images, rounded
    expected = _fit(StrongImageAugment(flip_and_crop=True), X.float())(X.float())
    assert torch.equal(out, expected.to(dtype))


def test_default_augmentations_for_images_and_pickle():
    weak, strong = default_augmentations(4)
    assert isinstance(weak, WeakImageAugment) and isinstance(strong, StrongImageAugment)
    X = _images(8)
    strong = pickle.loads(pickle.dumps(_fit(strong, X)))
    assert strong(X).shape == X.shape


@pytest.mark.cuda
def test_cuda_device_placement_and_determinism():
    X = _images(64, c=3, size=32).cuda()
    for cls in (WeakImageAugment, StrongImageAugment):
        a = cls().fit(X, torch.Generator("cuda").manual_seed(0))(X)
        b = cls().fit(X, torch.Generator("cuda").manual_seed(0))(X)
        assert a.device.type == "cuda"
        assert torch.equal(a, b)
