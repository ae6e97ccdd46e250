"""CIELAB by distinct colours: exactly scikit-image's rgb2lab on random, structured and
real inputs, the hash table's distinct colours, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2lab as skimage_rgb2lab

from fastunlc._kernels.cpu.colour import distinct_colours
from fastunlc.colour import rgb2lab

from .helpers import VTEST, read_video_frames


@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 5, 3), (64, 48, 3), (300, 15, 15, 3)])
def test_random_colours_equal_scikit_image_bitwise(shape):
    rgb = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    expected = skimage_rgb2lab(rgb)
    got = rgb2lab(rgb)
    assert got.dtype == np.float64 and got.shape == rgb.shape
    np.testing.assert_array_equal(got, expected)


def test_every_grey_level_and_the_cube_corners():
    """Both branches of the sRGB gamma and of CIELAB's f, black and white included."""
    levels = np.arange(256, dtype=np.uint8)
    grey = np.repeat(levels[:, None], 3, axis=1)[None]
    corners = np.array([[[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)]],
                       np.uint8)
    for rgb in (grey, corners):
        np.testing.assert_array_equal(rgb2lab(rgb), skimage_rgb2lab(rgb))


def test_stack_equals_frame_by_frame_on_real_frames():
    if not VTEST.is_file():
        pytest.skip(f"{VTEST} not found (apt-get install opencv-doc)")
    stack = read_video_frames(VTEST, 0, 3, size=(487, 650))
    got = rgb2lab(stack)
    for i in range(len(stack)):
        np.testing.assert_array_equal(got[i], skimage_rgb2lab(stack[i]))


def test_distinct_colours_in_first_appearance_order():
    rgb = np.array([[1, 2, 3], [4, 5, 6], [1, 2, 3], [0, 0, 0], [4, 5, 6], [1, 2, 4]], np.uint8)
    colours, inverse, counts = distinct_colours(rgb)
    np.testing.assert_array_equal(colours, [[1, 2, 3], [4, 5, 6], [0, 0, 0], [1, 2, 4]])
    np.testing.assert_array_equal(inverse, [0, 1, 0, 2, 1, 3])
    np.testing.assert_array_equal(counts, [2, 2, 1, 1])


def test_distinct_colours_of_many_random_pixels():
    rgb = np.random.default_rng(3).integers(0, 24, (50_000, 3), dtype=np.uint8)
    colours, inverse, counts = distinct_colours(rgb)
    expected, expected_counts = np.unique(rgb, axis=0, return_counts=True)
    assert len(colours) == len(expected)
    order = np.lexsort(colours.T[::-1])
    np.testing.assert_array_equal(colours[order], expected)
    np.testing.assert_array_equal(counts[order], expected_counts)
    np.testing.assert_array_equal(colours[inverse], rgb)


def test_empty_input_and_bad_input():
    assert rgb2lab(np.zeros((0, 4, 3), np.uint8)).shape == (0, 4, 3)
    with pytest.raises(ValueError, match="uint8"):
        rgb2lab(np.zeros((4, 4, 3), np.float64))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        rgb2lab(np.zeros((4, 4, 4), np.uint8))
