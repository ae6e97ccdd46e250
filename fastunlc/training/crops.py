"""Where a training crop goes, and the batched kernel that cuts it (spec section 8).

A sample's crop is drawn on the host before anything is decoded, from the image's size
and its object boxes only (:func:`draw_crop`), so that the loader can decode and cut a
whole batch on the device in one go (:func:`cut_batch`). The recipe follows DeepMask's
sampler, which the paper's training setup cites ([37, 38]):

* one object of the frame, uniformly among its boxes (connected components of the
  foreground for a built dataset, the instance for COCO);
* a square window around it whose side is the object's longer side divided by
  :attr:`CropRecipe.object_span` (DeepMask: 128 of 224 px), scaled by ``2^u``,
  ``u ~ U(-0.25, 0.25)``;
* its centre shifted by up to ``±16/224`` of the window's side on each axis;
* a horizontal flip with probability 0.5.

The window is resampled bilinearly to ``227 × 227`` for the image and to ``224 × 224``
for the mask, which 4 × 4 average pooling brings to the ``56 × 56`` target, so that each
target cell is the mean of the soft mask over its part of the window. Outside the frame
the image is the mean colour (zero once normalised) and the mask is background. The
target is a trimap: ``p < 0.4`` negative, ``p > 0.7`` positive, the rest ignored.

Every sample's randomness comes from ``numpy.random.default_rng([seed, epoch, index])``:
the same sample in the same epoch gets the same crop whatever the batch, the rank or the
code path, which is what makes the CPU reference path and the batched device path give
identical batches, and a resumed run the same batches as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .model import INPUT_SIZE, MASK_SIZE

MEAN = (0.485, 0.456, 0.406)
"""Per-channel mean of RGB in [0, 1] that inputs are normalised with (ImageNet's)."""
STD = (0.229, 0.224, 0.225)
"""Per-channel standard deviation of RGB in [0, 1] (ImageNet's)."""

MASK_SAMPLES = 4 * MASK_SIZE
"""Side at which the mask is resampled before 4 × 4 pooling to :data:`MASK_SIZE`."""


@dataclass(frozen=True)
class CropRecipe:
    """How crops are drawn around objects (DeepMask's values by default).

    Attributes
    ----------
    object_span : float
        Fraction of the window's side that the object's longer side spans (128 / 224).
    scale_jitter : float
        The window's side is scaled by ``2^u``, ``u ~ U(-scale_jitter, scale_jitter)``.
    shift_jitter : float
        The window's centre moves by ``U(-s, s)`` times its side on each axis (16 / 224).
    flip : float
        Probability of a horizontal flip.
    negative_below, positive_above : float
        Trimap thresholds on the target cell's mean ``p`` (the paper's 0.4 and 0.7).
    """

    object_span: float = 128 / 224
    scale_jitter: float = 0.25
    shift_jitter: float = 16 / 224
    flip: float = 0.5
    negative_below: float = 0.4
    positive_above: float = 0.7

    def __post_init__(self) -> None:
        checks = (("object_span", 0.0 < self.object_span <= 1.0, "in (0, 1]"),
                  ("scale_jitter", 0.0 <= self.scale_jitter <= 2.0, "in [0, 2]"),
                  ("shift_jitter", 0.0 <= self.shift_jitter <= 0.5, "in [0, 0.5]"),
                  ("flip", 0.0 <= self.flip <= 1.0, "in [0, 1]"),
                  ("negative_below", 0.0 <= self.negative_below <= self.positive_above,
                   "in [0, positive_above]"),
                  ("positive_above", self.positive_above < 1.0, "below 1"))
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"{name} must be {expected}, got {getattr(self, name)}")


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream of sample ``index`` in ``epoch`` of a run seeded ``seed``."""
    return np.random.default_rng([seed, epoch, index])


def draw_crop(boxes: np.ndarray, rng: np.random.Generator, recipe: CropRecipe
              ) -> tuple[float, float, float, bool]:
    """The crop of one sample: ``(x0, y0, side, flipped)``, the window's top-left corner
    and side in the stored image's pixels (floats; the window may reach outside it).

    ``boxes`` is ``(k, 4)``, ``x0, y0, x1, y1`` in pixels (end exclusive), ``k >= 1``.
    """
    box = boxes[rng.integers(len(boxes))]
    width, height = float(box[2] - box[0]), float(box[3] - box[1])
    side = max(width, height, 1.0) / recipe.object_span
    side *= 2.0 ** rng.uniform(-recipe.scale_jitter, recipe.scale_jitter)
    cx = (box[0] + box[2]) / 2 + rng.uniform(-recipe.shift_jitter, recipe.shift_jitter) * side
    cy = (box[1] + box[3]) / 2 + rng.uniform(-recipe.shift_jitter, recipe.shift_jitter) * side
    flipped = bool(rng.random() < recipe.flip)
    return float(cx - side / 2), float(cy - side / 2), float(side), flipped


@dataclass
class Sampling:
    """Bilinear sampling positions of a batch's windows on one output grid (host arrays).

    ``x`` and ``y`` are ``(B, n)`` float32 source coordinates of the ``n`` output columns
    and rows (pixel centres at integers); flipped samples have their columns reversed.
    """

    x: np.ndarray
    y: np.ndarray


def sampling(windows: np.ndarray, flips: np.ndarray, n: int) -> Sampling:
    """Positions of ``n × n`` output pixels over each window.

    ``windows`` is ``(B, 3)`` float64 ``x0, y0, side``; ``flips`` ``(B,)`` bool. Output
    pixel ``j``'s centre lies at ``x0 + (j + 0.5) side / n - 0.5`` (half-pixel centres,
    as ``align_corners=False`` resampling), mirrored for flipped samples.
    """
    steps = (np.arange(n) + 0.5) / n
    x = windows[:, :1] + steps[None, :] * windows[:, 2:3] - 0.5
    y = windows[:, 1:2] + steps[None, :] * windows[:, 2:3] - 0.5
    x = np.where(flips[:, None], x[:, ::-1], x)
    return Sampling(x.astype(np.float32), y.astype(np.float32))


def _axis(coords: torch.Tensor, limit: torch.Tensor):
    """Lower index, upper index, upper weight and validity of bilinear taps along an axis:
    ``coords`` ``(B, n)``, ``limit`` ``(B, 1)`` the image's extent on that axis."""
    low = torch.floor(coords)
    frac = coords - low
    low = low.long()
    valid = (coords >= -0.5) & (coords <= limit.to(coords.dtype) - 0.5)
    top = limit - 1
    return low.clamp(min=0).minimum(top), (low + 1).clamp(min=0).minimum(top), frac, valid


def cut(images: torch.Tensor, sizes: torch.Tensor, where: Sampling, fill: torch.Tensor
        ) -> torch.Tensor:
    """Bilinear resampling of a batch of windows (the loader's crop-and-resize kernel).

    Parameters
    ----------
    images : Tensor
        ``(B, C, H, W)`` uint8, each image top-left aligned and zero-padded to the batch's
        largest height and width.
    sizes : Tensor
        ``(B, 2)`` int64 true ``(h, w)`` of each image; taps are clamped inside it.
    where : Sampling
        Output positions, ``n`` per axis.
    fill : Tensor
        ``(C,)`` float32 value of output pixels whose centre falls outside the image.

    Returns
    -------
    Tensor
        ``(B, C, n, n)`` float32 on ``images.device``. The arithmetic is the same for any
        batch and padding, so one sample comes out bit-identical alone or in a batch.
    """
    device = images.device
    batch, channels, _, padded_width = images.shape
    x = torch.from_numpy(where.x).to(device)
    y = torch.from_numpy(where.y).to(device)
    n = x.shape[1]
    sizes = sizes.to(device)
    x0, x1, fx, x_valid = _axis(x, sizes[:, 1:2])
    y0, y1, fy, y_valid = _axis(y, sizes[:, 0:1])
    flat = images.reshape(batch, channels, -1)

    def tap(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        index = (rows[:, :, None] * padded_width + cols[:, None, :]).reshape(batch, 1, n * n)
        values = torch.gather(flat, 2, index.expand(batch, channels, n * n))
        return values.reshape(batch, channels, n, n).float()

    fx = fx[:, None, None, :]
    fy = fy[:, None, :, None]
    top = tap(y0, x0) * (1 - fx) + tap(y0, x1) * fx
    bottom = tap(y1, x0) * (1 - fx) + tap(y1, x1) * fx
    out = top * (1 - fy) + bottom * fy
    inside = (y_valid[:, :, None] & x_valid[:, None, :])[:, None]
    return torch.where(inside, out, fill.to(device)[None, :, None, None])


def image_fill() -> torch.Tensor:
    """``(3,)`` float32: the mean colour in 0-255, which normalises to zero."""
    return torch.tensor(MEAN, dtype=torch.float32) * 255


def normalise(crops: torch.Tensor) -> torch.Tensor:
    """``(B, 3, n, n)`` float32 in 0-255 → normalised by :data:`MEAN` and :data:`STD`."""
    mean = torch.tensor(MEAN, device=crops.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(STD, device=crops.device).view(1, 3, 1, 1) * 255
    return (crops - mean) / std


def trimap_target(mask_crops: torch.Tensor, recipe: CropRecipe
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Target and weight of the loss from ``(B, 1, 224, 224)`` mask crops in 0-255.

    Returns ``(B, 56, 56)`` float32 each: the target is 1 where the cell's mean ``p`` is
    above ``positive_above``; the weight is 1 where it is above that or below
    ``negative_below`` and 0 in the band between (ignored by the loss).
    """
    p = F.avg_pool2d(mask_crops, MASK_SAMPLES // MASK_SIZE)[:, 0] / 255.0
    positive = p > recipe.positive_above
    weight = positive | (p < recipe.negative_below)
    return positive.float(), weight.float()


def pad_batch(planes: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``(C, h, w)`` uint8 images of different sizes into ``(B, C, H, W)``,
    top-left aligned and zero-padded; returns it and the ``(B, 2)`` int64 true sizes."""
    height = max(p.shape[1] for p in planes)
    width = max(p.shape[2] for p in planes)
    out = planes[0].new_zeros((len(planes), planes[0].shape[0], height, width))
    for k, plane in enumerate(planes):
        out[k, :, :plane.shape[1], :plane.shape[2]] = plane
    sizes = torch.tensor([[p.shape[1], p.shape[2]] for p in planes], dtype=torch.int64)
    return out, sizes


def make_batch(images: list[torch.Tensor], masks: list[torch.Tensor], windows: np.ndarray,
               flips: np.ndarray, recipe: CropRecipe
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs, targets and weights of a batch from its decoded images and masks.

    ``images`` are ``(3, h, w)`` uint8 RGB, ``masks`` ``(1, h, w)`` uint8 (``round(255 p)``),
    all on one device; ``windows`` ``(B, 3)`` and ``flips`` ``(B,)`` from :func:`draw_crop`.
    Returns ``(B, 3, 227, 227)`` float32 normalised inputs and ``(B, 56, 56)`` float32
    targets and weights (:func:`trimap_target`).
    """
    pixels, sizes = pad_batch(images)
    inputs = normalise(cut(pixels, sizes, sampling(windows, flips, INPUT_SIZE), image_fill()))
    planes, mask_sizes = pad_batch(masks)
    mask_crops = cut(planes, mask_sizes, sampling(windows, flips, MASK_SAMPLES),
                     torch.zeros(1))
    target, weight = trimap_target(mask_crops, recipe)
    return inputs, target, weight
