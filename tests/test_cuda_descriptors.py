"""CUDA superpixel descriptors against the CPU backend (Numba's simulator without a GPU).

Tolerances, and why: colour histograms, locations and frame offsets exactly (integer
counts; the patch placement is integer arithmetic; CIELAB values never lie within their
error of a bin edge). HOG exactly on the simulator, which rounds as the CPU does (its
``math.atan2`` is the CPU's libm; a cell's float32 sum absorbs the last-bit differences
of Python's ``math.hypot``); to 2.5e-7 absolute on a GPU, where libdevice's ``hypot`` or
``atan2`` an ulp away from libm can round a cell's float32 sum to the neighbouring
float32: at most about 1.2e-7 after normalisation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numba import config, cuda

from fastunlc._kernels.cuda import descriptors as gpu
from fastunlc.config import REFERENCE, UNLCConfig
from fastunlc.descriptors import descriptor_dim, superpixel_descriptors_batch
from fastunlc.superpixels import slic_superpixels_batch

from .helpers import read_video_frames

HOG_TOL = 0.0 if config.ENABLE_CUDASIM else 2.5e-7


def assert_matches_cpu(frames, labels, counts, config: UNLCConfig = REFERENCE, **kwargs):
    """Run both backends; the GPU's inputs may be device arrays (``kwargs``)."""
    host_frames = frames if isinstance(frames, np.ndarray) else frames.copy_to_host()
    host_labels = labels if isinstance(labels, np.ndarray) else labels.copy_to_host()
    expected, expected_offsets = superpixel_descriptors_batch(
        host_frames, host_labels, np.asarray(counts), config)
    got, offsets = gpu.superpixel_descriptors_batch(frames, labels, counts, config, **kwargs)
    assert got.shape == expected.shape == (int(np.sum(counts)), descriptor_dim(config))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(offsets, expected_offsets)
    got = got.copy_to_host()
    n_hog = descriptor_dim(config) - 6 * config.color_bins - 2
    np.testing.assert_allclose(got[:, :n_hog], expected[:, :n_hog], rtol=0, atol=HOG_TOL)
    np.testing.assert_array_equal(got[:, n_hog:], expected[:, n_hog:])
    return got


def cells_and_singles(rng: np.random.Generator, h: int, w: int, n_seeds: int):
    """Contiguous labels: Voronoi cells of random seeds, plus one-pixel superpixels at
    the corners and on a border, whose patches are shifted inside the frame."""
    seeds = rng.integers(0, [h, w], (n_seeds, 2))
    yy, xx = np.mgrid[:h, :w]
    labels = np.argmin((yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2,
                       axis=2)
    for k, (y, x) in enumerate([(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (h // 2, 0)]):
        labels[y, x] = n_seeds + k
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.reshape(h, w).astype(np.int32)
    return labels, int(labels.max()) + 1


def textured(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth ramps with noise, and pure black and white pixels (L on a bin edge)."""
    yy, xx = np.mgrid[:h, :w]
    frame = np.stack([xx * 255 // (w - 1), yy * 255 // (h - 1), ((xx + yy) * 9) % 256], axis=2)
    frame = (frame // 2 + rng.integers(0, 60, frame.shape)).astype(np.uint8)
    frame[rng.random((h, w)) < 0.05] = 255
    frame[rng.random((h, w)) < 0.05] = 0
    return frame


@pytest.fixture(scope="module")
def real_shot(opencv_data: Path):
    """Two street frames shrunk to 20 x 24 and their CPU SLIC superpixels."""
    frames = read_video_frames(opencv_data / "vtest.avi", 0, 2, size=(20, 24))
    labels, counts = slic_superpixels_batch(frames, REFERENCE.replace(n_segments=6))
    return frames, labels, counts


def test_random_frames_match_cpu() -> None:
    rng = np.random.default_rng(0)
    frames = np.stack([rng.integers(0, 256, (20, 24, 3), dtype=np.uint8), textured(rng, 20, 24)])
    first, n_first = cells_and_singles(rng, 20, 24, 3)
    second, n_second = cells_and_singles(rng, 20, 24, 4)
    got = assert_matches_cpu(frames, np.stack([first, second]), [n_first, n_second])
    # L1-normalised HOG and colour histograms (black and white pixels included).
    np.testing.assert_allclose(got[:, :54].sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(got[:, 54:174].reshape(-1, 6, 20).sum(axis=2), 1.0)


def test_real_frames_from_device_arrays_on_a_stream(real_shot) -> None:
    frames, labels, counts = real_shot
    stream = cuda.stream()
    assert_matches_cpu(cuda.to_device(frames, stream=stream),
                       cuda.to_device(labels, stream=stream),
                       cuda.to_device(np.asarray(counts), stream=stream), stream=stream)


@pytest.mark.parametrize("changes", [
    dict(hog_block_norm="L1-sqrt"),
    dict(hog_block_norm="L2"),
    dict(hog_block_norm="L2-Hys", color_bins=7),
    # 225 HOG values: NumPy's pairwise summation splits them (over 128).
    dict(hog_orientations=9, hog_cell=3, hog_block_norm="L2-Hys"),
])
def test_block_norms_and_other_configs_match_cpu(changes: dict, real_shot) -> None:
    frames, labels, counts = real_shot
    config = REFERENCE.replace(**changes)
    got = assert_matches_cpu(frames[:1], labels[:1], counts[:1], config)
    if config.hog_block_norm != "L1-sqrt":  # L2 norms: unit length (before any clipping)
        n_hog = descriptor_dim(config) - 6 * config.color_bins - 2
        np.testing.assert_allclose((got[:, :n_hog] ** 2).sum(axis=1), 1.0, atol=1e-4)


def test_labels_outside_their_frame_or_missing() -> None:
    labels = np.zeros((1, 16, 17), np.int32)
    labels[0, :, 9:] = 1
    frames = np.zeros((1, 16, 17, 3), np.uint8)
    assert_matches_cpu(frames, labels, [2])
    with pytest.raises(ValueError, match="128 pixels have a label outside"):
        gpu.superpixel_descriptors_batch(frames, labels, [1], REFERENCE)
    with pytest.raises(ValueError, match=r"1 labels have no pixel \(first: label 2 of frame 0"):
        gpu.superpixel_descriptors_batch(frames, labels, [3], REFERENCE)


@pytest.mark.parametrize("frames, labels, counts, match", [
    (np.zeros((1, 15, 20, 3), np.uint8), np.zeros((1, 15, 20), np.int32), [1], "16x16"),
    (np.zeros((1, 16, 16, 3), np.float32), np.zeros((1, 16, 16), np.int32), [1], "uint8"),
    (np.zeros((1, 16, 16, 3), np.uint8), np.zeros((1, 16, 15), np.int32), [1], "shape"),
    (np.zeros((1, 16, 16, 3), np.uint8), np.zeros((1, 16, 16)), [1], "integers"),
    (np.zeros((2, 16, 16, 3), np.uint8), np.zeros((2, 16, 16), np.int32), [1], "counts"),
    (np.zeros((1, 16, 16, 3), np.uint8), np.zeros((1, 16, 16), np.int32), [0], "counts"),
])
def test_bad_input(frames, labels, counts, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gpu.superpixel_descriptors_batch(frames, labels, counts, REFERENCE)
