"""The weak and strong image views as batched torch operations (method page,
:ref:`method-augmentations`, which also lists how they approximate the PIL
operations of FixMatch's RandAugment).

Images are float tensors ``(N, C, H, W)`` in any value range and of any float
dtype, which the views keep (float16 and bfloat16 are augmented in float32).
``fit`` learns the per-channel minimum, maximum and mean of the training images;
the strong operations work on images mapped to [0, 1] with that range and map
back, so solarize, posterize or equalize mean the same on raw pixels and on
standardised ones, and every output stays within the fitted range. A fitted
augmentation takes images with the fitted number of channels, of any size.
Operations run on the tensor's device with per-sample parameters, with no Python
loop over samples; random numbers come only from the generator given to ``fit``
(kept as ``generator_``), so the same seed gives the same views.
"""

import math
from numbers import Integral, Real

import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval

from ._utils import TensorStateMixin

#: The operations of :class:`StrongImageAugment`, in the order of their ids.
STRONG_OPS = (
    "autocontrast",
    "brightness",
    "contrast",
    "equalize",
    "identity",
    "posterize",
    "rotate",
    "sharpness",
    "shear",
    "solarize",
    "translate",
)
_AFFINE_OPS = ("rotate", "shear", "translate")
_OP_IDS = {name: i for i, name in enumerate(STRONG_OPS)}
#: Non-affine operations as ``(images, magnitudes, enhance factors) -> images``.
_POINTWISE_OPS = {
    "autocontrast": lambda z, mag, factor: autocontrast(z),
    "brightness": lambda z, mag, factor: z * factor,
    "contrast": lambda z, mag, factor: _blend(
        z.mean(dim=(1, 2, 3), keepdim=True), z, factor
    ),
    "equalize": lambda z, mag, factor: equalize(z),
    "posterize": lambda z, mag, factor: posterize(z, 8 - torch.round(4 * mag)),
    "sharpness": lambda z, mag, factor: _blend(smooth(z), z, factor),
    "solarize": lambda z, mag, factor: solarize(z, 1 - mag),
}


class _ImageAugmentation(TensorStateMixin, BaseEstimator):
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, generator=None):
        """Learn the per-channel range and mean of the training images.

        Parameters
        ----------
        X : tensor of shape (n_samples, n_channels, height, width)
            The training images (labeled and unlabeled rows).
        generator : torch.Generator, default=None
            Source of every random number of the views (on ``X``'s device);
            None uses torch's global generator.

        Returns
        -------
        self
        """
        X = torch.as_tensor(X)
        if X.ndim != 4:
            raise ValueError(
                f"{type(self).__name__} augments images (n_samples, n_channels, "
                f"height, width); got an array with shape {tuple(X.shape)}"
            )
        X = X.detach().float()
        self.min_ = X.amin(dim=(0, 2, 3)).view(1, -1, 1, 1)
        self.max_ = X.amax(dim=(0, 2, 3)).view(1, -1, 1, 1)
        self.mean_ = X.mean(dim=(0, 2, 3)).view(1, -1, 1, 1)
        self.generator_ = generator
        return self

    def _rand(self, *shape, device):
        return torch.rand(shape, generator=self.generator_, device=device)

    def _state(self, name, x):
        return getattr(self, name).to(device=x.device, dtype=x.dtype)

    def _check(self, x):
        name = type(self).__name__
        if x.ndim != 4:
            raise ValueError(
                f"{name} expects a batch of images (N, C, H, W); got shape "
                f"{tuple(x.shape)}"
            )
        if not hasattr(self, "min_"):
            raise RuntimeError(f"{name} is not fitted: call fit")
        if x.shape[1] != self.min_.shape[1]:
            raise ValueError(
                f"{name} was fitted on images with {self.min_.shape[1]} "
                f"channel(s); got a batch of shape {tuple(x.shape)}"
            )


class WeakImageAugment(_ImageAugmentation):
    """Weak view: random horizontal flip and random pad-and-crop translation.

    Each image is flipped left-right with probability ``flip_p`` and shifted by
    a whole number of pixels drawn uniformly in ``[-pad, pad]`` on each axis,
    where ``pad = round(translate * side)`` (4 pixels for 32-pixel images, as in
    FixMatch). Uncovered pixels are filled by reflection (reflect padding then
    crop).

    Parameters
    ----------
    flip : bool, default=True
        Random horizontal flips.
    translate : float, default=0.125
        Largest shift as a fraction of the image side, in [0, 1] (at most
        ``side - 1`` pixels); 0 disables the translation.
    flip_p : float, default=0.5
        Probability of flipping an image when ``flip`` is True, in [0, 1].

    Examples
    --------
    >>> import torch
    >>> X = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    >>> weak = WeakImageAugment().fit(X, torch.Generator().manual_seed(0))
    >>> weak(X).shape
    torch.Size([16, 1, 8, 8])
    """

    _parameter_constraints: dict = {
        "flip": ["boolean"],
        "translate": [Interval(Real, 0, 1, closed="both")],
        "flip_p": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, flip=True, translate=0.125, flip_p=0.5):
        self.flip = flip
        self.translate = translate
        self.flip_p = flip_p

    def __call__(self, x):
        self._check(x)
        if self.flip and self.flip_p > 0:
            flip = self._rand(len(x), device=x.device) < self.flip_p
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        pads = [min(int(round(self.translate * s)), s - 1) for s in x.shape[-2:]]
        if any(pads):
            x = random_translate(x, *pads, self.generator_)
        return x


def random_translate(x, pad_h, pad_w, generator=None):
    """Shift each image by whole pixels in ``[-pad, pad]`` (reflect pad and crop).

    Parameters
    ----------
    x : tensor of shape (N, C, H, W)
    pad_h, pad_w : int
        Largest shifts along the height and the width (less than the side).
    generator : torch.Generator, default=None

    Returns
    -------
    tensor of shape (N, C, H, W)
    """
    n, _, height, width = x.shape
    padded = F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
    top = torch.randint(0, 2 * pad_h + 1, (n,), generator=generator, device=x.device)
    left = torch.randint(0, 2 * pad_w + 1, (n,), generator=generator, device=x.device)
    rows = top[:, None] + torch.arange(height, device=x.device)  # (N, H)
    cols = left[:, None] + torch.arange(width, device=x.device)  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    # advanced indexing puts the indexed axes first: (N, H, W, C)
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


class StrongImageAugment(_ImageAugmentation):
    """Strong view: RandAugment-style random operations, then Cutout.

    For each image, ``n_ops`` operations are drawn uniformly (with replacement)
    from :data:`STRONG_OPS`, each with its own magnitude ``m ~ U(0, magnitude)``
    and, where it applies, a random sign. Maximal strengths follow FixMatch's
    RandAugment: brightness, contrast and sharpness factors ``1 +- 0.9 m``;
    rotation ``+- 30 m`` degrees; shear ``+- 0.3 m``; translation ``+- 0.3 m``
    of the side; posterize to ``8 - 4 m`` bits; solarize above ``1 - m``. Then
    a square of side ``u * cutout * min(H, W)`` (``u ~ U(0, 1]``, at least one
    pixel) at a random centre, clipped at the borders, is set to the fitted
    per-channel mean. Optionally (``flip_and_crop``) the weak flip and
    pad-and-crop come first, as in FixMatch's strong transform (the method page
    lists the approximations of the PIL operations).

    Parameters
    ----------
    n_ops : int, default=3
        Operations per image, >= 0 (0: Cutout only).
    cutout : float, default=0.5
        Largest Cutout side as a fraction of the image side, in [0, 1]; 0
        disables Cutout.
    magnitude : float, default=1.0
        Largest magnitude, in (0, 1]; magnitudes are drawn in ``[0, magnitude]``.
    flip_and_crop : bool, default=False
        Apply :class:`WeakImageAugment` first.
    fill : float, default=0.0
        Value of pixels uncovered by affine operations, in [0, 1], as a
        fraction of each channel's fitted range (0 = the channel minimum, e.g.
        black).

    Examples
    --------
    >>> import torch
    >>> X = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> strong = StrongImageAugment().fit(X, torch.Generator().manual_seed(0))
    >>> out = strong(X)
    >>> out.shape, bool(out.min() >= X.min()), bool(out.max() <= X.max())
    (torch.Size([16, 3, 32, 32]), True, True)
    """

    _parameter_constraints: dict = {
        "n_ops": [Interval(Integral, 0, None, closed="left")],
        "cutout": [Interval(Real, 0, 1, closed="both")],
        "magnitude": [Interval(Real, 0, 1, closed="right")],
        "flip_and_crop": ["boolean"],
        "fill": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(
        self, n_ops=3, cutout=0.5, magnitude=1.0, flip_and_crop=False, fill=0.0
    ):
        self.n_ops = n_ops
        self.cutout = cutout
        self.magnitude = magnitude
        self.flip_and_crop = flip_and_crop
        self.fill = fill

    def fit(self, X, generator=None):
        super().fit(X, generator)
        self.weak_ = None
        if self.flip_and_crop:
            self.weak_ = WeakImageAugment().fit(X, generator)
        return self

    def __call__(self, x):
        self._check(x)
        if self.weak_ is not None:
            x = self.weak_(x)
        # half precision in float32: equalize counts pixels, parameters are float32
        z = x.to(torch.promote_types(x.dtype, torch.float32))
        low, high = self._state("min_", z), self._state("max_", z)
        span = torch.where(high > low, high - low, torch.ones_like(high))
        z = ((z - low) / span).clamp(0, 1)
        n = len(z)
        for _ in range(self.n_ops):
            op = torch.randint(
                0, len(STRONG_OPS), (n,), generator=self.generator_, device=x.device
            )
            mag = self._rand(n, device=x.device) * self.magnitude
            sign = torch.where(self._rand(n, device=x.device) < 0.5, -1.0, 1.0)
            axis = self._rand(n, device=x.device) < 0.5  # shear/translate along x
            z = self._apply_round(z, op, mag, sign, axis)
        if self.cutout > 0:
            fill = ((self._state("mean_", z) - low) / span).clamp(0, 1)
            z = self._cutout(z, fill)
        return (z.clamp(0, 1) * span + low).to(x.dtype)

    def _apply_round(self, z, op, mag, sign, axis):
        """One round of random operations; the two paths give the same images."""
        if z.device.type == "cpu":
            return self._round_on_selected_rows(z, op, mag, sign, axis)
        return self._round_with_masks(z, op, mag, sign, axis)

    def _round_on_selected_rows(self, z, op, mag, sign, axis):
        """Each operation on the rows that drew it: reads the op ids on the host,
        free on the CPU but a device synchronisation per operation on a GPU."""
        out = z.clone()
        factor = _enhance_factor(mag, sign)
        for name, operation in _POINTWISE_OPS.items():
            rows = torch.nonzero(op == _OP_IDS[name]).squeeze(1)
            if len(rows):
                out[rows] = operation(z[rows], mag[rows], factor[rows])
        rows = torch.nonzero(_is_affine(op)).squeeze(1)
        if len(rows):
            theta = affine_matrices(
                op[rows], mag[rows], sign[rows], axis[rows], z.shape[-2:]
            )
            out[rows] = affine(z[rows], theta, self.fill)
        return out.clamp(0, 1)

    def _round_with_masks(self, z, op, mag, sign, axis):
        """Every operation on the whole batch, selected with ``torch.where``: more
        arithmetic, but no host read, so the GPU never waits for the CPU."""
        out = z
        factor = _enhance_factor(mag, sign)
        for name, operation in _POINTWISE_OPS.items():
            selected = (op == _OP_IDS[name]).view(-1, 1, 1, 1)
            out = torch.where(selected, operation(z, mag, factor), out)
        theta = affine_matrices(op, mag, sign, axis, z.shape[-2:])
        warped = affine(z, theta, self.fill)
        return torch.where(_is_affine(op).view(-1, 1, 1, 1), warped, out).clamp(0, 1)

    def _cutout(self, z, fill):
        n, _, height, width = z.shape
        device = z.device
        side = min(height, width)
        size = torch.ceil(self._rand(n, device=device) * self.cutout * side)
        size = size.clamp(min=1).view(-1, 1, 1)
        cy = torch.floor(self._rand(n, device=device) * height).view(-1, 1, 1)
        cx = torch.floor(self._rand(n, device=device) * width).view(-1, 1, 1)
        y0 = cy - torch.floor(size / 2)
        x0 = cx - torch.floor(size / 2)
        rows = torch.arange(height, device=device).view(1, -1, 1)
        cols = torch.arange(width, device=device).view(1, 1, -1)
        inside = (rows >= y0) & (rows < y0 + size) & (cols >= x0) & (cols < x0 + size)
        return torch.where(inside[:, None], fill.to(z.dtype), z)


# -- operations on images in [0, 1], batched with per-sample parameters -------
def _enhance_factor(mag, sign):
    """PIL ImageEnhance factors ``1 +- 0.9 m``, shaped to broadcast over images."""
    return (1 + sign * 0.9 * mag).view(-1, 1, 1, 1)


def _is_affine(op):
    return sum(op == _OP_IDS[name] for name in _AFFINE_OPS).bool()


def _blend(base, z, factor):
    """``base + factor * (z - base)`` (PIL's ImageEnhance), clipped to [0, 1]."""
    return (base + factor * (z - base)).clamp(0, 1)


def autocontrast(z):
    """Stretch each sample's channels to [0, 1] (constant channels unchanged)."""
    low = z.amin(dim=(2, 3), keepdim=True)
    high = z.amax(dim=(2, 3), keepdim=True)
    span = high - low
    stretched = (z - low) / torch.where(span > 0, span, torch.ones_like(span))
    return torch.where(span > 0, stretched, z)


def equalize(z, bins=256):
    """Histogram equalisation per sample and channel on ``bins`` levels (PIL-like)."""
    n, c, height, width = z.shape
    # reshape, not view: a channels-last batch has no (n * c, h * w) view
    levels = (z * (bins - 1)).round().long().clamp(0, bins - 1).reshape(n * c, -1)
    hist = torch.zeros(n * c, bins, device=z.device, dtype=z.dtype)
    hist.scatter_add_(1, levels, torch.ones_like(levels, dtype=z.dtype))
    cdf = hist.cumsum(dim=1)
    # count of the lowest occupied level
    cdf_min = hist.gather(1, levels.min(dim=1, keepdim=True).values)
    denom = cdf[:, -1:] - cdf_min
    lut = (cdf - cdf_min) / torch.where(denom > 0, denom, torch.ones_like(denom))
    out = lut.clamp(0, 1).gather(1, levels)
    out = torch.where(denom > 0, out, z.reshape(n * c, -1))
    return out.reshape(n, c, height, width)


def posterize(z, bits):
    """Keep ``bits`` (per sample, 1 to 8) of 8-bit quantised values."""
    step = 2.0 ** (8 - bits.clamp(1, 8)).view(-1, 1, 1, 1)
    levels = torch.floor(z * 255)
    return torch.floor(levels / step) * step / 255


def solarize(z, threshold):
    """Invert the values at or above ``threshold`` (per sample)."""
    return torch.where(z >= threshold.view(-1, 1, 1, 1), 1 - z, z)


def smooth(z):
    """PIL's SMOOTH filter (3x3, centre weight 5), border pixels unchanged."""
    box = F.avg_pool2d(z, 3, stride=1, padding=1, count_include_pad=True) * 9
    blurred = (box + 4 * z) / 13
    border = torch.ones_like(z[:1, :1], dtype=torch.bool)
    border[..., 1:-1, 1:-1] = False
    return torch.where(border, z, blurred)


def affine_matrices(op, mag, sign, axis, size):
    """Per-sample ``affine_grid`` matrices for rotate, shear and translate (the
    identity for other operations); angles and shears in pixel units."""
    theta = torch.eye(2, 3, device=op.device).repeat(len(op), 1, 1)
    aspect = size[0] / size[1]
    # rotate
    angle = sign * mag * math.radians(30)
    cos, sin = torch.cos(angle), torch.sin(angle)
    rot = op == _OP_IDS["rotate"]
    theta[:, 0, 0] = torch.where(rot, cos, theta[:, 0, 0])
    theta[:, 0, 1] = torch.where(rot, -sin * aspect, theta[:, 0, 1])
    theta[:, 1, 0] = torch.where(rot, sin / aspect, theta[:, 1, 0])
    theta[:, 1, 1] = torch.where(rot, cos, theta[:, 1, 1])
    # shear along x (x_in = x + k y) or y (y_in = y + k x)
    shear = sign * mag * 0.3
    is_shear = op == _OP_IDS["shear"]
    theta[:, 0, 1] = torch.where(is_shear & axis, shear * aspect, theta[:, 0, 1])
    theta[:, 1, 0] = torch.where(is_shear & ~axis, shear / aspect, theta[:, 1, 0])
    # translate by a fraction of the side (normalised coordinates span 2)
    shift = sign * mag * 0.3 * 2
    is_shift = op == _OP_IDS["translate"]
    theta[:, 0, 2] = torch.where(is_shift & axis, shift, theta[:, 0, 2])
    theta[:, 1, 2] = torch.where(is_shift & ~axis, shift, theta[:, 1, 2])
    return theta


def affine(z, theta, fill=0.0):
    """Warp each image with its matrix (nearest neighbour), filling with ``fill``."""
    grid = F.affine_grid(theta.to(z.dtype), list(z.shape), align_corners=False)
    warped = F.grid_sample(
        z - fill, grid, mode="nearest", padding_mode="zeros", align_corners=False
    )
    return warped + fill


__all__ = ["STRONG_OPS", "StrongImageAugment", "WeakImageAugment", "random_translate"]
