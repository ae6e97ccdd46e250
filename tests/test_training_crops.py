"""Crop drawing and the batched crop kernel, against plain per-pixel references."""

import numpy as np
import pytest
import torch

from fastunlc.training.crops import (
    CropRecipe,
    cut,
    draw_crop,
    make_batch,
    pad_batch,
    sample_rng,
    sampling,
    trimap_target,
)
from tests.helpers import VTEST, read_video_frames

# The kernel's sampling positions are float32: a coordinate near 400 px is off by up to
# 2^-24 · 400 ≈ 2.4e-5 px, which moves a value by at most that times the steepest step
# between neighbours (255): 6e-3 of the 0-255 range.
TOLERANCE = 1e-2


def reference_cut(image: np.ndarray, window, flipped: bool, n: int, fill) -> np.ndarray:
    """Bilinear resampling written pixel by pixel: ``image`` (h, w, C) → (n, n, C)."""
    h, w, channels = image.shape
    x0, y0, side = window
    out = np.empty((n, n, channels))
    for i in range(n):
        for j in range(n):
            jj = n - 1 - j if flipped else j
            x = x0 + (jj + 0.5) * side / n - 0.5
            y = y0 + (i + 0.5) * side / n - 0.5
            if not (-0.5 <= x <= w - 0.5 and -0.5 <= y <= h - 0.5):
                out[i, j] = fill
                continue
            xl, yl = int(np.floor(x)), int(np.floor(y))
            fx, fy = x - xl, y - yl
            xa, xb = min(max(xl, 0), w - 1), min(max(xl + 1, 0), w - 1)
            ya, yb = min(max(yl, 0), h - 1), min(max(yl + 1, 0), h - 1)
            out[i, j] = ((1 - fy) * ((1 - fx) * image[ya, xa] + fx * image[ya, xb])
                         + fy * ((1 - fx) * image[yb, xa] + fx * image[yb, xb]))
    return out


def kernel_cut(images: list[np.ndarray], windows, flips, n, fill) -> np.ndarray:
    planes = [torch.from_numpy(im).permute(2, 0, 1) for im in images]
    pixels, sizes = pad_batch(planes)
    out = cut(pixels, sizes, sampling(np.asarray(windows, float), np.asarray(flips), n),
              torch.tensor(fill, dtype=torch.float32))
    return out.permute(0, 2, 3, 1).numpy()


def test_kernel_matches_the_reference_on_random_images():
    """Windows inside, across and beyond the border, up- and down-sampling, flipped or
    not, in a batch of images of different sizes: within float32 rounding (TOLERANCE)."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
              for h, w in ((37, 53), (60, 41), (24, 24), (50, 70))]
    windows = [(5.3, 2.1, 20.0), (-10.0, 30.5, 44.0), (3.0, 4.0, 90.0), (60.0, 40.0, 30.0)]
    flips = [False, True, True, False]
    fill = (10.0, 20.0, 30.0)
    got = kernel_cut(images, windows, flips, 17, fill)
    for k, image in enumerate(images):
        expected = reference_cut(image.astype(np.float64), windows[k], flips[k], 17, fill)
        np.testing.assert_allclose(got[k], expected, atol=TOLERANCE)


def test_kernel_matches_the_reference_on_a_real_frame():
    frame = read_video_frames(VTEST, count=1)[0]
    window = (200.3, 90.7, 181.0)
    got = kernel_cut([frame], [window], [True], 31, (0.0, 0.0, 0.0))[0]
    np.testing.assert_allclose(got, reference_cut(frame.astype(np.float64), window, True, 31,
                                                  0.0), atol=TOLERANCE)


def test_identity_window_returns_the_image():
    image = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert np.array_equal(kernel_cut([image], [(0.0, 0.0, 16.0)], [False], 16, (0, 0, 0))[0],
                          image.astype(np.float32))
    flipped = kernel_cut([image], [(0.0, 0.0, 16.0)], [True], 16, (0, 0, 0))[0]
    assert np.array_equal(flipped, image[:, ::-1].astype(np.float32))


def test_one_sample_is_bit_identical_alone_and_in_a_batch():
    rng = np.random.default_rng(2)
    shapes = ((120, 160), (90, 200), (150, 100))
    images = [torch.from_numpy(rng.integers(0, 256, (3, h, w), dtype=np.uint8))
              for h, w in shapes]
    masks = [torch.from_numpy(rng.integers(0, 256, (1, h, w), dtype=np.uint8))
             for h, w in shapes]
    windows = np.array([[10.0, 5.0, 80.0], [-20.0, 0.0, 150.0], [30.5, 60.2, 40.0]])
    flips = np.array([True, False, True])
    together = make_batch(images, masks, windows, flips, CropRecipe())
    for k in range(3):
        alone = make_batch([images[k]], [masks[k]], windows[k:k + 1], flips[k:k + 1],
                           CropRecipe())
        for a, b in zip(alone, together, strict=True):
            assert torch.equal(a[0], b[k])


def test_trimap_thresholds():
    recipe = CropRecipe()
    levels = torch.tensor([0.3, 0.5, 0.8]) * 255
    crops = levels.view(3, 1, 1, 1).expand(3, 1, 224, 224)
    target, weight = trimap_target(crops, recipe)
    assert target.shape == (3, 56, 56)
    assert target[:, 0, 0].tolist() == [0.0, 0.0, 1.0]
    assert weight[:, 0, 0].tolist() == [1.0, 0.0, 1.0]


def test_crops_follow_the_recipe():
    """Over many draws: the object spans 128/224 of the window within 2^±0.25, the
    centre moves by at most 16/224 of the side, half the crops are flipped."""
    recipe = CropRecipe()
    box = np.array([[100.0, 50.0, 180.0, 110.0]])  # 80 × 60, longer side 80
    draws = np.array([draw_crop(box, sample_rng(0, 0, k), recipe) for k in range(2000)])
    side = draws[:, 2]
    ratio = 80 / side / (128 / 224)
    assert ratio.min() >= 2 ** -0.25 - 1e-9 and ratio.max() <= 2 ** 0.25 + 1e-9
    assert ratio.min() < 0.87 and ratio.max() > 1.15  # the range is used
    shift = (draws[:, 0] + side / 2 - 140) / side
    assert np.abs(shift).max() <= 16 / 224 + 1e-9 and np.abs(shift).max() > 0.06
    assert 0.45 < draws[:, 3].mean() < 0.55
    assert draw_crop(box, sample_rng(0, 0, 7), recipe) == draw_crop(box, sample_rng(0, 0, 7),
                                                                     recipe)


def test_recipe_is_validated():
    with pytest.raises(ValueError, match="object_span"):
        CropRecipe(object_span=0)
    with pytest.raises(ValueError, match="negative_below"):
        CropRecipe(negative_below=0.8)
