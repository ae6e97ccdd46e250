"""CUDA flow stage (:mod:`fastunlc._kernels.cuda.flow`) against the CPU's; without a GPU
it runs on Numba's CUDA simulator, so the inputs are tiny (16 x 20 pixel frames, two
pyramid levels, a few iterations).

``resize_for_flow`` equals the CPU's (Pillow's) resize byte for byte, on random frames
(shrinking, enlarging, same size) and real ones (a strip of a 768 px wide vtest.avi frame
to 12 px: 129-tap filters).

``optical_flow`` is checked two ways:

- against ``red_black_flow`` below, the NumPy oracle :mod:`fastunlc.reference.flow` with
  its lexicographic ``sor_solve`` replaced by a red-black one in the kernel's order (and
  a schedule argument for the fast mode). On the simulator the float32 flows are equal
  here (difference 0); at the reference's iterations on a 24 x 24 real pair (three
  levels, outside the tests: 4.5 min) they differ by 2.4e-7 px at most, float32 roundings
  of float64 flows that differ in their last bits (NumPy sums the five channels in
  another order). The tolerance, 1e-6 px, leaves room for a GPU's fused multiply-adds.
- against the CPU (C++, Gauss-Seidel) flow, with the same settings: what is left is the
  difference between two unconverged relaxation orders, large with the tests' few sweeps
  and small with the reference's. Measured here (2 levels, 2 outer iterations of 8
  sweeps, +1 and +3 on the coarser level): mean end-point difference 0.016 px on the
  random texture (flow about 1.3 px) and 0.044 px on the real crop (flow about 0.5 px);
  tolerances 0.04 and 0.1 px. With 20 sweeps the differences halve (0.006, 0.020 px).

Measured outside the tests with ``red_black_flow`` (which equals the kernel, above) at the
reference's settings on 100 x 100 frames (PIL-resized, pairs at distance 1 and 3 of
vtest, tree, Megamind, bikes, carphone, bigbuckbunny and two synthetic pan / shake clips:
16 pairs, mean flow 0.02-4.7 px): red-black against Gauss-Seidel, mean end-point
difference 0.0004 px (at most 0.0027 px for a pair, 0.2 % of its mean flow); the fast
mode against Gauss-Seidel, 0.017 px (at most 0.15 px, on bikes at distance 3 with 2.7 px
mean flow; 3.6 % of the mean flow on average, 11 % at most). The simulator itself cannot
run that size in reasonable time (about 3,600 launches of up to 10,000 threads at about
180 us a simulated thread: hours).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from numba import cuda
from scipy import ndimage

from fastunlc._kernels.cuda import flow as gpu
from fastunlc.config import REFERENCE
from fastunlc.flow import optical_flow as cpu_flow
from fastunlc.flow import resize_for_flow as cpu_resize
from fastunlc.reference import flow as ref

from .helpers import read_video_frames

TWIN_TOL = 1e-6
"""Max |kernel - red-black twin| in pixels (0 measured on the simulator)."""
SMALL = dataclasses.replace(REFERENCE, c2f_outer_iterations=2, c2f_sor_iterations=8,
                            c2f_min_width=10)
"""Settings of the flow tests: two pyramid levels (16 x 20 and 12 x 15) for 16 x 20 frames."""
VTEST = np.load(Path(__file__).parent / "data" / "reference_vtest.npz")["frames"]
"""Ten real 96 x 128 frames of vtest.avi (tests/data/README.md)."""


def smooth_texture(h: int, w: int, seed: int) -> np.ndarray:
    """Random smooth RGB texture, uint8."""
    t = ndimage.gaussian_filter(np.random.default_rng(seed).random((h, w, 3)), (1.5, 1.5, 0))
    return np.round((t - t.min()) / (t.max() - t.min()) * 255).astype(np.uint8)


def translated_pair(h: int, w: int, seed: int) -> np.ndarray:
    """(2, h, w, 3) uint8: a texture and the same moved by (-1, +1) px, so that the flow
    is about (u, v) = (1, -1)."""
    t = smooth_texture(h + 4, w + 4, seed)
    return np.stack([t[2:h + 2, 2:w + 2], t[3:h + 3, 1:w + 1]])


# -- the NumPy red-black twin ---------------------------------------------------------------


def _neighbour_sum(d: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """sum over the left, right, up and down neighbours of weight * d (0 where none)."""
    shifted = [np.zeros_like(d) for _ in range(4)]
    shifted[0][:, 1:] = d[:, :-1]
    shifted[1][:, :-1] = d[:, 1:]
    shifted[2][1:] = d[:-1]
    shifted[3][:-1] = d[1:]
    total = np.zeros_like(d)
    for weight, neighbour in zip(weights, shifted, strict=True):
        total += weight * neighbour
    return total


def red_black_sor(axx, axy, ayy, bx, by, phi, alpha, n_iterations):
    """``reference.flow.sor_solve`` with red-black sweeps: pixels with (i + j) even, then
    odd, each from its neighbours' current values, with the same update in the same
    order of operations (a missing neighbour adds weight 0 times 0, which is exact)."""
    h, w = phi.shape
    weights = [np.zeros((h, w)) for _ in range(4)]
    weights[0][:, 1:] = phi[:, :-1]
    weights[1][:, :-1] = phi[:, :-1]
    weights[2][1:] = phi[:-1]
    weights[3][:-1] = phi[:-1]
    coeff = np.zeros((h, w))
    for weight in weights:
        coeff += weight
    coeff *= alpha
    prior = alpha * ref.INCREMENT_PRIOR
    ku = ref.SOR_OMEGA / (axx + prior + coeff)
    kv = ref.SOR_OMEGA / (ayy + prior + coeff)
    du = np.zeros((h, w))
    dv = np.zeros((h, w))
    parity = np.add.outer(np.arange(h), np.arange(w)) % 2
    for _ in range(n_iterations):
        for colour in (0, 1):
            mask = parity == colour
            s1 = _neighbour_sum(du, weights) * -alpha
            s2 = _neighbour_sum(dv, weights) * -alpha
            s1 += axy * dv
            du = np.where(mask, (1 - ref.SOR_OMEGA) * du + ku * (bx - s1), du)
            s2 += axy * du
            dv = np.where(mask, (1 - ref.SOR_OMEGA) * dv + kv * (by - s2), dv)
    return du, dv


def red_black_flow(first: np.ndarray, second: np.ndarray, config, n_outer: int, n_sor: int,
                   sor_step: int) -> np.ndarray:
    """``reference.flow.coarse2fine_flow`` of two uint8 frames with red-black SOR and level
    k running ``n_outer + k`` outer iterations of ``n_sor + sor_step * k`` sweeps (the
    reference: ``sor_step`` 3)."""
    ratio = config.c2f_ratio
    pyramid1 = ref.gaussian_pyramid(first / 255.0, ratio, config.c2f_min_width)
    pyramid2 = ref.gaussian_pyramid(second / 255.0, ratio, config.c2f_min_width)
    noise = np.full(ref.N_FEATURES, ref.INITIAL_RESIDUAL)
    u = v = None
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ref, "sor_solve", red_black_sor)
        for k in range(len(pyramid1) - 1, -1, -1):
            f1, f2 = ref.features(pyramid1[k]), ref.features(pyramid2[k])
            h, w = f1.shape[:2]
            if u is None:
                u, v, warped = np.zeros((h, w)), np.zeros((h, w)), f2
            else:
                u = ref.resize_to(u[..., None], h, w)[..., 0] * (1.0 / ratio)
                v = ref.resize_to(v[..., None], h, w)[..., 0] * (1.0 / ratio)
                warped = ref.warp(f1, f2, u, v)
            u, v, warped = ref.refine_level(f1, f2, warped, u, v, config.c2f_alpha, n_outer + k,
                                            config.c2f_inner_iterations, n_sor + sor_step * k,
                                            noise)
    return np.stack([u, v], axis=-1)


def end_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((np.asarray(a, np.float64) - b) ** 2).sum(-1))


# -- resize ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("h", "w", "size"), [(37, 53, 16), (9, 31, 12), (20, 20, 20),
                                              (12, 10, 18)])
def test_resize_equals_pillow_on_random_frames(h, w, size):
    """Shrinking (support widened), mixed, same size and enlarging: byte for byte."""
    frames = np.random.default_rng(h * w).integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    out = gpu.resize_for_flow(frames, size)
    assert out.shape == (2, size, size, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out.copy_to_host(), cpu_resize(frames, size))


def test_resize_equals_pillow_on_real_frames(opencv_data):
    """A 64-row strip of a full-width vtest.avi frame to 12 px (129-tap filters along
    x) and tests/data's 96 x 128 frames to 20 px, from device arrays: byte for byte."""
    big = np.ascontiguousarray(read_video_frames(opencv_data / "vtest.avi", count=1)[:, 200:264])
    np.testing.assert_array_equal(gpu.resize_for_flow(big, 12).copy_to_host(),
                                  cpu_resize(big, 12))
    frames = VTEST[:2]
    out = gpu.resize_for_flow(cuda.to_device(frames), 20).copy_to_host()
    np.testing.assert_array_equal(out, cpu_resize(frames, 20))


def test_resize_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        gpu.resize_for_flow(np.zeros((1, 8, 8, 3), np.float32), 4)
    with pytest.raises(ValueError, match="size"):
        gpu.resize_for_flow(np.zeros((1, 8, 8, 3), np.uint8), 0)


# -- flow -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_shot() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames (4, 16, 20, 3): a translated random texture and a real vtest crop (a walker,
    frames 0 and 3); pairs (0, 1) and (3, 2); the kernel's flow of both with SMALL."""
    real = VTEST[[0, 3], 38:54, 98:118]
    frames = np.ascontiguousarray(np.concatenate([translated_pair(16, 20, seed=1), real]))
    pairs = np.array([[0, 1], [3, 2]])
    return frames, pairs, gpu.optical_flow(frames, pairs, SMALL).copy_to_host()


def test_flow_shape_and_dtype(small_shot):
    flow = small_shot[2]
    assert flow.shape == (2, 16, 20, 2) and flow.dtype == np.float32
    assert np.isfinite(flow).all()


def test_flow_equals_red_black_twin(small_shot):
    """Random texture and real crop, each frame of a pair its own: within TWIN_TOL."""
    frames, pairs, flow = small_shot
    for p, (a, b) in enumerate(pairs):
        twin = red_black_flow(frames[a], frames[b], SMALL, SMALL.c2f_outer_iterations,
                              SMALL.c2f_sor_iterations, 3)
        np.testing.assert_allclose(flow[p], twin, rtol=0, atol=TWIN_TOL)


def test_flow_is_close_to_the_cpu_flow(small_shot):
    """Against the C++ Gauss-Seidel flow: mean end-point difference within 0.04 px on the
    texture (0.016 measured; its flow is about (1, -1)) and 0.1 px on the real crop
    (0.044 measured); see the module docstring for why and for the reference settings."""
    frames, pairs, flow = small_shot
    cpu = cpu_flow(frames, pairs, SMALL)
    difference = end_point(flow, cpu).mean(axis=(1, 2))
    assert difference[0] < 0.04 and difference[1] < 0.1, difference
    assert np.abs(flow[0].mean(axis=(0, 1)) - [1, -1]).max() < 0.2


def test_fast_flow_equals_its_twin():
    """Fast mode (6 outer iterations of 6 sweeps, +1 and +1 per level up) on a 12 x 16
    texture (levels 12 x 16 and 9 x 12), frames and pairs given as device arrays: within
    TWIN_TOL of the twin with that schedule."""
    frames = translated_pair(12, 16, seed=2)
    config = dataclasses.replace(REFERENCE, c2f_min_width=8, flow="c2f-fast", device="cuda")
    flow = gpu.optical_flow(cuda.to_device(frames), cuda.to_device(np.array([[1, 0]])),
                            config).copy_to_host()
    twin = red_black_flow(frames[1], frames[0], config, 6, 6, 1)
    np.testing.assert_allclose(flow[0], twin, rtol=0, atol=TWIN_TOL)


def test_inner_iterations_equal_the_twin():
    """Two inner iterations (the second re-weights around the first's increment) on one
    12 x 12 level with 3 sweeps: within TWIN_TOL of the twin."""
    frames = translated_pair(12, 12, seed=3)
    config = dataclasses.replace(REFERENCE, c2f_outer_iterations=1, c2f_inner_iterations=2,
                                 c2f_sor_iterations=3)
    flow = gpu.optical_flow(frames, np.array([[0, 1]]), config).copy_to_host()
    twin = red_black_flow(frames[0], frames[1], config, 1, 3, 3)
    np.testing.assert_allclose(flow[0], twin, rtol=0, atol=TWIN_TOL)


def test_pyramid_levels_are_the_reference_levels():
    for h, w, ratio, min_width in [(100, 100, 0.75, 20), (96, 128, 0.75, 20),
                                   (16, 20, 0.75, 10), (240, 320, 0.5, 8), (30, 7, 0.9, 3)]:
        levels = gpu._pyramid_levels(h, w, ratio, min_width)
        pyramid = ref.gaussian_pyramid(np.zeros((h, w, 3)), ratio, min_width)
        assert [(lv.height, lv.width) for lv in levels] == [p.shape[:2] for p in pyramid]


def test_flow_without_pairs_is_empty():
    flow = gpu.optical_flow(np.zeros((2, 16, 16, 3), np.uint8), np.zeros((0, 2), int))
    assert flow.shape == (0, 16, 16, 2) and flow.dtype == np.float32


def test_flow_rejects_bad_input():
    frames = np.zeros((2, 16, 16, 3), np.uint8)
    pairs = np.array([[0, 1]])
    with pytest.raises(ValueError, match="uint8"):
        gpu.optical_flow(frames.astype(np.float32), pairs)
    with pytest.raises(ValueError, match="out of range"):
        gpu.optical_flow(frames, np.array([[0, 2]]))
    with pytest.raises(ValueError, match=r"\(P, 2\)"):
        gpu.optical_flow(frames, np.array([0, 1]))
    with pytest.raises(ValueError, match="integer"):
        gpu.optical_flow(frames, np.array([[0.0, 1.0]]))
    with pytest.raises(ValueError, match="c2f"):
        gpu.optical_flow(frames, pairs, dataclasses.replace(REFERENCE, flow="dis"))
    with pytest.raises(ValueError, match="too small"):
        gpu.optical_flow(np.zeros((2, 2, 64, 3), np.uint8), pairs)
