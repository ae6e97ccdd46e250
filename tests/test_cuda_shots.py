"""CUDA CIELAB, shot features and KTS against the CPU backend (Numba's simulator without a GPU).

Tolerances, and why:

- CIELAB to 1e-12 absolute: the GPU computes scikit-image's formula per pixel with the
  CPU's rounding (exact tables, the BLAS's FMAs), all but ``cbrt``, which may be off by an
  ulp (libdevice against NumPy's), about 6e-14 in a or b. The simulator uses NumPy's
  ``cbrt`` and is bit-exact on x86-64 OpenBLAS.
- Shot features exactly: counts are integers, and no colour's L, a or b lies within the
  CIELAB error of a bin edge except black and white, which are exact.
- Change points exactly: scatters differ from the CPU's in the last bits only (their
  products are summed in another order), far below the gaps between segmentations' costs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numba import cuda

from fastunlc import shots
from fastunlc._kernels.cuda import colour as gpu_colour
from fastunlc._kernels.cuda import shots as gpu_shots
from fastunlc.colour import rgb2lab

from .helpers import read_video_frames

LAB_TOL = 1e-12


def with_black_and_white(frames: np.ndarray) -> np.ndarray:
    """``frames`` (..., h, w, 3) with pure black and white pixels, the two colours whose L
    lies on a bin edge (0 and 100), and a grey ramp."""
    frames = frames.copy()
    frames[..., 0, 0, :] = 0
    frames[..., 0, 1, :] = 255
    frames[..., 1, 1:5, :] = np.array([1, 2, 128, 254], np.uint8)[:, None]
    return frames


@pytest.fixture(scope="module")
def real_frames(opencv_data: Path) -> np.ndarray:
    """Two street frames and two film frames, shrunk to 20 x 24."""
    return np.concatenate([
        read_video_frames(opencv_data / "vtest.avi", 0, 2, size=(20, 24)),
        read_video_frames(opencv_data / "Megamind.avi", 30, 2, size=(20, 24))])


# -- CIELAB -----------------------------------------------------------------------------


def test_rgb2lab_matches_cpu_on_random_colours() -> None:
    rng = np.random.default_rng(0)
    rgb = with_black_and_white(rng.integers(0, 256, (2, 4, 9, 3), dtype=np.uint8))
    lab = gpu_colour.rgb2lab(rgb)
    assert lab.shape == rgb.shape and lab.dtype == np.float64
    np.testing.assert_allclose(lab.copy_to_host(), rgb2lab(rgb), rtol=0, atol=LAB_TOL)


def test_rgb2lab_matches_cpu_on_a_real_frame(real_frames: np.ndarray) -> None:
    frame = real_frames[0, ::2, ::2]  # 10 x 12
    lab = gpu_colour.rgb2lab(cuda.to_device(np.ascontiguousarray(frame))).copy_to_host()
    np.testing.assert_allclose(lab, rgb2lab(frame), rtol=0, atol=LAB_TOL)
    assert 0 < lab[..., 0].min() and lab[..., 0].max() < 100


@pytest.mark.parametrize("make, match", [
    (lambda: np.zeros((4, 3)), "uint8"),
    (lambda: np.zeros((4, 4), np.uint8), "uint8"),
    (lambda: cuda.to_device(np.zeros((4, 6, 3), np.uint8))[:, ::2], "C-contiguous"),
])
def test_rgb2lab_bad_input(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gpu_colour.rgb2lab(make())


# -- shot features ----------------------------------------------------------------------


@pytest.mark.parametrize("bins", [40, 7])
def test_features_match_cpu_on_random_frames(bins: int) -> None:
    rng = np.random.default_rng(bins)
    frames = with_black_and_white(rng.integers(0, 256, (3, 16, 20, 3), dtype=np.uint8))
    features = gpu_shots.shot_features(frames, bins)
    assert features.shape == (3, 6 * bins) and features.dtype == np.float64
    features = features.copy_to_host()
    np.testing.assert_array_equal(features, shots.shot_features(frames, bins))
    # R, G, B count every pixel: each sums to 1.
    np.testing.assert_allclose(features[:, :3 * bins].reshape(3, 3, bins).sum(axis=2), 1.0)


def test_features_match_cpu_on_real_frames_on_a_stream(real_frames: np.ndarray) -> None:
    stream = cuda.stream()
    frames = cuda.to_device(real_frames, stream=stream)
    features = gpu_shots.shot_features(frames, 40, stream=stream).copy_to_host(stream=stream)
    np.testing.assert_array_equal(features, shots.shot_features(real_frames, 40))


def test_features_of_no_frames_and_bad_input() -> None:
    assert gpu_shots.shot_features(np.zeros((0, 8, 8, 3), np.uint8), 5).shape == (0, 30)
    with pytest.raises(ValueError, match="uint8"):
        gpu_shots.shot_features(np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        gpu_shots.shot_features(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="bins"):
        gpu_shots.shot_features(np.zeros((2, 8, 8, 3), np.uint8), 0)


# -- KTS --------------------------------------------------------------------------------


def planted(rng: np.random.Generator, lengths: list[int], d: int) -> np.ndarray:
    """Rows of ``len(lengths)`` segments, each a random level plus noise."""
    levels = np.repeat(rng.random((len(lengths), d)), lengths, axis=0)
    return levels + 0.08 * rng.standard_normal(levels.shape)


def test_kts_matches_cpu_on_noisy_features() -> None:
    rng = np.random.default_rng(1)
    x = planted(rng, [9, 5, 12, 6], 10)
    for m, vmax in [(5, 0.6), (3, 0.05), (4, 4.0)]:
        expected = shots.kts_change_points(x, m, vmax)
        np.testing.assert_array_equal(gpu_shots.change_points(x, m, vmax), expected)
    assert shots.kts_change_points(x, 5, 0.6).tolist() == [9, 14, 26]


def test_kts_matches_cpu_on_a_real_clip_with_a_cut(opencv_data: Path) -> None:
    street = read_video_frames(opencv_data / "vtest.avi", 0, 20, size=(24, 32))
    film = read_video_frames(opencv_data / "Megamind.avi", 0, 16, size=(24, 32))
    features = shots.shot_features(np.concatenate([street, film]), bins=10)
    device = cuda.to_device(features)
    for m, vmax in [(4, 0.6), (4, 0.02)]:
        expected = shots.kts_change_points(features, m, vmax)
        assert 20 in expected
        np.testing.assert_array_equal(gpu_shots.change_points(device, m, vmax), expected)


def test_kts_over_several_blocks_of_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a tiny scatter budget the ends come in blocks of 16 rows (three here)."""
    monkeypatch.setattr(gpu_shots, "_SCATTER_ELEMENTS", 1)
    x = planted(np.random.default_rng(2), [10, 14, 12], 6)
    expected = shots.kts_change_points(x, 4, 0.3)
    assert expected.tolist() == [10, 24]
    np.testing.assert_array_equal(gpu_shots.change_points(x, 4, 0.3), expected)


@pytest.mark.parametrize("n, m", [(1, 3), (3, 5), (6, 0)])
def test_kts_few_frames_and_no_change_point(n: int, m: int) -> None:
    x = planted(np.random.default_rng(n), [n], 4)
    np.testing.assert_array_equal(gpu_shots.change_points(x, m, 0.0),
                                  shots.kts_change_points(x, m, 0.0))


def test_kts_identical_frames() -> None:
    x = np.ones((8, 5))
    assert gpu_shots.change_points(x, 3, 0.6).size == 0 == shots.kts_change_points(
        x, 3, 0.6).size


@pytest.mark.parametrize("features, m, vmax, match", [
    (np.full((4, 3), np.nan), 2, 0.5, "finite"),
    (np.ones(4), 2, 0.5, r"\(N, d\)"),
    (np.ones((0, 3)), 2, 0.5, r"\(N, d\)"),
    (np.ones((4, 3)), -1, 0.5, "max_change_points"),
    (np.ones((4, 3)), 2, float("inf"), "vmax"),
    (np.ones((4, 3), complex), 2, 0.5, "real"),
])
def test_kts_bad_input(features: np.ndarray, m: int, vmax: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gpu_shots.change_points(features, m, vmax)
