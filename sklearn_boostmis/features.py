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

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .modules import resolve_device

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Bottleneck(nn.Module):
    """torchvision's ResNet-50 bottleneck block (stride on the 3x3 conv)."""

    expansion = 4

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

    Images ``(N, H, W)`` or ``(N, C, H, W)`` with values in [0, 1] (integer
    images, e.g. uint8 in 0..255, are divided by 255; one channel is repeated
    to three) are resized to ``image_size`` and normalised
    with the ImageNet statistics, as for the MESCC release, then passed
    through the backbone in eval mode.

    Parameters
    ----------
    weights : None, "torchvision" or path, default="torchvision"
        ``"torchvision"``: the ImageNet checkpoint in torchvision's cache
        (``torch.hub.get_dir()/checkpoints/resnet50-*.pth``); a path: a
        ``.pth`` or ``.safetensors`` state dict with torchvision's names;
        None: random weights (for tests; the features carry no meaning).
    image_size : int, default=224
    batch_size : int, default=64
    device : str, default="auto"
    random_state : int, default=0
        Seeds the random initialisation used when ``weights=None``.

    Examples
    --------
    >>> import numpy as np
    >>> features = ResNet50Features(weights=None, image_size=32)
    >>> features.fit_transform(np.zeros((2, 16, 16), dtype=np.float32)).shape
    (2, 2048)
    """

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

    def fit(self, X=None, y=None):
        """Build the backbone and load its weights (``X`` is not used)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            backbone = ResNet50Backbone()
        if self.weights is None:
            warnings.warn(
                "ResNet50Features(weights=None) uses random weights: the features "
                "are not ImageNet features",
                UserWarning,
                stacklevel=2,
            )
        else:
            path = (
                _torchvision_checkpoint()
                if self.weights == "torchvision"
                else self.weights
            )
            if not os.path.exists(path):
                raise FileNotFoundError(f"ResNet-50 weights not found: {path}")
            backbone.load_state_dict(load_state_dict(path))
        self.device_ = resolve_device(self.device)
        self.backbone_ = backbone.to(self.device_).eval()
        return self

    def _prepare(self, x):
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(
                "images must be (N, H, W), (N, 1, H, W) or (N, 3, H, W); got "
                f"shape {tuple(x.shape)}"
            )
        size = (self.image_size, self.image_size)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        if x.shape[1] == 1:  # after resizing: one channel resized, not three
            x = x.expand(-1, 3, -1, -1)
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    def transform(self, X):
        """Features of shape ``(N, 2048)`` (float32)."""
        check_is_fitted(self, "backbone_")
        X = np.asarray(X)
        scale = 1 / 255 if X.dtype.kind in "ui" else 1  # 8-bit pixels, as ToTensor
        X = X.astype(np.float32) * np.float32(scale)
        if not np.isfinite(X).all():
            raise ValueError("Input X contains NaN or infinity.")
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
