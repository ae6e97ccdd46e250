"""SLIC superpixels (spec section 3): the C++ kernel against scikit-image's ``slic``.

Agreement with the oracle (scikit-image 0.26, which computes in float64 where the
kernel uses float32) on real frames resized to 650 px and on random smooth frames: the
same number of superpixels within 2%, and, matching each superpixel to the oracle's one
it overlaps most, at least 99.5% of the pixels agree. Measured here: 99.97% to 100%,
most frames identical label for label. The pieces that are discrete are checked
exactly: the pruned k-means step against an exhaustive float32 search, the
connectivity pass against scikit-image's own kernel, the seed grid against
``skimage.util.regular_grid``.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.color import rgb2lab
from skimage.segmentation._slic import _enforce_label_connectivity_cython
from skimage.util import regular_grid as skimage_regular_grid

from fastunlc._kernels.cpu import slic as _slic
from fastunlc.config import REFERENCE, UNLCConfig
from fastunlc.reference import superpixels as oracle
from fastunlc.superpixels import (
    _colour_tables,
    _grid,
    gaussian_weights,
    regular_grid,
    slic_superpixels,
    slic_superpixels_batch,
)
from fastunlc.video import resize_frame, working_size

from .helpers import read_video_frames

MIN_AGREEMENT = 0.995
COUNT_TOLERANCE = 0.02


def matched_agreement(labels: np.ndarray, reference: np.ndarray) -> float:
    """Share of pixels whose reference label is the one their superpixel overlaps most."""
    table = np.zeros((labels.max() + 1, reference.max() + 1), np.int64)
    np.add.at(table, (labels.ravel(), reference.ravel()), 1)
    return table.max(axis=1).sum() / labels.size


def assert_agrees(frame: np.ndarray, config: UNLCConfig = REFERENCE) -> tuple[float, float]:
    labels, n = slic_superpixels(frame, config)
    expected, n_expected = oracle.slic_superpixels(frame, config)
    assert abs(n - n_expected) <= COUNT_TOLERANCE * n_expected
    agreement = min(matched_agreement(labels, expected), matched_agreement(expected, labels))
    assert agreement >= MIN_AGREEMENT
    return agreement, float(np.mean(labels == expected))


def assert_valid(labels: np.ndarray, n: int, shape: tuple[int, int]) -> None:
    assert labels.dtype == np.int32 and labels.shape == shape
    assert isinstance(n, int) and labels.min() == 0 and labels.max() == n - 1
    assert np.all(np.bincount(labels.ravel(), minlength=n) > 0)


def at_650(frame: np.ndarray) -> np.ndarray:
    """``frame`` resized to 650 px on its longer side (the pipeline's working size; smaller
    photos are enlarged here too)."""
    h, w = frame.shape[:2]
    if max(h, w) > 650:
        return resize_frame(frame, working_size(h, w, 650))
    scale = 650 / max(h, w)
    return np.ascontiguousarray(cv2.resize(frame, (round(w * scale), round(h * scale)),
                                           interpolation=cv2.INTER_LINEAR))


@pytest.fixture(scope="module")
def real_frames(opencv_data) -> dict[str, np.ndarray]:
    """Real footage and photos at 650 px on the longer side."""
    frames = {}
    for clip, index in (("vtest.avi", 0), ("vtest.avi", 300), ("Megamind.avi", 50)):
        frames[f"{clip}:{index}"] = at_650(
            read_video_frames(opencv_data / clip, index, 1)[0])
    for photo in ("baboon.jpg", "fruits.jpg", "building.jpg"):
        frames[photo] = at_650(cv2.imread(str(opencv_data / photo))[:, :, ::-1])
    return frames


def smooth_frame(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Random blobs of colour: noise blurred at several scales, stretched to 0..255."""
    noise = rng.random((h, w, 3))
    frame = sum(ndi.gaussian_filter(noise, (s, s, 0)) * s for s in (2, 6, 15))
    frame -= frame.min()
    return (255 * frame / frame.max()).astype(np.uint8)


def test_agrees_with_scikit_image_on_real_frames(real_frames):
    exact = []
    for name, frame in real_frames.items():
        assert max(frame.shape[:2]) == 650, name
        _, identical = assert_agrees(frame)
        exact.append(identical)
    # Most real frames come out identical, label for label.
    assert np.mean(np.array(exact) == 1.0) >= 0.5


@pytest.mark.parametrize("shape", [(240, 320), (487, 650), (301, 199)])
def test_agrees_with_scikit_image_on_random_smooth_frames(shape):
    assert_agrees(smooth_frame(np.random.default_rng(sum(shape)), *shape))


@pytest.mark.parametrize("shape", [(33, 40), (35, 61), (15, 20), (5, 7), (1, 50), (200, 3)])
def test_small_and_odd_sizes_equal_scikit_image(shape):
    """Down to frames with fewer pixels than n_segments (every pixel a seed)."""
    frame = smooth_frame(np.random.default_rng(7), *shape)
    labels, n = slic_superpixels(frame)
    expected, n_expected = oracle.slic_superpixels(frame)
    assert_valid(labels, n, shape)
    assert n == n_expected
    np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize("value", [0, 128, 255])
def test_constant_frames_give_the_seed_grid(value):
    """No contrast, no NaN: slic rescales a constant frame to 0 and the superpixels are the
    seeds' cells, as scikit-image's."""
    frame = np.full((120, 160, 3), value, np.uint8)
    labels, n = slic_superpixels(frame)
    expected, n_expected = oracle.slic_superpixels(frame)
    assert_valid(labels, n, frame.shape[:2])
    assert n == n_expected == len(_grid(120, 160, REFERENCE).centres)
    np.testing.assert_array_equal(labels, expected)


def test_labels_are_contiguous_and_4_connected(real_frames):
    for name in ("vtest.avi:0", "baboon.jpg"):
        labels, n = slic_superpixels(real_frames[name])
        assert_valid(labels, n, real_frames[name].shape[:2])
        boxes = ndi.find_objects(labels + 1)
        for k, box in enumerate(boxes):
            _, n_parts = ndi.label(labels[box] == k)
            assert n_parts == 1, (name, k)


def test_batch_threads_and_repeats_give_the_same_labels(real_frames, monkeypatch):
    frames = np.stack([real_frames["vtest.avi:0"], real_frames["vtest.avi:300"]] * 2)
    single = [slic_superpixels(f) for f in frames]
    threads = _slic.max_threads()
    for n_threads in sorted({1, 2, threads}):
        # The batch runs one workspace per thread, min(max_threads(), frames) of them.
        monkeypatch.setattr(_slic, "max_threads", lambda n=n_threads: n)
        labels, counts = slic_superpixels_batch(frames)
        assert labels.dtype == np.int32 and counts.dtype == np.int64
        assert labels.shape == frames.shape[:3] and counts.shape == (len(frames),)
        for i, (expected, n) in enumerate(single):
            np.testing.assert_array_equal(labels[i], expected)
            assert counts[i] == n


def test_config_parameters_are_used(real_frames):
    frame = real_frames["fruits.jpg"][:240, :320]
    config = UNLCConfig(n_segments=150, slic_compactness=20.0, slic_max_iter=5, slic_sigma=2.0)
    assert_agrees(frame, config)
    assert slic_superpixels(frame, config)[1] < slic_superpixels(frame)[1]


@pytest.mark.parametrize("bad", [
    np.zeros((20, 30, 3)),
    np.zeros((20, 30, 3), np.uint16),
    np.zeros((20, 30), np.uint8),
    np.zeros((20, 30, 4), np.uint8),
    np.zeros((0, 30, 3), np.uint8),
    [[[0, 0, 0]]],
])
def test_bad_frames_are_refused(bad):
    with pytest.raises(ValueError, match=r"uint8 \(h, w, 3\)"):
        slic_superpixels(bad)


def test_bad_batches_are_refused():
    with pytest.raises(ValueError, match=r"uint8 \(n, h, w, 3\)"):
        slic_superpixels_batch(np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(ValueError, match=r"uint8 \(n, h, w, 3\)"):
        slic_superpixels_batch(np.zeros((2, 20, 30, 3), np.float32))


@pytest.mark.parametrize("shape", [(1, 487, 650), (1, 33, 40), (1, 15, 20), (1, 2, 900),
                                   (1, 1, 1), (1, 650, 650), (1, 100, 7)])
@pytest.mark.parametrize("n_points", [1, 50, 400, 391, 5000])
def test_seed_grid_is_scikit_images(shape, n_points):
    starts, steps = regular_grid(shape, n_points)
    slices = skimage_regular_grid(shape, n_points)
    assert [s.start or 0 for s in slices] == list(starts)
    assert [s.step or 1 for s in slices] == list(steps)


def test_gaussian_kernel_is_scipys():
    impulse = np.zeros(101)
    impulse[50] = 1.0
    response = ndi.gaussian_filter1d(impulse, 5.0, truncate=4.0)
    weights = gaussian_weights(5.0)
    assert len(weights) == 41
    np.testing.assert_allclose(weights, response[30:71], rtol=0, atol=1e-16)
    np.testing.assert_array_equal(gaussian_weights(0.0), [1.0])


def kernel_image(frame: np.ndarray, config: UNLCConfig = REFERENCE):
    """The kernel's smoothed CIELAB / compactness, tiled and raster, and its workspace."""
    h, w = frame.shape[:2]
    grid = _grid(h, w, config)
    lab, image, distance, labels, _, boxes = (a[0] for a in _slic.workspace(h, w, 1))
    _slic.lab_rows(frame, _colour_tables(frame[None])[0], lab, 0, h)
    r = len(grid.weights) // 2
    _slic.smooth_rows(lab, grid.weights, grid.scale, _slic.reflect_table(h, r),
                      _slic.reflect_table(w, r), image, 0, h)
    _slic.colour_boxes(image, h, w, boxes)
    b, t = image.shape[:2]
    raster_image = (image.reshape(b, t, 3, _slic.BAND, _slic.TILE).transpose(2, 0, 3, 1, 4)
                    .reshape(3, b * _slic.BAND, t * _slic.TILE)[:, :h, :w])
    return grid, image, raster_image, boxes, distance, labels


def untiled(labels: np.ndarray, h: int, w: int) -> np.ndarray:
    b, t = labels.shape[:2]
    return (labels.reshape(b, t, _slic.BAND, _slic.TILE).transpose(0, 2, 1, 3)
            .reshape(b * _slic.BAND, t * _slic.TILE)[:h, :w])


@pytest.mark.parametrize("shape", [(487, 650), (30, 37), (9, 12)])
def test_smoothed_lab_matches_scikit_image_and_scipy(real_frames, shape):
    """slic's preprocessing: rescale to [0, 1], rgb2lab, gaussian (mode 'reflect', which
    repeats for lines shorter than the kernel), / compactness; float32 tolerance."""
    frame = real_frames["fruits.jpg"][:shape[0], :shape[1]]
    image = frame / 255.0
    image = (image - image.min()) / (image.max() - image.min())
    expected = ndi.gaussian_filter(rgb2lab(image), (5, 5, 0), mode="reflect") / 10.0
    _, _, smoothed, _, _, _ = kernel_image(np.ascontiguousarray(frame))
    np.testing.assert_allclose(smoothed, expected.transpose(2, 0, 1), rtol=0, atol=2e-5)


def exhaustive_step(image, centres, windows, spatial_weight, labels):
    """One assignment step, every centre over its whole window, in float32 with the
    kernel's operation order: the first centre at the smallest distance wins."""
    h, w = labels.shape
    best = np.full((h, w), np.inf, np.float32)
    labels = labels.copy()
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    for k, (y0, y1, x0, x1) in enumerate(windows):
        if y1 <= y0:
            continue
        cy, cx, cl, ca, cb = centres[k]
        dy = cy - ys[y0:y1]
        dx = cx - xs[:, x0:x1]
        d = (dy * dy + dx * dx) * spatial_weight
        colour = (image[0, y0:y1, x0:x1] - cl) ** 2
        colour = colour + (image[1, y0:y1, x0:x1] - ca) ** 2
        colour = colour + (image[2, y0:y1, x0:x1] - cb) ** 2
        d = d + colour
        closer = d < best[y0:y1, x0:x1]
        best[y0:y1, x0:x1][closer] = d[closer]
        labels[y0:y1, x0:x1][closer] = k
    return labels


@pytest.mark.parametrize("source", ["vtest.avi:0", "baboon.jpg", "noise", "tiny"])
def test_pruned_kmeans_is_the_exhaustive_search(real_frames, source):
    """Every step's labels equal the exhaustive search's bit for bit, and the integer
    centre sums equal sums over the new labels."""
    rng = np.random.default_rng(3)
    frame = {"noise": rng.integers(0, 256, (41, 53, 3), dtype=np.uint8),
             "tiny": smooth_frame(rng, 13, 70)}.get(source)
    frame = real_frames[source][:200, :260] if frame is None else frame
    h, w = frame.shape[:2]
    grid, image, raster_image, boxes, distance, labels = kernel_image(frame)
    centres = grid.centres.copy()
    alive = np.ones(len(centres), bool)
    windows = np.empty((len(centres), 4), np.int64)
    sums = np.zeros((len(centres), 6), np.int64)
    labels[:] = -1
    ys, xs = np.mgrid[:h, :w]
    fixed = (raster_image.astype(np.float64) * _slic.FIXED_ONE).astype(np.int64)
    for step in range(10):
        _slic.centre_windows(centres, alive, grid.windows, h, w, windows)
        expected = exhaustive_step(raster_image, centres, windows, grid.spatial_weight,
                                   untiled(labels, h, w))
        _slic.kmeans_step(image, boxes, centres, windows, grid.spatial_weight, h, w,
                          grid.guess, step == 0, distance, labels, sums)
        got = untiled(labels, h, w)
        np.testing.assert_array_equal(got, expected, err_msg=f"step {step}")
        for c, values in enumerate([np.ones_like(ys), ys, xs, *fixed]):
            np.testing.assert_array_equal(
                sums[:, c], np.bincount(got.ravel(), values.ravel(), len(centres)).astype(
                    np.int64) if c < 3 else ndi.sum_labels(values, got, np.arange(len(centres))))
        _slic.update_centres(sums, centres, alive)


def test_connectivity_pass_is_scikit_images():
    rng = np.random.default_rng(11)
    for trial in range(150):
        h, w = rng.integers(1, 48, 2)
        n_labels = int(rng.integers(1, 10))
        if trial % 2:
            blocks = rng.integers(0, n_labels, (h // 4 + 1, w // 4 + 1))
            labels = np.kron(blocks, np.ones((4, 4), int))[:h, :w]
        else:
            labels = rng.integers(0, n_labels, (h, w))
        min_size, max_size = int(rng.integers(0, 30)), int(rng.integers(1, 80))
        expected = _enforce_label_connectivity_cython(
            np.ascontiguousarray(labels[None], dtype=np.intp), min_size, max_size,
            start_label=0)[0]
        out = np.empty((h, w), np.int32)
        n = _slic.enforce_connectivity(np.ascontiguousarray(labels, np.int32), min_size,
                                       max_size, out)
        np.testing.assert_array_equal(out, expected)
        assert n == expected.max() + 1
