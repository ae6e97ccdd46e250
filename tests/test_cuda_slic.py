"""The CUDA SLIC kernels (fastunlc._kernels.cuda.slic) against the CPU backend.

Without a GPU they run on Numba's CUDA simulator, so inputs are tiny: batches of a few
frames of at most 24 x 32 pixels and a handful of superpixels. Every comparison is
exact (labels, counts, the smoothed CIELAB image bit for bit): the CUDA kernels repeat
the CPU kernels' float32 operations in the same order, and sum centres as integers.
The simulator computes with NumPy, which never fuses a multiply and an add, while a GPU
would unless told not to: a last test compiles the kernels to PTX with NVVM and checks
that no product is left to be fused.

Real frames are vtest.avi's, from the recorded reference (tests/data).
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from numba import cuda
from scipy import ndimage as ndi

from fastunlc._kernels.cpu import slic as cpu_slic
from fastunlc._kernels.cuda import slic as gpu_slic
from fastunlc.config import REFERENCE
from fastunlc.superpixels import _colour_tables, _grid, slic_superpixels_batch

DATA = Path(__file__).parent / "data"
# About ten superpixels, little smoothing, fewer k-means steps than the reference's 10
# (the simulator's time goes with the steps).
SMALL = dataclasses.replace(REFERENCE, n_segments=10, slic_sigma=1.0, slic_max_iter=6)


def smooth_frame(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Random blobs of colour: noise blurred at a few scales, stretched to 0..255."""
    noise = rng.random((h, w, 3))
    frame = sum(ndi.gaussian_filter(noise, (s, s, 0)) * s for s in (1, 3, 6))
    frame -= frame.min()
    return (255 * frame / frame.max()).astype(np.uint8)


def real_frames(h: int, w: int) -> np.ndarray:
    """Two vtest.avi frames (96 x 128 in the recorded reference), one shrunk to
    ``h x w`` by area averaging, one cropped to it (people in the street)."""
    frames = np.load(DATA / "reference_vtest.npz")["frames"]
    shrunk = cv2.resize(frames[0], (w, h), interpolation=cv2.INTER_AREA)
    return np.stack([shrunk, frames[9][40:40 + h, 30:30 + w]])


def frames_of(h: int, w: int, seed: int) -> np.ndarray:
    """Two random frames (smooth blobs, uniform noise) and two real ones."""
    rng = np.random.default_rng(seed)
    return np.stack([smooth_frame(rng, h, w), rng.integers(0, 256, (h, w, 3), np.uint8),
                     *real_frames(h, w)])


def cpu_image(frame: np.ndarray, config) -> np.ndarray:
    """The CPU kernel's smoothed CIELAB / compactness of ``frame``, (3, h, w) float32."""
    h, w = frame.shape[:2]
    grid = _grid(h, w, config)
    lab, image = (a[0] for a in cpu_slic.workspace(h, w, 1)[:2])
    cpu_slic.lab_rows(frame, _colour_tables(frame[None])[0], lab, 0, h)
    r = len(grid.weights) // 2
    cpu_slic.smooth_rows(lab, grid.weights, grid.scale, cpu_slic.reflect_table(h, r),
                         cpu_slic.reflect_table(w, r), image, 0, h)
    b, t = image.shape[:2]
    return (image.reshape(b, t, 3, cpu_slic.BAND, cpu_slic.TILE).transpose(2, 0, 3, 1, 4)
            .reshape(3, b * cpu_slic.BAND, t * cpu_slic.TILE)[:, :h, :w])


@pytest.mark.parametrize(("shape", "sigma", "compactness"),
                         [((20, 24), 0.0, 1.0), ((12, 16), 5.0, 10.0), ((16, 24), 1.0, 10.0)])
def test_smoothed_lab_is_the_cpu_kernels(shape, sigma, compactness):
    """Bit for bit: the CIELAB conversion alone (no blur, compactness 1), the reference's
    sigma (a kernel radius of 20, longer than the frame's sides: the borders reflect
    more than once) and a small one; a constant frame (no colour range to rescale by)
    among the inputs."""
    config = dataclasses.replace(REFERENCE, slic_sigma=sigma, slic_compactness=compactness)
    frames = frames_of(*shape, seed=1)
    frames[1] = 77
    image = gpu_slic.smoothed_lab(frames, config).copy_to_host()
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(image[:, i], cpu_image(frame, config), err_msg=i)


def test_superpixels_equal_the_cpu_backend():
    """Labels and counts equal, frame by frame, on random and real frames."""
    frames = frames_of(20, 28, seed=2)
    labels, counts = gpu_slic.slic_superpixels_batch(frames, SMALL)
    expected, expected_counts = slic_superpixels_batch(frames, SMALL)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, expected_counts)
    np.testing.assert_array_equal(labels.copy_to_host(), expected)


@pytest.mark.parametrize("shape", [(5, 7), (1, 50), (30, 3)])
def test_reference_config_on_frames_smaller_than_its_grid(shape):
    """n_segments 400 on frames of fewer pixels: every pixel a seed (each window a few
    pixels, cells of one pixel)."""
    frame = smooth_frame(np.random.default_rng(3), *shape)[None]
    labels, counts = gpu_slic.slic_superpixels_batch(frame, REFERENCE)
    expected, expected_counts = slic_superpixels_batch(frame, REFERENCE)
    np.testing.assert_array_equal(counts, expected_counts)
    np.testing.assert_array_equal(labels.copy_to_host(), expected)


def test_full_cells_fall_back_to_every_centre():
    """Cell lists of one entry overflow everywhere, so every pixel scans every centre:
    the k-means labels are those of the listed search."""
    frames = frames_of(12, 16, seed=4)[[0, 2]]
    config = dataclasses.replace(SMALL, n_segments=8)
    plan = gpu_slic._plan(12, 16, config)
    results = []
    for capacity in (1, gpu_slic.CELL_CAPACITY):
        image = gpu_slic.smoothed_lab(frames, config)
        labels = cuda.to_device(np.full((2, 12, 16), -1, np.int32))
        gpu_slic._kmeans(image, plan, 3, labels, 0, capacity=capacity)
        results.append(labels.copy_to_host())
    assert results[1].min() >= 0 and len(np.unique(results[1])) > 4
    np.testing.assert_array_equal(results[0], results[1])


def crafted_labels(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Label images the connectivity pass must get right: label noise (many one-pixel
    components), 3 x 3 blocks, a comb (one component larger than max_size whose raster
    scan cuts it into several pieces) and a lone corner pixel before small pieces (the
    labels scikit-image hands out before its first big component)."""
    noise = rng.integers(0, 4, (h, w))
    blocks = np.kron(rng.integers(0, 5, (h // 3 + 1, w // 3 + 1)), np.ones((3, 3), int))
    comb = np.zeros((h, w), int)
    comb[1:, 1::2] = 1
    corner = np.kron(rng.integers(0, 3, (h // 2 + 1, w // 2 + 1)), np.ones((2, 2), int))
    corner[0, 0] = 9
    return np.stack([noise, blocks[:h, :w], comb, corner[:h, :w]]).astype(np.int32)


@pytest.mark.parametrize(("min_size", "max_size"), [(0, 1000), (6, 40), (4, 9), (12, 5)])
def test_connectivity_is_the_cpu_kernels(min_size, max_size):
    """Exact, on crafted label images: no merging, the SLIC-like bounds, pieces cut at
    max_size, and min_size above max_size (cut pieces that are merged too)."""
    labels = crafted_labels(np.random.default_rng(min_size), 12, 14)
    connected, counts = gpu_slic.enforce_connectivity(labels, min_size, max_size)
    connected = connected.copy_to_host()
    for i, frame in enumerate(labels):
        expected = np.empty_like(frame)
        n = cpu_slic.enforce_connectivity(frame.copy(), min_size, max_size, expected)
        np.testing.assert_array_equal(connected[i], expected, err_msg=i)
        assert counts[i] == n


def test_device_frames_and_a_stream():
    """Frames already on the GPU, launches on a stream: the host input's result; labels
    stay on the device."""
    frames = frames_of(8, 10, seed=5)[[0, 3]]
    config = dataclasses.replace(SMALL, n_segments=4, slic_max_iter=2)
    stream = cuda.stream()
    labels, counts = gpu_slic.slic_superpixels_batch(cuda.to_device(frames), config,
                                                     stream=stream)
    expected, expected_counts = slic_superpixels_batch(frames, config)
    assert not isinstance(labels, np.ndarray) and isinstance(counts, np.ndarray)
    np.testing.assert_array_equal(labels.copy_to_host(), expected)
    np.testing.assert_array_equal(counts, expected_counts)


@pytest.mark.parametrize("bad", [np.zeros((1, 4, 4, 3), np.float32),
                                 np.zeros((4, 4, 3), np.uint8),
                                 np.zeros((1, 4, 4, 4), np.uint8),
                                 np.zeros((0, 4, 4, 3), np.uint8)])
def test_bad_frames_are_refused(bad):
    with pytest.raises(ValueError, match=r"frames must be a uint8 \(n, h, w, 3\) array"):
        gpu_slic.slic_superpixels_batch(bad)


# A kernel's example arguments for NVVM: their types are all it reads.
_PTX_SCRIPT = """
import re, sys
import numba
import numpy as np
from numba import cuda
from fastunlc._kernels.cuda import slic

a = lambda dtype, *shape: np.zeros(shape, dtype)
f4, i4, i8, u1 = np.float32, np.int32, np.int64, np.uint8
flat = a(i4, 4)
examples = {
    "_frame_range": (a(u1, 1, 2, 2, 3), a(i4, 1, 1, 2)),
    "_colour_tables": (a(i4, 1, 1, 2), a(f4, 1, 256)),
    "_lab": (a(u1, 1, 2, 2, 3), a(f4, 1, 256), a(f4, 3, 1, 2, 2), a(i4, 1, 2, 2)),
    "_blur_columns": (a(f4, 3, 1, 2, 2), (f4(0.25), f4(0.5), f4(0.25)), a(f4, 3, 1, 2, 2)),
    "_blur_rows": (a(f4, 3, 1, 2, 2), (f4(0.25), f4(0.5), f4(0.25)), f4(0.1),
                   a(f4, 3, 1, 2, 2)),
    "_seed_centres": (a(f4, 1, 2, 5), a(i4, 1, 2, 4), a(i8, 1, 2, 6), *[1] * 9),
    "_list_cells": (a(i4, 1, 2, 4), 1, 1, 2, 2, a(i4, 1, 4, 64), a(i4, 1, 4)),
    "_assign": (a(f4, 3, 1, 2, 2), a(f4, 1, 2, 5), a(i4, 1, 2, 4), a(i4, 1, 4, 64),
                a(i4, 1, 4), 1, 1, f4(1), a(i4, 1, 2, 2), a(i8, 1, 2, 6)),
    "_move_centres": (a(i8, 1, 2, 6), a(f4, 1, 2, 5), a(i4, 1, 2, 4), 2, 2, 2, 2),
    "_components_start": (flat,) * 4,
    "_components_join": (flat, 2, 2, flat),
    "_components_flatten": (flat,) * 4,
    "_split_large": (flat, 2, 2, 3, *(flat,) * 5),
    "_small_neighbours": (flat, flat, 2, 2, 1, 3, flat, flat, flat),
    "_number_pieces": (flat, flat, 1, flat, a(i4, 1), a(i4, 1)),
    "_relabel": (flat, flat, flat, flat, a(i4, 1), 1, flat),
}
kernels = {name for name, value in vars(slic).items()
           if hasattr(value, "py_func") and not value.targetoptions["device"]}
assert kernels == set(examples), kernels ^ set(examples)
for name, args in examples.items():
    signature = tuple(numba.typeof(arg) for arg in args)
    ptx, _ = cuda.compile_ptx(getattr(slic, name).py_func, signature, cc=(9, 0))
    body = "\\n".join(line for line in ptx.splitlines() if not line.startswith("//"))
    print(name, len(re.findall(r"\\b(?:fma|mad)\\.rn\\.f(?:32|64)", body)),
          len(re.findall(r"\\bmul\\.f(?:32|64)\\b", body)),
          len(re.findall(r"\\.(?:approx|ftz)\\b", body)))
"""


def test_kernels_leave_no_product_to_fuse():
    """Compiled for a GPU (NVVM, no GPU needed), no kernel fuses a multiply and an add,
    none leaves a plain multiply that ptxas could fuse later, none uses approximate or
    flush-to-zero arithmetic; but for ``_colour_tables``, whose ``pow`` is CUDA's own
    (approximations and fused steps inside, within 2 ulp in float64)."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    root = Path(__file__).parent.parent
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(_PTX_SCRIPT)], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode and re.search(r"libNVVM|NVVM.*not found|nvvm", proc.stderr, re.I):
        pytest.skip(f"NVVM is not available: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = {name: tuple(map(int, rest)) for name, *rest in
              (line.split() for line in proc.stdout.splitlines())}
    assert "_assign" in counts
    del counts["_colour_tables"]
    assert all(found == (0, 0, 0) for found in counts.values()), counts
