"""Superpixel descriptors (spec section 4): fast path against the per-patch scikit-image oracle.

Tolerance: colour histograms and location are compared exactly; the HOG to 1e-9
absolute. (On this platform the HOG is bit-identical too; the slack covers a libm
whose atan2/hypot differ from NumPy's by an ulp.)
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2lab

from fastunlc._kernels.cpu.descriptors import pairwise_sum, place_patches
from fastunlc.backend import kernels
from fastunlc.config import REFERENCE
from fastunlc.descriptors import (
    descriptor_dim,
    superpixel_descriptors,
    superpixel_descriptors_batch,
)
from fastunlc.errors import InputError
from fastunlc.reference import descriptors as oracle

from .helpers import read_video_frames

HOG_TOL = 1e-9


def assert_matches_oracle(frame, labels, n, config=REFERENCE, **kwargs):
    fast = superpixel_descriptors(frame, labels, n, config, **kwargs)
    slow = oracle.superpixel_descriptors(frame, labels, n, config)
    assert fast.shape == slow.shape == (n, descriptor_dim(config))
    assert fast.dtype == np.float64
    n_hog = descriptor_dim(config) - 6 * config.color_bins - 2
    np.testing.assert_allclose(fast[:, :n_hog], slow[:, :n_hog], rtol=0, atol=HOG_TOL)
    np.testing.assert_array_equal(fast[:, n_hog:], slow[:, n_hog:])
    return fast


def voronoi_labels(rng, h, w, n_seeds):
    """Contiguous labels: Voronoi cells of random seeds, plus 1-pixel superpixels at the
    four corners, on each border and inside."""
    seeds = rng.integers(0, [h, w], (n_seeds, 2))
    yy, xx = np.mgrid[:h, :w]
    d = (yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2
    labels = np.argmin(d, axis=2)
    singles = [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (0, w // 2), (h - 1, w // 3),
               (h // 2, 0), (h // 3, w - 1), (h // 2, w // 2), (1, 1), (h - 2, w - 2)]
    for k, (y, x) in enumerate(singles):
        labels[y, x] = n_seeds + k
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.reshape(h, w).astype(np.int32)
    return labels, int(labels.max()) + 1


def random_frame(rng, h, w, kind):
    if kind == "noise":
        frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    else:  # smooth ramps: realistic gradients, many equal neighbours
        yy, xx = np.mgrid[:h, :w]
        frame = np.stack([(xx * 255 // (w - 1)), (yy * 255 // (h - 1)),
                          ((xx + yy) * 3) % 256], axis=2).astype(np.uint8)
    # Pure white (L = 100.00000000000001, outside the L range) and pure black.
    frame[rng.random((h, w)) < 0.05] = 255
    frame[rng.random((h, w)) < 0.05] = 0
    return frame


@pytest.fixture(scope="module")
def real_frame(opencv_data):
    from skimage.segmentation import slic

    # 768x576 shrunk as the pipeline does (longer side 650): 650x487.
    frame = read_video_frames(opencv_data / "vtest.avi", 0, 1, size=(487, 650))[0]
    labels = slic(frame / 255.0, n_segments=400, compactness=10, sigma=5, start_label=0)
    return frame, labels, int(labels.max()) + 1


# -- agreement with the oracle ----------------------------------------------------------


@pytest.mark.parametrize("kind", ["noise", "smooth"])
@pytest.mark.parametrize("seed", [0, 1])
def test_random_frames_match_oracle(kind, seed):
    rng = np.random.default_rng(seed)
    h, w = 48 + 7 * seed, 64 + 5 * seed
    frame = random_frame(rng, h, w, kind)
    labels, n = voronoi_labels(rng, h, w, 20)
    assert_matches_oracle(frame, labels, n)


@pytest.mark.parametrize("norm", ["L1", "L1-sqrt", "L2", "L2-Hys"])
def test_block_norms_match_oracle(norm):
    rng = np.random.default_rng(7)
    frame = random_frame(rng, 40, 56, "smooth")
    frame = (frame // 2 + rng.integers(0, 40, frame.shape)).astype(np.uint8)
    labels, n = voronoi_labels(rng, 40, 56, 12)
    config = REFERENCE.replace(hog_block_norm=norm)
    desc = assert_matches_oracle(frame, labels, n, config)
    hog = desc[:, :54]
    # Known answers of each normalisation on textured patches (eps = 1e-5 is negligible).
    if norm == "L1":
        np.testing.assert_allclose(hog.sum(axis=1), 1.0, atol=1e-4)
    else:
        np.testing.assert_allclose((hog**2).sum(axis=1), 1.0, atol=1e-4)


def test_real_frame_matches_oracle(real_frame):
    frame, labels, n = real_frame
    desc = assert_matches_oracle(frame, labels, n)
    assert np.isfinite(desc).all()
    with_lab = superpixel_descriptors(frame, labels, n, lab=rgb2lab(frame))
    np.testing.assert_array_equal(with_lab, desc)


@pytest.mark.parametrize(
    "changes",
    [
        dict(patch_size=20, hog_cell=5, color_bins=10, hog_orientations=9),  # 206 dims
        dict(patch_size=12, hog_cell=4, hog_orientations=7),  # 180/7 bin edges
        dict(patch_size=25, hog_cell=5),  # 150 HOG values: NumPy's pairwise split
    ],
)
def test_other_configs_shape_and_oracle(changes):
    config = REFERENCE.replace(**changes)
    cells = config.patch_size // config.hog_cell
    assert descriptor_dim(config) == (6 * config.color_bins
                                      + config.hog_orientations * cells * cells + 2)
    rng = np.random.default_rng(3)
    frame = random_frame(rng, 45, 60, "noise")
    labels, n = voronoi_labels(rng, 45, 60, 10)
    assert_matches_oracle(frame, labels, n, config)


def _shift_right(starts, corners, boxes, size, h, w):
    corners[:, 1] = np.minimum(corners[:, 1] + 1, w - 1 - size)  # one pixel right
    return starts, corners


def _floor_start(starts, corners, boxes, size, h, w):
    starts[:, 1] = np.floor((boxes[:, 0] + boxes[:, 2] - size) / 2)  # floor, not truncation
    starts[:, 0] = np.floor((boxes[:, 1] + boxes[:, 3] - size) / 2)
    return starts, corners


def _reads_last_column(starts, corners, boxes, size, h, w):
    corners[:, 1] = np.clip(starts[:, 1], 0, w - size)  # the original never reads column w-1
    return starts, corners


@pytest.mark.parametrize("mutation", [_shift_right, _floor_start, _reads_last_column])
def test_oracle_comparison_catches_a_placement_bug(monkeypatch, mutation):
    """The oracle places patches by its own reading of the spec and the original, so a
    kernel whose placement is off (by a pixel, by its rounding, at the border) fails
    the comparison that the other tests make."""
    kernel = kernels("cpu").descriptors
    place = kernel.place_patches
    monkeypatch.setattr(kernel, "place_patches", lambda boxes, size, h, w: mutation(
        *place(boxes, size, h, w), boxes, size, h, w))
    rng = np.random.default_rng(0)
    frame = random_frame(rng, 48, 64, "noise")
    labels, n = voronoi_labels(rng, 48, 64, 20)
    with pytest.raises(AssertionError):
        assert_matches_oracle(frame, labels, n)


# -- known answers ------------------------------------------------------------------------


def test_default_dimension():
    assert descriptor_dim() == 176


def test_uniform_frame_one_hot_histograms_zero_hog():
    colour = (200, 30, 100)
    frame = np.empty((30, 40, 3), dtype=np.uint8)
    frame[:] = colour
    labels = np.zeros((30, 40), dtype=np.int32)
    labels[:, 20:] = 1
    labels[10:14, 5:9] = 2
    desc = superpixel_descriptors(frame, labels, 3)
    assert desc.shape == (3, 176)
    np.testing.assert_array_equal(desc[:, :54], 0.0)
    lab = rgb2lab(np.array([[colour]], dtype=np.uint8))[0, 0]
    values = [*colour, *lab]
    ranges = [(0, 255)] * 3 + [(0, 100), (-128, 127), (-128, 127)]
    hists = desc[:, 54:174].reshape(3, 6, 20)
    for c, (v, (lo, hi)) in enumerate(zip(values, ranges, strict=True)):
        expected = np.zeros(20)
        expected[int((v - lo) / (hi - lo) * 20)] = 1.0
        for s in range(3):
            np.testing.assert_array_equal(hists[s, c], expected)
    assert [int(np.argmax(hists[0, c])) for c in range(3)] == [15, 2, 7]


def test_location_uses_unshifted_truncated_start():
    h, w = 40, 50
    labels = np.zeros((h, w), dtype=np.int32)
    labels[10:20, 30:40] = 1  # interior: start ((10+19-15)/2, (30+39-15)/2) = (7, 27)
    labels[0, 0] = 2  # corner: int(-7.5) = -7 (floor would give -8)
    labels[h - 1, w - 1] = 3  # int(31.5) = 31, int(41.5) = 41
    labels[20:23, 0:3] = 4  # x: int(-6.5) = -6; y: int(13.5) = 13
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    loc = superpixel_descriptors(frame, labels, 5)[:, -2:]
    expected = np.array([[12, 17], [7, 27], [-7, -7], [31, 41], [13, -6]]) / [h, w]
    np.testing.assert_array_equal(loc, expected)


@pytest.mark.parametrize("extent", [16, 17, 23, 40])
def test_patch_placement_matches_reference_rule(extent):
    size = 15
    spans = [(lo, hi) for lo in range(extent) for hi in range(lo, extent)]
    boxes = np.array([[lo, lo, hi, hi] for lo, hi in spans], dtype=np.int64)
    starts, corners = place_patches(boxes, size, extent, extent)
    for (lo, hi), start, corner in zip(spans, starts, corners, strict=True):
        ref_start, first, end = oracle.patch_span(lo, hi, size, extent)
        assert end - first == size and 0 <= first and end <= extent - 1
        assert tuple(start) == (ref_start, ref_start) and tuple(corner) == (first, first)


def test_patch_placement_at_each_border():
    size, h, w = 15, 30, 40
    boxes = np.array([
        [0, 10, 2, 12],  # left: x start int(-6.5) = -6, read [0, 15)
        [37, 10, 39, 12],  # right: x start 30, read [24, 39): the last column excluded
        [15, 0, 17, 1],  # top: y start -7, read [0, 15)
        [15, 28, 17, 29],  # bottom: y start 21, read [14, 29): the last row excluded
        [15, 10, 24, 19],  # interior, not shifted: (7, 12)
    ])
    starts, corners = place_patches(boxes, size, h, w)
    assert starts.tolist() == [[3, -6], [3, 30], [-7, 8], [21, 8], [7, 12]]
    assert corners.tolist() == [[3, 0], [3, 24], [0, 8], [14, 8], [7, 12]]


def test_border_patches_never_see_last_row_or_column():
    h, w = 30, 40
    frame = np.zeros((h, w, 3), dtype=np.uint8)
    frame[:, w - 1] = 255  # the last column is white, the rest black
    frame[h - 1, :] = 255  # and so is the last row
    labels = np.zeros((h, w), dtype=np.int32)
    labels[:, w - 3:] = 1  # touches the right border
    labels[h - 3:, :w - 3] = 2  # touches the bottom border
    desc = superpixel_descriptors(frame, labels, 3)
    for s in (1, 2):
        red = desc[s, 54:74]
        assert red[0] == 1.0 and red[1:].sum() == 0.0  # only black pixels read


# -- batch --------------------------------------------------------------------------------


def test_batch_concatenates_frames():
    rng = np.random.default_rng(5)
    frames = np.stack([random_frame(rng, 32, 40, k) for k in ("noise", "smooth", "noise")])
    labels_and_counts = [voronoi_labels(rng, 32, 40, m) for m in (5, 9, 3)]
    labels = np.stack([lab for lab, _ in labels_and_counts])
    counts = [n for _, n in labels_and_counts]
    desc, offsets = superpixel_descriptors_batch(frames, labels)
    assert offsets.dtype == np.int64
    assert offsets.tolist() == [0, counts[0], counts[0] + counts[1], sum(counts)]
    assert desc.shape == (sum(counts), 176)
    for i in range(3):
        np.testing.assert_array_equal(desc[offsets[i]:offsets[i + 1]],
                                      superpixel_descriptors(frames[i], labels[i], counts[i]))
    lab = np.stack([rgb2lab(f) for f in frames])
    desc_lab, _ = superpixel_descriptors_batch(frames, labels, counts, lab=lab)
    np.testing.assert_array_equal(desc_lab, desc)


# -- bad input ------------------------------------------------------------------------------


def _good():
    frame = np.zeros((20, 20, 3), dtype=np.uint8)
    labels = np.zeros((20, 20), dtype=np.int32)
    labels[10:] = 1
    return frame, labels


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda f, lab: (f.astype(np.float64), lab, 2, {}), "uint8 RGB"),
        (lambda f, lab: (f[..., 0], lab, 2, {}), "uint8 RGB"),
        (lambda f, lab: (f[:15, :15], lab[:15, :15], 2, {}), "at least 16x16"),
        (lambda f, lab: (f, lab[:, :19], 2, {}), "frame's shape"),
        (lambda f, lab: (f, lab.astype(np.float32), 2, {}), "integers"),
        (lambda f, lab: (f, lab - 1, 2, {}), r"\[0, 2\)"),
        (lambda f, lab: (f, lab, 1, {}), r"\[0, 1\)"),
        (lambda f, lab: (f, lab * 2, 3, {}), "no pixel"),
        (lambda f, lab: (f, lab, 0, {}), "positive integer"),
        (lambda f, lab: (f, lab, 2, {"lab": np.zeros((20, 19, 3))}), "lab"),
    ],
)
def test_bad_input_raises(mutate, match):
    frame, labels, n, kwargs = mutate(*_good())
    # A broken array contract is the caller's bug, not the video's fault: no InputError.
    with pytest.raises(ValueError, match=match) as err:
        superpixel_descriptors(frame, labels, n, **kwargs)
    assert not isinstance(err.value, InputError)


def test_batch_bad_input_raises():
    frame, labels = _good()
    for args, message in (((np.stack([frame, frame]), labels[None]), "same length"),
                          ((frame[None], labels[None], [2, 2]), "one positive count per frame")):
        with pytest.raises(ValueError, match=message) as err:
            superpixel_descriptors_batch(*args)
        assert not isinstance(err.value, InputError)


def test_pairwise_sum_is_numpys():
    rng = np.random.default_rng(0)
    for n in (1, 7, 8, 54, 128, 129, 150, 1000, 4099):
        a = rng.random(n) * 10.0 ** rng.uniform(-8, 8, n)
        assert pairwise_sum(a) == np.sum(a)
