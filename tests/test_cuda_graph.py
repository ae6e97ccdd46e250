"""CUDA neighbour graph (exact distances + top-k) against the CPU's graph and the
float64 oracle.

Tolerances: the GPU ranks by float64 ``sum (x - y)²``, the CPU by float32
``|x|² + |y|² - 2 x·y``. On these inputs no two candidates come within float32 error of
each other at a row's M-th place, so neighbour sets (CSR columns and row lengths) must
be identical, ties of exact duplicates included (both order equals by index). Weights
``exp(-d² / 0.1)`` then agree with the CPU to ``CPU_RTOL`` (float32 distances: 4.8e-5
measured on the random 12-d inputs, 7.2e-6 on the real 176-d ones) and with the float64
oracle to ``ORACLE_RTOL`` (rounding only: 7e-15 measured).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from fastunlc._kernels.cuda import graph as gpu
from fastunlc.config import UNLCConfig
from fastunlc.graph import transition_matrix
from fastunlc.reference import graph as reference

from .test_cuda_saliency import compile_for_gpu, tiny_real_shot

CPU_RTOL = 2e-4
ORACLE_RTOL = 1e-12
SMALL = UNLCConfig(temporal_radius=1, neighbours_per_frame=3)  # M = 9


def offsets_of(counts) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def assert_same_graph(descriptors, offsets, config, oracle: bool = True) -> sp.csr_matrix:
    """GPU rows as CSR: the CPU's structure exactly, its values within CPU_RTOL, the
    dense oracle's within ORACLE_RTOL (``oracle``: no exact ties, which the oracle's
    k-d tree breaks its own way); returns the GPU's matrix."""
    fast = gpu.to_csr(gpu.transition(descriptors, offsets, config))
    cpu = transition_matrix(descriptors, offsets, config)
    assert fast.has_canonical_format and fast.shape == cpu.shape
    np.testing.assert_array_equal(fast.indptr, cpu.indptr)
    np.testing.assert_array_equal(fast.indices, cpu.indices)
    np.testing.assert_allclose(fast.data, cpu.data, rtol=CPU_RTOL, atol=0)
    if oracle:
        dense = reference.transition_matrix(descriptors, offsets, config)
        np.testing.assert_allclose(fast.toarray(), dense, rtol=ORACLE_RTOL, atol=1e-300)
    np.testing.assert_allclose(np.asarray(fast.sum(axis=1)).ravel(), 1.0, rtol=1e-14)
    return fast


@pytest.mark.parametrize("counts", [[4, 2, 7, 5], [9, 1, 0, 6]],
                         ids=["windows-below-and-above-M", "one-and-empty-frames"])
def test_random_descriptors_match_cpu(counts):
    rng = np.random.default_rng(0)
    offsets = offsets_of(counts)
    T = assert_same_graph(rng.normal(size=(offsets[-1], 12)), offsets, SMALL)
    window = [offsets[min(f + 2, len(counts))] - offsets[max(f - 1, 0)]
              for f in range(len(counts))]
    np.testing.assert_array_equal(np.diff(T.indptr),
                                  np.repeat(np.minimum(9, window), counts))


def test_float32_descriptors_and_default_config():
    """k = 14 < M = 62: every row holds its whole window; float32 input is read as is."""
    rng = np.random.default_rng(1)
    offsets = offsets_of([5, 4, 5])
    x = rng.random((offsets[-1], 20)).astype(np.float32)
    T = assert_same_graph(x, offsets, UNLCConfig())
    assert np.all(np.diff(T.indptr) == 14)


def test_exact_duplicates_follow_the_cpu_tie_rule():
    """Rows copied from 4 distinct descriptors: many candidates at exactly equal distances,
    more copies of a row than its M - 1 neighbours. The GPU keeps the lower index among
    equals and always the row itself, as the CPU does."""
    rng = np.random.default_rng(2)
    offsets = offsets_of([6, 7, 5])
    x = rng.normal(size=(4, 6))[rng.integers(0, 4, offsets[-1])]
    config = UNLCConfig(temporal_radius=1, neighbours_per_frame=1)  # M = 3
    T = assert_same_graph(x, offsets, config, oracle=False)
    assert np.all(T.diagonal() > 0)
    indices, _ = gpu.neighbours(x, offsets, config)
    first = indices.copy_to_host()[:, 0]
    np.testing.assert_array_equal(first, np.arange(offsets[-1]))


def test_neighbours_order_distances_and_padding():
    rng = np.random.default_rng(3)
    offsets = offsets_of([3, 2, 4])
    x = rng.normal(size=(offsets[-1], 5))
    indices, sq = gpu.neighbours(x, offsets, SMALL)
    indices, sq = indices.copy_to_host(), sq.copy_to_host()
    for r in range(offsets[-1]):
        f = np.searchsorted(offsets, r, side="right") - 1
        window = np.arange(offsets[max(f - 1, 0)], offsets[min(f + 2, 3)])
        d = ((x[window] - x[r]) ** 2).sum(axis=1)
        order = window[np.lexsort((window, d))]  # itself first: distance 0
        c = window.size
        np.testing.assert_array_equal(indices[r, :c], order[:9])
        np.testing.assert_allclose(sq[r, :c], np.sort(d)[:9], rtol=1e-12, atol=0)
        assert np.all(indices[r, c:] == -1) and np.all(np.isinf(sq[r, c:]))


@pytest.mark.parametrize(("size", "n_segments", "per_frame"), [((16, 20), 6, 2), ((32, 40), 20, 4)])
def test_real_descriptors_match_cpu(size, n_segments, per_frame):
    """176-d descriptors of SLIC superpixels of real frames (M = 6 or 12 of 12..60)."""
    shot = tiny_real_shot(size, n_segments)
    config = UNLCConfig(temporal_radius=1, neighbours_per_frame=per_frame)
    assert_same_graph(shot["descriptors"], shot["offsets"], config)


def test_rows_from_csr_round_trip_keeps_stored_order():
    rng = np.random.default_rng(4)
    offsets = offsets_of([4, 6, 3])
    T = transition_matrix(rng.normal(size=(offsets[-1], 4)), offsets, SMALL)
    rows = gpu.rows_from_csr(T)
    back = gpu.to_csr(rows)
    assert (back != T).nnz == 0 and np.array_equal(back.indices, T.indices)
    # A non-canonical matrix keeps its stored order (the CPU's product sums in it).
    shuffled = sp.csr_matrix((T.data[::-1], T.indices[::-1], [0, T.nnz]), shape=(1, T.shape[1]))
    rows = gpu.rows_from_csr(shuffled)
    np.testing.assert_array_equal(rows.indices.copy_to_host()[0], T.indices[::-1])
    np.testing.assert_array_equal(rows.weights.copy_to_host()[0], T.data[::-1])


@pytest.mark.parametrize(("descriptors", "offsets", "message"), [
    (np.zeros(5), [0, 5], "must be \\(k, d\\)"),
    (np.zeros((5, 2), np.int64), [0, 5], "float32 or float64"),
    (np.zeros((5, 2)), [0, 3], "rise from 0 to k"),
    (np.zeros((5, 2)), [0, 4, 2, 5], "rise from 0 to k"),
    (np.zeros((5, 2)), [[0, 5]], "1-D integer"),
])
def test_bad_input(descriptors, offsets, message):
    with pytest.raises(ValueError, match=message):
        gpu.transition(descriptors, offsets, SMALL)


def test_kernels_compile_for_a_gpu():
    """The top-k kernels type and compile for sm_90 (float32 and float64 descriptors)."""
    f8, i8 = "float64", "int64"
    rows = [[i8, [5, 62]], [f8, [5, 62]], "float", [i8, [5, 62]], [f8, [5, 62]], [i8, [5]]]
    compiled = compile_for_gpu("fastunlc._kernels.cuda.graph", {
        "_knn_kernel(62)": [[f8, [5, 7]], [i8, [2, 4]], [i8, [5, 62]], [f8, [5, 62]]],
        "_knn_kernel(9)": [["float32", [5, 7]], [i8, [2, 4]], [i8, [5, 9]], [f8, [5, 9]]],
        "_rows_kernel(62)": rows,
    })
    assert set(compiled) == {"_knn_kernel(62)", "_knn_kernel(9)", "_rows_kernel(62)"}
