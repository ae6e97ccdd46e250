"""Optical flow stage: pair lists, resizing, the compiled c2f flow against the NumPy
oracle, its packed (SIMD lanes) solver against its one-pair solver bit for bit, its
float32 solver against the float64 one, known displacements for c2f and DIS, threading
and bad input."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage

from fastunlc.config import REFERENCE, UNLCConfig
from fastunlc.flow import DIS_PRESET, flow_pairs, optical_flow, resize_for_flow
from fastunlc.reference import flow as ref

from .helpers import read_video_frames

_C = pytest.importorskip("fastunlc._C", reason="compiled extension fastunlc._C is not built")

ORACLE_TOL = 1e-9
"""Max |C++ float64 flow - NumPy oracle| in pixels. Measured: 1e-13 on the 100 x 100 real
pair (the C++ SOR update is the oracle's with products distributed, which changes only
rounding)."""
PACK = _C.C2F_PACK_WIDTH
"""Pairs the compiled solver runs side by side, one per SIMD lane (8 with AVX-512)."""
PACK32 = _C.C2F_PACK32_WIDTH
"""... and with ``precision="float32"`` (16 with AVX-512)."""
FLOAT32_MAX_EPE = 2e-3
FLOAT32_MEAN_EPE = 1e-4
"""Largest and mean end-point difference (px) allowed between the float32 and the float64
solver. Measured (AVX-512): max 1.5e-4 px, mean 9e-8 px over the 228 pairs of the first
40 vtest frames at 100 x 100; max 2.4e-4 px, mean 1.1e-5 px on the random shots below; up
to 7e-6 px on known translations. (On unrelated random textures, an ill-posed flow, single
pixels move by up to 2 px.)"""
C2F = (REFERENCE.c2f_alpha, REFERENCE.c2f_ratio, REFERENCE.c2f_min_width,
       REFERENCE.c2f_outer_iterations, REFERENCE.c2f_inner_iterations,
       REFERENCE.c2f_sor_iterations)


@pytest.fixture(scope="module")
def vtest(opencv_data: Path) -> np.ndarray:
    """First 12 frames of OpenCV's vtest.avi, RGB uint8 (576, 768)."""
    return read_video_frames(opencv_data / "vtest.avi", count=12)


def smooth_texture(h: int, w: int, seed: int, sigma: float = 1.5) -> np.ndarray:
    """Random RGB texture in [0, 1], smoothed so that its flow is well defined."""
    noise = np.random.default_rng(seed).random((h, w, 3))
    t = ndimage.gaussian_filter(noise, (sigma, sigma, 0))
    return (t - t.min()) / (t.max() - t.min())


def c2f_cpp(a: np.ndarray, b: np.ndarray, *params, threads: int = 1) -> np.ndarray:
    """Float64 flow of one pair, after checking that the float32 output is its rounding."""
    frames, pairs = np.stack([a, b]), np.array([[0, 1]])
    flow = _C.coarse2fine_flow_pairs(frames, pairs, *params, threads, 0, True)[0]
    rounded = _C.coarse2fine_flow_pairs(frames, pairs, *params, threads)[0]
    assert flow.dtype == np.float64 and rounded.dtype == np.float32
    np.testing.assert_array_equal(rounded, flow.astype(np.float32))
    return flow


def c2f_all(frames: np.ndarray, pairs: np.ndarray, params, *, pack: int,
            threads: int = 1) -> np.ndarray:
    """Float64 flow of every pair with the given packing (0: default, 1: one pair at a
    time, PACK: packs only)."""
    return _C.coarse2fine_flow_pairs(frames, pairs, *params, threads, pack, True)


def end_point_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| per pixel (px) of two (..., 2) flows."""
    return np.linalg.norm(a - b, axis=-1)


def assert_bitwise_equal(got: np.ndarray, expected: np.ndarray) -> None:
    """Same bits (so also the same signs of zero), not just equal values."""
    assert got.shape == expected.shape and got.dtype == expected.dtype == np.float64
    differ = got.view(np.uint64) != expected.view(np.uint64)
    assert not differ.any(), (f"{differ.sum()} values differ, "
                              f"max |diff| {np.abs(got - expected).max():.3g}")


# ---------------------------------------------------------------------------------------------
# pairs and resizing
# ---------------------------------------------------------------------------------------------


def test_flow_pairs_known_list():
    assert flow_pairs(4, 2).tolist() == [[0, 1], [0, 2], [1, 0], [1, 2], [1, 3],
                                         [2, 0], [2, 1], [2, 3], [3, 1], [3, 2]]
    pairs = flow_pairs(40, 3)
    assert pairs.dtype == np.int32 and pairs.shape == (228, 2)
    assert len({tuple(p) for p in pairs.tolist()}) == 228
    assert (np.abs(pairs[:, 1] - pairs[:, 0]) <= 3).all() and (pairs[:, 1] != pairs[:, 0]).all()
    assert flow_pairs(1, 3).shape == (0, 2) and flow_pairs(5, 0).shape == (0, 2)
    with pytest.raises(ValueError, match="radius"):
        flow_pairs(5, -1)


def test_resize_for_flow_is_pils_bilinear_and_drops_aspect():
    """The reference's ``scipy.misc.imresize`` is PIL's bilinear resize of the uint8 frame."""
    from PIL import Image

    frames = np.random.default_rng(0).integers(0, 256, (3, 30, 50, 3), dtype=np.uint8)
    small = resize_for_flow(frames, 20)
    assert small.shape == (3, 20, 20, 3) and small.dtype == np.uint8
    for frame, got in zip(frames, small, strict=True):
        want = np.asarray(Image.fromarray(frame).resize((20, 20), Image.Resampling.BILINEAR))
        np.testing.assert_array_equal(got, want)  # bit-exact, not within a tolerance
    with pytest.raises(ValueError, match="uint8"):
        resize_for_flow(frames.astype(np.float32), 20)


def test_resize_for_flow_low_passes_when_shrinking():
    # 1-pixel black/white columns shrunk 9x: a filter whose support scales with the shrink
    # (PIL's) averages them to mid-grey (122..133 here, the edge columns see fewer pixels);
    # OpenCV's INTER_LINEAR samples the 2 pixels nearest each centre and gives 255, 0, 255, ...
    frames = np.zeros((1, 90, 90, 3), dtype=np.uint8)
    frames[:, :, ::2] = 255
    small = resize_for_flow(frames, 10).astype(int)
    assert np.abs(small - 127.5).max() <= 6


def test_resize_for_flow_matches_pil_on_real_frames(vtest):
    from PIL import Image

    small = resize_for_flow(vtest[:4], 100)
    for frame, got in zip(vtest[:4], small, strict=True):
        want = np.asarray(Image.fromarray(frame).resize((100, 100), Image.Resampling.BILINEAR))
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------------------------
# the oracle itself
# ---------------------------------------------------------------------------------------------


def test_reference_pyramid_sizes():
    image = smooth_texture(100, 100, 0)
    widths = [level.shape[1] for level in ref.gaussian_pyramid(image, 0.75, 20)]
    assert widths == [100, 75, 56, 42, 31]  # int(100 * 0.75**i), 5 levels
    assert ref.n_pyramid_levels(24, 0.75, 20) == 1  # never fewer than one


def test_reference_identical_frames_give_zero_flow():
    a = smooth_texture(20, 20, 1)
    np.testing.assert_array_equal(ref.coarse2fine_flow(a, a, min_width=16, n_outer=2, n_sor=3), 0)


# ---------------------------------------------------------------------------------------------
# C++ against the NumPy oracle
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "params"),
    [
        (24, (0.012, 0.75, 16, 7, 1, 30)),  # one pyramid level, reference iterations
        (32, (0.012, 0.75, 10, 3, 1, 10)),  # four levels: 32, 24, 18, 13
        (28, (0.03, 0.6, 8, 2, 2, 8)),  # two inner iterations, other ratio and alpha
    ],
)
def test_c2f_matches_oracle_on_random_texture(size, params):
    a = smooth_texture(size, size, seed=size)
    b = np.clip(np.roll(a, (1, 2), axis=(0, 1)) * 0.9 + 0.05, 0, 1)
    expected = ref.coarse2fine_flow(a, b, *params)
    got = c2f_cpp(a, b, *params)
    assert got.shape == (size, size, 2)
    assert np.abs(expected).max() > 0.5  # the test is not about a zero field
    np.testing.assert_allclose(got, expected, rtol=0, atol=ORACLE_TOL)


def test_c2f_matches_oracle_on_real_pair_at_reference_settings(vtest):
    """The reference's own setting: 100 x 100 frames, reference parameters (~5 s)."""
    small = resize_for_flow(vtest[[2, 4]], 100) / 255.0
    expected = ref.coarse2fine_flow(small[0], small[1], *C2F)
    got = c2f_cpp(small[0], small[1], *C2F)
    assert np.abs(expected).max() > 1.0
    np.testing.assert_allclose(got, expected, rtol=0, atol=ORACLE_TOL)


def test_c2f_matches_oracle_on_non_square_real_pair(vtest):
    small = np.stack([cv2.resize(f, (40, 30), interpolation=cv2.INTER_AREA)
                      for f in vtest[[0, 3]]]) / 255.0
    params = (0.012, 0.75, 12, 3, 1, 12)
    expected = ref.coarse2fine_flow(small[0], small[1], *params)
    np.testing.assert_allclose(c2f_cpp(small[0], small[1], *params), expected, rtol=0,
                               atol=ORACLE_TOL)


# ---------------------------------------------------------------------------------------------
# packed (SIMD lanes) solver against the one-pair solver
# ---------------------------------------------------------------------------------------------


def random_shot(n: int, size: tuple[int, int], seed: int) -> np.ndarray:
    """n frames of a smooth texture drifting by about a pixel per frame, with noise."""
    h, w = size
    rng = np.random.default_rng(seed)
    canvas = smooth_texture(h + 4 * n, w + 4 * n, seed)
    frames = []
    for i in range(n):
        dy, dx = rng.integers(0, 2 * i + 1, size=2)
        frame = canvas[dy:dy + h, dx:dx + w] + rng.normal(0, 0.01, (h, w, 3))
        frames.append(np.clip(frame, 0, 1))
    return np.stack(frames)


@pytest.mark.parametrize(
    ("size", "params"),
    [
        ((24, 24), (0.012, 0.75, 16, 7, 1, 30)),  # one pyramid level, reference iterations
        ((36, 28), (0.012, 0.75, 10, 3, 1, 12)),  # non-square, three levels
        ((30, 30), (0.03, 0.6, 8, 2, 2, 8)),  # two inner iterations, other ratio and alpha
    ],
)
def test_packed_equals_single_pair_bitwise_on_random_frames(size, params):
    frames = random_shot(6, size, seed=sum(size))
    pairs = flow_pairs(6, 2)  # 18 pairs: two full packs and a remainder
    single = c2f_all(frames, pairs, params, pack=1)
    assert np.abs(single).max() > 0.5  # the test is not about a zero field
    assert_bitwise_equal(c2f_all(frames, pairs, params, pack=PACK), single)
    assert_bitwise_equal(c2f_all(frames, pairs, params, pack=0), single)


def test_packed_equals_single_pair_bitwise_on_real_frames(vtest):
    """Reference parameters on real frames: 36 pairs of 8 frames at 48 x 48, and 3 pairs
    at the reference's 100 x 100 in a pack with idle lanes."""
    frames = resize_for_flow(vtest[:8], 48) / 255.0
    pairs = flow_pairs(8, 3)
    single = c2f_all(frames, pairs, C2F, pack=1)
    assert np.abs(single).max() > 1.0
    assert_bitwise_equal(c2f_all(frames, pairs, C2F, pack=PACK), single)
    large = resize_for_flow(vtest[[0, 2, 5]], 100) / 255.0
    pairs = np.array([[0, 1], [1, 2], [2, 0]])
    assert_bitwise_equal(c2f_all(large, pairs, C2F, pack=PACK),
                         c2f_all(large, pairs, C2F, pack=1))


@pytest.mark.parametrize("n_pairs", [1, 2, 3, PACK - 1, PACK, PACK + 1, 2 * PACK + 3])
def test_any_number_of_pairs_gives_the_single_pair_flow(vtest, n_pairs):
    """Fewer pairs than lanes, full packs, remainders: idle lanes change nothing."""
    frames = resize_for_flow(vtest[:8], 32) / 255.0
    params = (0.012, 0.75, 10, 3, 1, 10)
    pairs = flow_pairs(8, 3)[:n_pairs]
    single = c2f_all(frames, pairs, params, pack=1)
    for pack in (0, PACK):
        assert_bitwise_equal(c2f_all(frames, pairs, params, pack=pack), single)


def test_threads_do_not_change_the_packed_flow(vtest):
    frames = resize_for_flow(vtest[:8], 40) / 255.0
    pairs = flow_pairs(8, 3)
    one = c2f_all(frames, pairs, C2F, pack=0, threads=1)
    assert_bitwise_equal(c2f_all(frames, pairs, C2F, pack=0, threads=2), one)
    assert_bitwise_equal(c2f_all(frames, pairs, C2F, pack=1, threads=2), one)


# ---------------------------------------------------------------------------------------------
# float32 lanes against the float64 solver
# ---------------------------------------------------------------------------------------------


def c2f32_all(frames: np.ndarray, pairs: np.ndarray, params, *, pack: int) -> np.ndarray:
    """The float32 solver's flow of every pair, widened to float64."""
    return _C.coarse2fine_flow_pairs(frames, pairs, *params, 1, pack, True, precision="float32")


def assert_float32_close(f32: np.ndarray, f64: np.ndarray) -> None:
    diff = end_point_difference(f32, f64)
    assert diff.max() < FLOAT32_MAX_EPE and diff.mean() < FLOAT32_MEAN_EPE
    assert diff.max() > 0  # the float32 solver did run: float64 would give no difference
    np.testing.assert_array_equal(f32, f32.astype(np.float32))  # float32 values


@pytest.mark.parametrize(
    ("size", "params"),
    [
        ((24, 24), (0.012, 0.75, 16, 7, 1, 30)),  # one pyramid level, reference iterations
        ((36, 28), (0.012, 0.75, 10, 3, 1, 12)),  # non-square, three levels
        ((30, 30), (0.03, 0.6, 8, 2, 2, 8)),  # two inner iterations, other ratio and alpha
    ],
)
def test_float32_lanes_close_to_float64_on_random_frames(size, params):
    frames = random_shot(6, size, seed=sum(size))
    pairs = flow_pairs(6, 2)  # 18 pairs: a full float32 pack and a remainder
    f64 = c2f_all(frames, pairs, params, pack=0)
    assert np.abs(f64).max() > 0.5  # the test is not about a zero field
    assert_float32_close(c2f32_all(frames, pairs, params, pack=0), f64)


def test_float32_lanes_close_to_float64_on_real_frames(vtest):
    """Reference settings: 18 pairs of 6 vtest frames at the reference's 100 x 100."""
    frames = resize_for_flow(vtest[:6], 100) / 255.0
    pairs = flow_pairs(6, 2)
    f64 = c2f_all(frames, pairs, C2F, pack=0)
    assert np.abs(f64).max() > 1.0
    assert_float32_close(c2f32_all(frames, pairs, C2F, pack=0), f64)


def test_float32_packed_equals_single_pair_bitwise():
    """Each float32 lane does the IEEE operations of the float32 single-pair solver, for
    fewer pairs than lanes, a full pack and a remainder."""
    frames = random_shot(6, (30, 30), seed=5)
    params = (0.012, 0.75, 10, 3, 1, 10)
    pairs = flow_pairs(6, 2)
    single = c2f32_all(frames, pairs, params, pack=1)
    assert np.abs(single).max() > 0.5
    assert_bitwise_equal(c2f32_all(frames, pairs, params, pack=PACK32), single)
    assert_bitwise_equal(c2f32_all(frames, pairs, params, pack=0), single)
    for n_pairs in (3, 7):
        assert_bitwise_equal(c2f32_all(frames, pairs[:n_pairs], params, pack=PACK32),
                             single[:n_pairs])


def test_float32_precision_reaches_the_solver_through_the_config(vtest):
    frames = resize_for_flow(vtest[:3], 32)
    pairs = np.array([[0, 1], [2, 1]])
    config = REFERENCE.replace(c2f_precision="float32")
    got = optical_flow(frames, pairs, config, threads=1)
    expected = _C.coarse2fine_flow_pairs(frames / 255.0, pairs, *C2F, 1, precision="float32")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(got, optical_flow(frames, pairs, threads=1))


def test_bad_precision_is_refused():
    frames = np.zeros((2, 24, 24, 3))
    pairs = np.array([[0, 1]])
    params = (0.012, 0.75, 20, 7, 1, 30, 1)
    with pytest.raises(ValueError, match="precision must be 'float64' or 'float32', got 'half'"):
        _C.coarse2fine_flow_pairs(frames, pairs, *params, precision="half")
    with pytest.raises(ValueError, match=f"pack must be 0, 1 or {PACK32}, got {PACK}"):
        _C.coarse2fine_flow_pairs(frames, pairs, *params, PACK, precision="float32")
    with pytest.raises(ValueError, match="c2f_precision must be one of 'float64', 'float32'"):
        UNLCConfig(c2f_precision="float16")
    with pytest.raises(ValueError, match="c2f_precision 'float32' is the CPU solver's"):
        UNLCConfig(device="cuda", c2f_precision="float32")


# ---------------------------------------------------------------------------------------------
# known answers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["c2f", "dis"])
@pytest.mark.parametrize("shift", [(2.0, 1.0), (1.5, -0.75), (-3.25, 2.5)])
def test_recovers_known_translation(method, shift):
    """Frame b is frame a moved by (dx, dy), so frame_a(x) = frame_b(x + d): flow = d.

    Measured end-point errors 10 px away from the border (mean, max): c2f 0.00-0.03 and
    0.16 px, DIS 0.015-0.04 and 0.12 px."""
    canvas = smooth_texture(160, 160, seed=3, sigma=2.0)
    moved = ndimage.shift(canvas, (shift[1], shift[0], 0), order=3, mode="nearest")
    frames = (np.stack([canvas, moved])[:, 30:130, 30:130] * 255).round().astype(np.uint8)
    flow = optical_flow(frames, np.array([[0, 1]]), UNLCConfig(flow=method))
    assert flow.shape == (1, 100, 100, 2) and flow.dtype == np.float32
    error = np.linalg.norm(flow[0, 10:-10, 10:-10] - np.array(shift), axis=-1)
    assert error.mean() < 0.06
    assert error.max() < 0.3


def test_identical_frames_give_zero_flow(vtest):
    frames = resize_for_flow(vtest[:1], 40)
    flow = optical_flow(frames, np.array([[0, 0]]))
    np.testing.assert_array_equal(flow, 0)


# ---------------------------------------------------------------------------------------------
# batching, threads, shapes
# ---------------------------------------------------------------------------------------------


def test_batched_parallel_equals_single_pairs(vtest):
    frames = resize_for_flow(vtest[:8], 48)
    pairs = flow_pairs(8, 3)
    one_thread = optical_flow(frames, pairs, threads=1)
    two_threads = optical_flow(frames, pairs, threads=2)
    default = optical_flow(frames, pairs)
    assert one_thread.shape == (len(pairs), 48, 48, 2) and one_thread.dtype == np.float32
    np.testing.assert_array_equal(two_threads, one_thread)
    np.testing.assert_array_equal(default, one_thread)
    # Pyramids shared between pairs give the same flow as a pair on its own.
    for p in (0, 7, len(pairs) - 1):
        alone = optical_flow(frames, pairs[p:p + 1], threads=1)
        np.testing.assert_array_equal(alone[0], one_thread[p])


def test_int32_and_int64_pairs_agree(vtest):
    frames = resize_for_flow(vtest[:3], 32) / 255.0
    pairs = np.array([[0, 2], [2, 1]])
    a = _C.coarse2fine_flow_pairs(frames, pairs.astype(np.int32), *C2F, 1)
    b = _C.coarse2fine_flow_pairs(frames, pairs.astype(np.int64), *C2F, 1)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", ["c2f", "dis"])
def test_shapes_and_empty_pairs(vtest, method):
    frames = resize_for_flow(vtest[:4], 36)
    config = UNLCConfig(flow=method)
    assert optical_flow(frames, flow_pairs(4, 1), config).shape == (6, 36, 36, 2)
    empty = optical_flow(frames, np.zeros((0, 2), dtype=np.int32), config)
    assert empty.shape == (0, 36, 36, 2) and empty.dtype == np.float32


def test_dis_uses_the_documented_preset(vtest):
    frames = resize_for_flow(vtest[:2], 64)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    expected = cv2.DISOpticalFlow_create(DIS_PRESET).calc(grey[1], grey[0], None)
    got = optical_flow(frames, np.array([[1, 0]]), UNLCConfig(flow="dis"))[0]
    np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


def test_optical_flow_rejects_bad_input():
    frames = np.zeros((3, 24, 24, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        optical_flow(frames.astype(np.float64), flow_pairs(3, 1))
    with pytest.raises(ValueError, match=r"\(n, h, w, 3\)"):
        optical_flow(frames[..., :2], flow_pairs(3, 1))
    with pytest.raises(ValueError, match=r"\(P, 2\)"):
        optical_flow(frames, np.array([0, 1]))
    with pytest.raises(ValueError, match="integer"):
        optical_flow(frames, np.array([[0.0, 1.0]]))
    for method in ("c2f", "dis"):
        with pytest.raises(ValueError, match=r"pairs\[1\] = \(2, 3\) is out of range for 3"):
            optical_flow(frames, np.array([[0, 1], [2, 3]]), UNLCConfig(flow=method))
        with pytest.raises(ValueError, match="out of range"):
            optical_flow(frames, np.array([[-1, 0]]), UNLCConfig(flow=method))


def test_extension_rejects_bad_input():
    frames = np.zeros((2, 24, 24, 3))
    pairs = np.array([[0, 1]], dtype=np.int32)
    params = (0.012, 0.75, 20, 7, 1, 30, 1)
    with pytest.raises(ValueError, match="float64"):
        _C.coarse2fine_flow_pairs(frames.astype(np.float32), pairs, *params)
    with pytest.raises(ValueError, match=r"\(n, h, w, 3\)"):
        _C.coarse2fine_flow_pairs(frames[..., :1], pairs, *params)
    with pytest.raises(ValueError, match="int32 or int64"):
        _C.coarse2fine_flow_pairs(frames, pairs.astype(np.int16), *params)
    with pytest.raises(ValueError, match=r"\(P, 2\)"):
        _C.coarse2fine_flow_pairs(frames, pairs.T, *params)
    with pytest.raises(ValueError, match=r"pairs\[0\] = \(0, 2\) is out of range for 2"):
        _C.coarse2fine_flow_pairs(frames, np.array([[0, 2]]), *params)
    with pytest.raises(ValueError, match="ratio"):
        _C.coarse2fine_flow_pairs(frames, pairs, 0.012, 0.3, 20, 7, 1, 30, 1)
    with pytest.raises(ValueError, match="n_sor"):
        _C.coarse2fine_flow_pairs(frames, pairs, 0.012, 0.75, 20, 7, 1, 0, 1)
    with pytest.raises(ValueError, match=f"pack must be 0, 1 or {PACK}, got 3"):
        _C.coarse2fine_flow_pairs(frames, pairs, *params, 3)
    with pytest.raises(ValueError, match="too small"):
        _C.coarse2fine_flow_pairs(np.zeros((2, 2, 200, 3)), pairs, *params)
    bad = frames.copy()
    bad[1, 3, 4, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        _C.coarse2fine_flow_pairs(bad, pairs, *params)


def test_missing_extension_is_explained(monkeypatch):
    import fastunlc

    # As if the extension had never been built: no attribute, and the import fails.
    monkeypatch.delattr(fastunlc, "_C", raising=False)
    monkeypatch.setitem(sys.modules, "fastunlc._C", None)
    with pytest.raises(ImportError, match="not built"):
        optical_flow(np.zeros((2, 24, 24, 3), dtype=np.uint8), np.array([[0, 1]]))


def test_dis_fields_reach_opencv(vtest):
    """Each ``dis_*`` field changes the flow the way the matching setter does."""
    frames = resize_for_flow(vtest[:2], 64)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    config = UNLCConfig(flow="dis", dis_finest_scale=0, dis_patch_size=6, dis_patch_stride=2,
                        dis_refinement_alpha=5.0, dis_refinement_iterations=2)
    dis = cv2.DISOpticalFlow_create(DIS_PRESET)
    dis.setFinestScale(0)
    dis.setPatchSize(6)
    dis.setPatchStride(2)
    dis.setVariationalRefinementAlpha(5.0)
    dis.setVariationalRefinementIterations(2)
    got = optical_flow(frames, np.array([[1, 0]]), config)[0]
    np.testing.assert_array_equal(got, dis.calc(grey[1], grey[0], None))
    default = optical_flow(frames, np.array([[1, 0]]), UNLCConfig(flow="dis"))[0]
    assert not np.array_equal(got, default)


def test_dis_on_enlarged_frames_returns_flow_frame_pixels():
    """A texture shifted by (2, -1) px at 64 x 48: ``dis_size=160`` gives that shift."""
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (80, 96, 3)), (0, 0), 1.5)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    # frame_a(x, y) = frame_b(x + 2, y - 1), so (u, v) = (2, -1) in 64 x 48 pixels.
    a, b = texture[8:56, 8:72], texture[9:57, 6:70]
    frames = np.stack([a, b])
    config = UNLCConfig(flow="dis", dis_size=160)
    flow = optical_flow(frames, np.array([[0, 1]]), config)
    assert flow.shape == (1, 48, 64, 2) and flow.dtype == np.float32
    inner = flow[0, 8:-8, 8:-8].reshape(-1, 2)
    np.testing.assert_allclose(np.median(inner, axis=0), [2.0, -1.0], atol=0.1)
