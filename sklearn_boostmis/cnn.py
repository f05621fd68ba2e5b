"""Built-in convolutional networks for images, with the ``embed``/``head`` protocol.

:class:`SmallCNN` is for small images (about 8x8 to 64x64 pixels), and
:class:`ResNetStyleCNN` a compact ResNet-like backbone for larger ones.
:func:`make_image_module` picks one from the shape of a sample; the estimator
calls it when ``module=None`` and ``X`` holds images.
"""

import math

from torch import nn

#: Images whose larger side is at most this many pixels get :class:`SmallCNN`.
SMALL_IMAGE_MAX_SIDE = 64


def _pair(size):
    height, width = (size, size) if isinstance(size, int) else size
    return int(height), int(width)


def _conv_bn_relu(n_in, n_out, stride=1):
    return [
        nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(n_out),
        nn.ReLU(inplace=True),
    ]


class _PooledCNN(nn.Module):
    """Convolutional ``features``, then the part the built-in networks share:
    global average pooling gives the representation (``embed``), dropout and
    one ``Linear`` layer the logits (``head``)."""

    def _end_with_head(self, layers, n_features, n_classes, dropout):
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.embedding_dim = n_features
        self.classifier = nn.Linear(n_features, int(n_classes))

    def embed(self, X):
        """Return the globally average-pooled features, shape (N, embedding_dim)."""
        return self.pool(self.features(X))

    def head(self, Z):
        """Return the logits of the representation ``Z``."""
        return self.classifier(self.dropout(Z))

    def forward(self, X):
        return self.head(self.embed(X))


class SmallCNN(_PooledCNN):
    """Small convolutional network for small images (8x8 to 64x64 pixels).

    Stages of ``convs_per_stage`` blocks ``Conv3x3 -> BatchNorm -> ReLU``, each
    stage but the last followed by 2x2 max pooling. The number of poolings adapts
    to the image size, so the last stage works on maps of about 4x4 pixels
    (8x8 images: one pooling; 32x32: three). The width doubles after each
    pooling, up to ``4 * width``. Global average pooling gives the
    representation that ``embed`` returns; ``head`` is one ``Linear`` layer.

    Parameters
    ----------
    n_channels, n_classes : int
        Number of input channels and of classes (size of the logits).
    image_size : int or (int, int)
        Height and width of the images (only chooses the poolings).
    width : int, default=32
        Channels of the first stage.
    convs_per_stage : int, default=2
        ``Conv -> BN -> ReLU`` blocks per stage.
    dropout : float, default=0.0
        Dropout probability on the pooled representation, before the head.

    Attributes
    ----------
    n_poolings_ : int
        Number of 2x2 max poolings.
    embedding_dim : int
        Size of the representation returned by ``embed``.

    Examples
    --------
    >>> import torch
    >>> module = SmallCNN(n_channels=1, n_classes=10, image_size=8).eval()
    >>> x = torch.zeros(2, 1, 8, 8)
    >>> module.embed(x).shape
    torch.Size([2, 64])
    >>> torch.equal(module(x), module.head(module.embed(x)))
    True
    """

    def __init__(
        self,
        n_channels,
        n_classes,
        image_size,
        width=32,
        convs_per_stage=2,
        dropout=0.0,
    ):
        super().__init__()
        side = min(_pair(image_size))
        self.n_poolings_ = max(0, int(math.floor(math.log2(max(side, 1) / 4))))
        layers = []
        n_in, n_out = int(n_channels), int(width)
        for stage in range(self.n_poolings_ + 1):
            for _ in range(int(convs_per_stage)):
                layers += _conv_bn_relu(n_in, n_out)
                n_in = n_out
            if stage < self.n_poolings_:
                layers.append(nn.MaxPool2d(2))
                n_out = min(2 * n_out, 4 * int(width))
        self._end_with_head(layers, n_in, n_classes, dropout)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions and a (projected) shortcut.

    Parameters
    ----------
    n_in, n_out : int
        Input and output channels.
    stride : int, default=1
        Stride of the first convolution (and of the projection shortcut).
    """

    def __init__(self, n_in, n_out, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(n_out)
        self.conv2 = nn.Conv2d(n_out, n_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(n_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if stride != 1 or n_in != n_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(n_in, n_out, 1, stride=stride, bias=False),
                nn.BatchNorm2d(n_out),
            )

    def forward(self, X):
        out = self.relu(self.bn1(self.conv1(X)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(X))


class ResNetStyleCNN(_PooledCNN):
    """Compact ResNet-like backbone for larger images (more than 64 pixels a side).

    A stem (``Conv7x7/2 -> BN -> ReLU -> MaxPool/2`` as in ResNet, or a
    ``Conv3x3`` without downsampling for images of at most 64 pixels), then
    four stages of :class:`BasicBlock` with widths ``width * (1, 2, 4, 8)``
    (stages 2-4 downsample by 2), global average pooling (``embed``) and one
    ``Linear`` layer (``head``). With ``blocks=(2, 2, 2, 2)`` and ``width=64``
    this is ResNet-18.

    Parameters
    ----------
    n_channels, n_classes : int
        Number of input channels and of classes (size of the logits).
    image_size : int or (int, int)
        Height and width of the images (chooses the stem).
    width : int, default=32
        Channels of the first stage.
    blocks : sequence of int, default=(1, 1, 1, 1)
        Basic blocks per stage.
    dropout : float, default=0.0
        Dropout probability on the pooled representation, before the head.

    Attributes
    ----------
    embedding_dim : int
        Size of the representation returned by ``embed``.

    Examples
    --------
    >>> import torch
    >>> module = ResNetStyleCNN(n_channels=3, n_classes=2, image_size=96).eval()
    >>> x = torch.zeros(2, 3, 96, 96)
    >>> module.embed(x).shape
    torch.Size([2, 256])
    >>> torch.equal(module(x), module.head(module.embed(x)))
    True
    """

    def __init__(
        self,
        n_channels,
        n_classes,
        image_size,
        width=32,
        blocks=(1, 1, 1, 1),
        dropout=0.0,
    ):
        super().__init__()
        side = min(_pair(image_size))
        width = int(width)
        if side > SMALL_IMAGE_MAX_SIDE:
            layers = [
                nn.Conv2d(int(n_channels), width, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            ]
        else:
            layers = _conv_bn_relu(int(n_channels), width)
        n_in = width
        for stage, n_blocks in enumerate(blocks):
            n_out = width * 2**stage
            for block in range(int(n_blocks)):
                stride = 2 if (stage > 0 and block == 0) else 1
                layers.append(BasicBlock(n_in, n_out, stride))
                n_in = n_out
        self._end_with_head(layers, n_in, n_classes, dropout)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")


def make_image_module(input_shape, n_classes):
    """Choose the built-in network for images of shape ``(C, H, W)``.

    Parameters
    ----------
    input_shape : tuple of int
        ``(n_channels, height, width)`` of one sample.
    n_classes : int
        Number of classes.

    Returns
    -------
    module_class : type
        :class:`SmallCNN` when the larger side is at most 64 pixels, else
        :class:`ResNetStyleCNN`.
    kwargs : dict
        ``n_channels``, ``n_classes`` and ``image_size`` for the class; the
        estimator's ``module_params`` are merged over them.

    Examples
    --------
    >>> make_image_module((1, 8, 8), 10)
    (<class 'sklearn_boostmis.cnn.SmallCNN'>, {'n_channels': 1, 'n_classes': 10, \
'image_size': (8, 8)})
    """
    if len(input_shape) != 3:
        raise ValueError(
            f"image modules need samples of shape (C, H, W), got {tuple(input_shape)}"
        )
    n_channels, height, width = (int(v) for v in input_shape)
    kwargs = {
        "n_channels": n_channels,
        "n_classes": int(n_classes),
        "image_size": (height, width),
    }
    small = max(height, width) <= SMALL_IMAGE_MAX_SIDE
    return (SmallCNN if small else ResNetStyleCNN), kwargs


__all__ = ["BasicBlock", "ResNetStyleCNN", "SmallCNN", "make_image_module"]
