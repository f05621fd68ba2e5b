"""Images to penultimate ResNet-50 features, as the MESCC release was made.

:class:`ResNet50Features` is a scikit-learn transformer for a Pipeline in front
of :class:`~sklearn_boostmis.BoostMISClassifier`. The network is written here
with torchvision's parameter names, so torchvision's ImageNet checkpoint
(``resnet50-*.pth``) loads into it without torchvision being installed; nothing
is ever downloaded.
"""

import glob
import os
import warnings
from numbers import Integral

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._utils import is_int, torch_seeded
from .modules import resolve_device

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Bottleneck(nn.Module):
    """torchvision's ResNet-50 bottleneck block (stride on the 3x3 conv)."""

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False),
                nn.BatchNorm2d(planes * 4),
            )

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet50Backbone(nn.Module):
    """ResNet-50 up to global average pooling: ``forward(x) -> (N, 2048)``."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for i, (planes, blocks, stride) in enumerate(
            [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], start=1
        ):
            layer = []
            for b in range(blocks):
                layer.append(Bottleneck(inplanes, planes, stride if b == 0 else 1))
                inplanes = planes * 4
            setattr(self, f"layer{i}", nn.Sequential(*layer))

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def _torchvision_checkpoint():
    pattern = os.path.join(torch.hub.get_dir(), "checkpoints", "resnet50-*.pth")
    found = sorted(glob.glob(pattern))
    if not found:
        raise FileNotFoundError(
            f"no torchvision ResNet-50 checkpoint in the cache ({pattern}); pass "
            "weights=PATH to a local file (nothing is downloaded)"
        )
    return found[-1]


def load_state_dict(path):
    """Weights from a ``.pth`` (loaded with ``weights_only=True``) or
    ``.safetensors`` file; the classifier ``fc.*`` entries are dropped."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


class ResNet50Features(TransformerMixin, BaseEstimator):
    """Turn images into the 2048-d penultimate ResNet-50 features.

    Images ``(N, H, W)`` or ``(N, C, H, W)`` with one or three channels (one
    channel is repeated to three) are resized to ``image_size``, normalised
    with the ImageNet statistics, as for the MESCC release, then passed
    through the backbone in eval mode.

    The network expects pixel values in [0, 1]: float images are used as
    given, uint8 images are divided by 255 (as torchvision's ``ToTensor``),
    other integer images (e.g. 16-bit MRI), whose range is not known, are
    refused. Float images more than 0.5 outside [0, 1] (standardised ones,
    which would be normalised twice) raise a warning.

    Parameters
    ----------
    weights : None, "torchvision" or path, default="torchvision"
        ``"torchvision"``: the ImageNet checkpoint in torchvision's cache
        (``torch.hub.get_dir()/checkpoints/resnet50-*.pth``); a path: a
        ``.pth`` or ``.safetensors`` state dict with torchvision's names;
        None: random weights (for tests; the features carry no meaning).
    image_size : int or tuple of (int, int), default=224
        Side of the square images fed to the network, or their
        ``(height, width)``.
    batch_size : int, default=64
        Images per forward pass (changes memory use, not the features).
    device : str or torch.device, default="auto"
        ``"auto"``: CUDA when available, else the CPU.
    random_state : int, RandomState instance or None, default=0
        Seeds the random initialisation used when ``weights=None``.

    Examples
    --------
    >>> import numpy as np
    >>> features = ResNet50Features(weights=None, image_size=32)
    >>> features.fit_transform(np.zeros((2, 16, 16), dtype=np.float32)).shape
    (2, 2048)
    """

    _parameter_constraints: dict = {
        "weights": [None, str, os.PathLike],
        # a tuple is checked to be a (height, width) pair in _image_size
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        weights="torchvision",
        image_size=224,
        batch_size=64,
        device="auto",
        random_state=0,
    ):
        self.weights = weights
        self.image_size = image_size
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Build the backbone and load its weights (``X`` is not used)."""
        self._image_size()
        seed = self.random_state
        if not isinstance(seed, Integral):
            seed = check_random_state(seed).randint(np.iinfo(np.int32).max)
        with torch_seeded(seed):
            backbone = ResNet50Backbone()
        if self.weights is None:
            warnings.warn(
                "ResNet50Features(weights=None) uses random weights: the features "
                "are not ImageNet features",
                UserWarning,
                stacklevel=3,  # past fit's _fit_context wrapper, at the caller
            )
        else:
            path = self.weights
            if path == "torchvision":
                path = _torchvision_checkpoint()
            if not os.path.exists(path):
                raise FileNotFoundError(f"ResNet-50 weights not found: {path}")
            backbone.load_state_dict(load_state_dict(path))
        self.device_ = resolve_device(self.device)
        self.backbone_ = backbone.to(self.device_).eval()
        return self

    def _image_size(self):
        """``image_size`` as ``(height, width)``."""
        size = self.image_size
        if _is_side(size):
            return (int(size), int(size))
        if not (
            isinstance(size, tuple) and len(size) == 2 and all(map(_is_side, size))
        ):
            raise InvalidParameterError(
                "The 'image_size' parameter of ResNet50Features must be an int "
                "in the range [1, inf) or a pair (height, width) of such ints. "
                f"Got {size!r} instead."
            )
        return tuple(int(s) for s in size)

    def _prepare(self, x):
        """Resize a batch ``(n, 1 or 3, H, W)`` in [0, 1] and normalise it."""
        size = self._image_size()
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        if x.shape[1] == 1:  # after resizing: one channel resized, not three
            x = x.expand(-1, 3, -1, -1)
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def transform(self, X):
        """Features of shape ``(N, 2048)`` (float32)."""
        self._validate_params()  # batch_size and image_size are used here
        check_is_fitted(self, "backbone_")
        X = _check_images(np.asarray(X))
        out = []
        with torch.no_grad():
            for start in range(0, len(X), self.batch_size):
                x = torch.as_tensor(X[start : start + self.batch_size])
                x = self._prepare(x.to(self.device_))
                out.append(self.backbone_(x).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 2048), np.float32)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags


def _check_images(X):
    """``X`` as float32 ``(N, 1 or 3, H, W)`` in [0, 1]; see ResNet50Features."""
    if X.ndim == 3:
        X = X[:, None]
    if X.ndim != 4 or X.shape[1] not in (1, 3):
        hint = ""
        if X.ndim == 4 and X.shape[-1] in (1, 3):
            hint = (
                ": X looks channels-last (n_samples, height, width, channels); "
                "if so, pass np.moveaxis(X, -1, 1)"
            )
        raise ValueError(
            "images must be (N, H, W), (N, 1, H, W) or (N, 3, H, W); got X of "
            f"shape {tuple(X.shape)}{hint}"
        )
    if X.dtype == np.uint8:
        return X.astype(np.float32) / np.float32(255)  # 8-bit pixels, as ToTensor
    if X.dtype.kind in "ui":
        raise ValueError(
            f"images of dtype {X.dtype} have no known value range: convert them "
            "to float in [0, 1] first (e.g. divide by the image's maximum or by "
            "the scanner's range)"
        )
    X = X.astype(np.float32)
    if not np.isfinite(X).all():
        raise ValueError("Input X contains NaN or infinity.")
    # a margin for interpolation overshoot; standardised images fall outside
    if X.size and (X.max() > 1.5 or X.min() < -0.5):
        warnings.warn(
            f"ResNet50Features expects pixel values in [0, 1] (ImageNet "
            f"normalisation is applied afterwards); X has values in "
            f"[{X.min():.3g}, {X.max():.3g}]",
            UserWarning,
            stacklevel=4,  # past transform and sklearn's set_output wrapper
        )
    return X


def _is_side(value):
    """An image side: a positive int."""
    return is_int(value) and value >= 1
