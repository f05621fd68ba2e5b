import warnings

import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_boostmis import BoostMISClassifier
from sklearn_boostmis.features import ResNet50Backbone, ResNet50Features

pytestmark = pytest.mark.filterwarnings("ignore:ResNet50Features.weights=None")


def images(n=4, channels=1, side=16, seed=0):
    return np.random.RandomState(seed).rand(n, channels, side, side).astype(np.float32)


def test_shape_matches_torchvision_resnet50():
    backbone = ResNet50Backbone()
    # torchvision's resnet50 has 25,557,032 parameters, 2,049,000 of them in fc
    assert sum(p.numel() for p in backbone.parameters()) == 25_557_032 - 2_049_000
    assert "layer4.2.bn3.running_var" in backbone.state_dict()
    assert "layer3.0.downsample.1.weight" in backbone.state_dict()


def test_features_are_2048d_repeatable_and_batch_independent():
    X = images(5, channels=1)
    first = ResNet50Features(weights=None, image_size=32, batch_size=2).fit_transform(X)
    again = ResNet50Features(weights=None, image_size=32, batch_size=5).fit_transform(X)
    assert first.shape == (5, 2048) and first.dtype == np.float32
    np.testing.assert_allclose(first, again, rtol=1e-4, atol=1e-5)
    assert (first >= 0).all()  # after ReLU and average pooling
    rgb = np.repeat(X, 3, axis=1)
    np.testing.assert_allclose(
        ResNet50Features(weights=None, image_size=32).fit_transform(rgb),
        first,
        rtol=1e-4,
        atol=1e-5,
    )


def test_integer_images_are_read_as_8_bit_pixels():
    pixels = (images(3, channels=1) * 255).round().astype(np.uint8)
    features = ResNet50Features(weights=None, image_size=32).fit(pixels)
    np.testing.assert_allclose(
        features.transform(pixels),
        features.transform(pixels.astype(np.float32) / 255),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.fixture(scope="module")
def small():
    return ResNet50Features(weights=None, image_size=8).fit()


def test_only_8_bit_integer_images_have_a_known_range(small):
    for dtype in (np.uint16, np.int16, np.int64):
        with pytest.raises(ValueError, match=r"dtype .* to float in \[0, 1\]"):
            small.transform((images(2) * 1000).astype(dtype))
    with pytest.warns(UserWarning, match=r"expects pixel values in \[0, 1\]"):
        small.transform(images(2) * 255)
    with pytest.warns(UserWarning, match="expects pixel values"):
        small.transform(images(2) - 0.6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small.transform(images(2) * 1.4 - 0.2)  # a small overshoot is tolerated


@pytest.mark.parametrize(
    "params, name",
    [
        ({"batch_size": -1}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"image_size": 0}, "image_size"),
        ({"image_size": (32, 0)}, "image_size"),
        ({"image_size": (32,)}, "image_size"),
        ({"image_size": "big"}, "image_size"),
        ({"image_size": True}, "image_size"),
        ({"weights": 3}, "weights"),
        ({"device": 0}, "device"),
        ({"random_state": "x"}, "random_state"),
    ],
)
def test_invalid_parameters_are_refused_before_any_work(params, name):
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
        ResNet50Features(**{"weights": None, **params}).fit()


def test_parameters_are_checked_in_transform_too():
    features = ResNet50Features(weights=None, image_size=8).fit()
    with pytest.raises(InvalidParameterError, match="batch_size"):
        features.set_params(batch_size=0).transform(images(2))


def test_image_size_can_be_a_height_width_pair():
    features = ResNet50Features(weights=None, image_size=(8, 12)).fit()
    assert features._prepare(torch.as_tensor(images(2))).shape == (2, 3, 8, 12)
    assert features.transform(images(3)).shape == (3, 2048)


def test_shape_error_names_the_whole_of_X(small):
    features = ResNet50Features(weights=None, image_size=8, batch_size=3).fit()
    with pytest.raises(ValueError, match=r"shape \(4, 256\)"):
        features.transform(np.zeros((4, 256)))
    with pytest.raises(ValueError, match=r"\(4, 8, 8, 3\).*channels-last.*moveaxis"):
        small.transform(np.zeros((4, 8, 8, 3)))


def test_loads_a_torchvision_style_checkpoint(tmp_path):
    source = ResNet50Backbone()
    with torch.no_grad():
        for p in source.parameters():
            p.add_(0.01)
    state = dict(source.state_dict())
    state["fc.weight"] = torch.zeros(1000, 2048)  # the classifier is ignored
    state["fc.bias"] = torch.zeros(1000)
    torch.save(state, tmp_path / "resnet50-test.pth")
    loaded = ResNet50Features(
        weights=str(tmp_path / "resnet50-test.pth"), image_size=32
    )
    random = ResNet50Features(weights=None, image_size=32)
    X = images(2)
    out = loaded.fit_transform(X)
    assert not np.allclose(out, random.fit_transform(X))
    x = loaded._prepare(torch.as_tensor(X))
    with torch.no_grad():
        expected = source.eval()(x).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_torchvision_cache_lookup_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        ResNet50Features().fit()
    with pytest.raises(FileNotFoundError, match="not found"):
        ResNet50Features(weights=str(tmp_path / "missing.pth")).fit()


def test_bad_images():
    features = ResNet50Features(weights=None, image_size=32).fit()
    with pytest.raises(ValueError, match="images must be"):
        features.transform(images(2, channels=2))
    bad = images(2)
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        features.transform(bad)


def test_pipeline_images_to_boostmis(digits_data):
    X, y, y_partial = digits_data
    pixels = (X[:120] - X.min()) / (X.max() - X.min())
    pipe = make_pipeline(
        ResNet50Features(weights=None, image_size=32),
        BoostMISClassifier(max_epochs=2, batch_size=16, random_state=0),
    )
    pipe.fit(pixels.reshape(-1, 8, 8), np.where(np.arange(120) < 40, y[:120], -1))
    assert pipe.predict(pixels.reshape(-1, 8, 8)[:7]).shape == (7,)
