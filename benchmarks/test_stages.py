"""Every pipeline stage beside its plain reference (oracle), on the same real input.

Run from the repository root (not part of the default ``pytest`` run)::

    python -m pytest benchmarks/test_stages.py --benchmark-only

Each stage has its own benchmark group, so pytest-benchmark's table shows the fast
function next to its oracle from ``fastunlc.reference``; a summary at the end gives
seconds per frame (or pair) and the speed-up. Inputs are real vtest.avi frames at
650x487 (see ``conftest.py``). Every fast benchmark also checks its result against the
oracle's with the tolerance of the stage's tests, so a fast but wrong kernel fails here
instead of looking good.

Flow is the exception: the NumPy oracle runs SOR as a Python loop over pixels (about
5 s for one 100x100 pair), which says nothing about the compiled kernel's speed. So
the flow group compares the packed C++ solver with the same C++ solving one pair at a
time (the path pyflow's structure corresponds to), on one thread and on all, and
with DIS; a separate group times the NumPy oracle on one real pair, once, and checks
the C++ against it.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FEATURE_FRAMES, FLOW_FRAMES, KTS_SIZE, SHOT_FRAMES, record

from fastunlc import descriptors, flow, graph, saliency, shots, superpixels, voting
from fastunlc.config import REFERENCE
from fastunlc.reference import descriptors as ref_descriptors
from fastunlc.reference import flow as ref_flow
from fastunlc.reference import graph as ref_graph
from fastunlc.reference import saliency as ref_saliency
from fastunlc.reference import shots as ref_shots
from fastunlc.reference import superpixels as ref_superpixels
from fastunlc.reference import voting as ref_voting
from tests.helpers import read_video_frames

_C = pytest.importorskip("fastunlc._C", reason="compiled extension fastunlc._C is not built")

FAST_ROUNDS = 5
ORACLE_ROUNDS = 2

# Tolerances of the stages' own tests (tests/test_*.py), where the reasons are given.
FLOW_ORACLE_TOL = 1e-5  # px, C++ against the NumPy oracle
HOG_TOL = 1e-9  # descriptors: HOG part; histograms and location are exact
T_RTOL = 2e-4  # graph: float32 distances
MIN_IDENTICAL_ROWS = 0.95  # graph: rows whose neighbour sets equal the oracle's
VOTING_ATOL = 1e-12
SALIENCY_TOL = 1e-12
MIN_SLIC_AGREEMENT = 0.99  # pixels whose fast superpixel's best-matching oracle one is theirs
MAX_DIS_ENDPOINT_ERROR = 1.0  # px, mean |DIS - c2f| on real 100x100 pairs (measured < 0.7)

C2F_PARAMS = (REFERENCE.c2f_alpha, REFERENCE.c2f_ratio, REFERENCE.c2f_min_width,
              REFERENCE.c2f_outer_iterations, REFERENCE.c2f_inner_iterations,
              REFERENCE.c2f_sor_iterations)


def _pack_supported() -> bool:
    """Whether this build of ``_C`` takes ``pack`` (pair packing into SIMD lanes)."""
    tiny = np.zeros((2, 24, 24, 3))
    try:
        _C.coarse2fine_flow_pairs(tiny, np.array([[0, 1]]), *C2F_PARAMS, n_threads=1, pack=1)
    except TypeError:
        return False
    return True


# Keyword arguments that make the C++ solve one pair at a time. An older build has no
# packing at all, so its default already does.
ONE_PAIR_AT_A_TIME = {"pack": 1} if _pack_supported() else {}


# -- 1. shot features and KTS ------------------------------------------------------------------


@pytest.fixture(scope="module")
def video_features(vtest_path) -> np.ndarray:
    """Shot features of every frame of vtest.avi (795 x 240), read at KTS_SIZE."""
    frames = read_video_frames(vtest_path, count=10**6, size=KTS_SIZE)
    return shots.shot_features(frames, REFERENCE.shot_hist_bins)


@pytest.mark.benchmark(group="1 shot features (40 frames)")
def test_shot_features_oracle(benchmark, vtest_frames, oracle_results):
    out = benchmark.pedantic(ref_shots.shot_features, (vtest_frames, REFERENCE.shot_hist_bins),
                             rounds=ORACLE_ROUNDS)
    oracle_results.put("shot_features", out)
    record(benchmark, units=FEATURE_FRAMES, unit="frame", baseline=True)


@pytest.mark.benchmark(group="1 shot features (40 frames)")
def test_shot_features_fast(benchmark, vtest_frames, oracle_results):
    out = benchmark.pedantic(shots.shot_features, (vtest_frames, REFERENCE.shot_hist_bins),
                             rounds=FAST_ROUNDS, warmup_rounds=1)
    record(benchmark, units=FEATURE_FRAMES, unit="frame")
    expected = oracle_results.get("shot_features", lambda: ref_shots.shot_features(
        vtest_frames, REFERENCE.shot_hist_bins))
    np.testing.assert_array_equal(out, expected)


def _kts(module, features):
    return module.kts_change_points(features, REFERENCE.max_shots - 1, REFERENCE.kts_vmax)


@pytest.mark.benchmark(group="1 KTS (vtest.avi, 795 frames)")
def test_kts_oracle(benchmark, video_features, oracle_results):
    out = benchmark.pedantic(_kts, (ref_shots, video_features), rounds=ORACLE_ROUNDS)
    oracle_results.put("kts", out)
    record(benchmark, units=len(video_features), unit="frame", baseline=True)


@pytest.mark.benchmark(group="1 KTS (vtest.avi, 795 frames)")
def test_kts_fast(benchmark, video_features, oracle_results):
    out = benchmark.pedantic(_kts, (shots, video_features), rounds=FAST_ROUNDS, warmup_rounds=1)
    record(benchmark, units=len(video_features), unit="frame")
    np.testing.assert_array_equal(
        out, oracle_results.get("kts", lambda: _kts(ref_shots, video_features)))


# -- 2. optical flow ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flow_input(vtest_frames) -> tuple[np.ndarray, np.ndarray]:
    """FLOW_FRAMES frames at 100x100 and their pairs (84 at radius 3)."""
    small = flow.resize_for_flow(vtest_frames[:FLOW_FRAMES], REFERENCE.flow_size)
    return small, flow.flow_pairs(FLOW_FRAMES, REFERENCE.flow_radius)


@pytest.fixture(scope="module")
def c2f_flows(flow_input) -> np.ndarray:
    small, pairs = flow_input
    return flow.optical_flow(small, pairs, REFERENCE)


def _c2f_cpp(small, pairs, threads, **options):
    return _C.coarse2fine_flow_pairs(small / 255.0, pairs, *C2F_PARAMS, n_threads=threads,
                                     **options)


@pytest.mark.benchmark(group="2 flow (84 pairs of 100x100)")
def test_flow_c2f_one_pair_at_a_time_one_thread(benchmark, flow_input, c2f_flows):
    """pyflow's setting: one pair after another on one core (the baseline of the group)."""
    small, pairs = flow_input
    out = benchmark.pedantic(_c2f_cpp, (small, pairs, 1), ONE_PAIR_AT_A_TIME, rounds=2)
    record(benchmark, units=len(pairs), unit="pair", baseline=True)
    np.testing.assert_array_equal(out, c2f_flows)


@pytest.mark.benchmark(group="2 flow (84 pairs of 100x100)")
def test_flow_c2f_one_pair_at_a_time(benchmark, flow_input, c2f_flows):
    small, pairs = flow_input
    out = benchmark.pedantic(_c2f_cpp, (small, pairs, 0), ONE_PAIR_AT_A_TIME, rounds=3)
    record(benchmark, units=len(pairs), unit="pair")
    np.testing.assert_array_equal(out, c2f_flows)


@pytest.mark.benchmark(group="2 flow (84 pairs of 100x100)")
def test_flow_c2f_fast(benchmark, flow_input, c2f_flows):
    small, pairs = flow_input
    out = benchmark.pedantic(flow.optical_flow, (small, pairs, REFERENCE), rounds=FAST_ROUNDS)
    record(benchmark, units=len(pairs), unit="pair")
    np.testing.assert_array_equal(out, c2f_flows)


@pytest.mark.benchmark(group="2 flow (84 pairs of 100x100)")
def test_flow_dis(benchmark, flow_input, c2f_flows):
    small, pairs = flow_input
    out = benchmark.pedantic(flow.optical_flow, (small, pairs, REFERENCE.replace(flow="dis")),
                             rounds=FAST_ROUNDS, warmup_rounds=1)
    record(benchmark, units=len(pairs), unit="pair")
    # Another method: not equal, but close to c2f on these frames.
    endpoint = float(np.linalg.norm(out - c2f_flows, axis=-1).mean())
    benchmark.extra_info["mean_endpoint_difference_to_c2f_px"] = endpoint
    assert endpoint < MAX_DIS_ENDPOINT_ERROR


@pytest.fixture(scope="module")
def real_pair(vtest_frames) -> np.ndarray:
    """Frames 2 and 4 at 100x100, float64 RGB in [0, 1] (the flow tests' real pair)."""
    return flow.resize_for_flow(vtest_frames[[2, 4]], REFERENCE.flow_size) / 255.0


@pytest.mark.benchmark(group="2 flow oracle (1 pair of 100x100)")
def test_flow_numpy_oracle(benchmark, real_pair, oracle_results):
    out = benchmark.pedantic(ref_flow.coarse2fine_flow, (real_pair[0], real_pair[1],
                                                         *C2F_PARAMS), rounds=1)
    oracle_results.put("flow", out)
    record(benchmark, units=1, unit="pair", baseline=True)


@pytest.mark.benchmark(group="2 flow oracle (1 pair of 100x100)")
def test_flow_c2f_single_pair(benchmark, real_pair, oracle_results):
    out = benchmark.pedantic(_C.coarse2fine_flow_pairs,
                             (real_pair, np.array([[0, 1]]), *C2F_PARAMS, 1),
                             rounds=FAST_ROUNDS, warmup_rounds=1)[0]
    record(benchmark, units=1, unit="pair")
    expected = oracle_results.get("flow", lambda: ref_flow.coarse2fine_flow(
        real_pair[0], real_pair[1], *C2F_PARAMS))
    assert np.abs(expected).max() > 1.0  # a real motion, not a zero field
    np.testing.assert_allclose(out, expected, rtol=0, atol=FLOW_ORACLE_TOL)


# -- 3. motion saliency -------------------------------------------------------------------------


def _saliency_fast(shot):
    motion = saliency.motion_saliency(shot.flows, shot.pairs, len(shot.frames), REFERENCE)
    votes, _ = saliency.superpixel_saliency(motion.saliency, shot.labels, shot.offsets,
                                            REFERENCE)
    return motion, votes


def _saliency_oracle(shot):
    small, dominant, _ = ref_saliency.motion_saliency(shot.flows, shot.pairs, len(shot.frames),
                                                      REFERENCE)
    full = ref_saliency.upsample_saliency(small, shot.labels.shape[1:], REFERENCE)
    return small, dominant, ref_voting.superpixel_means(full, shot.labels, shot.offsets)


@pytest.mark.benchmark(group="3 saliency (8 frames, 36 pairs)")
def test_saliency_oracle(benchmark, shot, oracle_results):
    out = benchmark.pedantic(_saliency_oracle, (shot,), rounds=ORACLE_ROUNDS)
    oracle_results.put("saliency", out)
    record(benchmark, units=SHOT_FRAMES, unit="frame", baseline=True)


@pytest.mark.benchmark(group="3 saliency (8 frames, 36 pairs)")
def test_saliency_fast(benchmark, shot, oracle_results):
    motion, votes = benchmark.pedantic(_saliency_fast, (shot,), rounds=FAST_ROUNDS,
                                       warmup_rounds=1)
    record(benchmark, units=SHOT_FRAMES, unit="frame")
    small, dominant, expected_votes = oracle_results.get("saliency",
                                                         lambda: _saliency_oracle(shot))
    np.testing.assert_array_equal(motion.dominant, dominant)
    np.testing.assert_allclose(motion.saliency, small, rtol=SALIENCY_TOL, atol=SALIENCY_TOL)
    np.testing.assert_allclose(votes, expected_votes, rtol=SALIENCY_TOL, atol=SALIENCY_TOL)
    assert votes.max() > 0.5  # vtest's walkers move: the votes are not all zero


# -- 4. superpixels ---------------------------------------------------------------------------


def _slic_per_frame(module, frames):
    return [module.slic_superpixels(frame, REFERENCE) for frame in frames]


def _slic_agreement(fast: np.ndarray, oracle: np.ndarray) -> float:
    """Share of pixels whose fast superpixel's best-overlapping oracle superpixel is
    their own oracle superpixel (1.0 for identical partitions up to renumbering)."""
    a = fast.ravel().astype(np.int64)
    b = oracle.ravel().astype(np.int64)
    nb = int(b.max()) + 1
    overlap = np.bincount(a * nb + b, minlength=(int(a.max()) + 1) * nb).reshape(-1, nb)
    return float(overlap.max(axis=1).sum() / a.size)


def _check_slic(labels, counts, expected) -> list[float]:
    agreement = []
    for lab, k, (ref_lab, ref_k) in zip(labels, counts, expected, strict=True):
        assert lab.dtype == np.int32 and lab.min() == 0 and lab.max() == k - 1
        assert abs(int(k) - ref_k) <= 0.02 * ref_k
        agreement.append(_slic_agreement(lab, ref_lab))
    assert min(agreement) >= MIN_SLIC_AGREEMENT, agreement
    return agreement


@pytest.mark.benchmark(group="4 superpixels (8 frames)")
def test_superpixels_oracle(benchmark, shot, oracle_results):
    out = benchmark.pedantic(_slic_per_frame, (ref_superpixels, shot.frames),
                             rounds=ORACLE_ROUNDS)
    oracle_results.put("superpixels", out)
    record(benchmark, units=SHOT_FRAMES, unit="frame", baseline=True)


@pytest.mark.benchmark(group="4 superpixels (8 frames)")
def test_superpixels_fast(benchmark, shot, oracle_results):
    out = benchmark.pedantic(_slic_per_frame, (superpixels, shot.frames), rounds=FAST_ROUNDS,
                             warmup_rounds=1)
    record(benchmark, units=SHOT_FRAMES, unit="frame")
    expected = oracle_results.get("superpixels",
                                  lambda: _slic_per_frame(ref_superpixels, shot.frames))
    agreement = _check_slic([lab for lab, _ in out], [k for _, k in out], expected)
    benchmark.extra_info["min_pixel_agreement"] = min(agreement)


@pytest.mark.benchmark(group="4 superpixels (8 frames)")
def test_superpixels_fast_batch(benchmark, shot, oracle_results):
    batch = getattr(superpixels, "slic_superpixels_batch", None)
    if batch is None:
        pytest.skip("fastunlc.superpixels has no slic_superpixels_batch")
    labels, counts = benchmark.pedantic(batch, (shot.frames, REFERENCE), rounds=FAST_ROUNDS,
                                        warmup_rounds=1)
    record(benchmark, units=SHOT_FRAMES, unit="frame")
    expected = oracle_results.get("superpixels",
                                  lambda: _slic_per_frame(ref_superpixels, shot.frames))
    agreement = _check_slic(labels, counts, expected)
    benchmark.extra_info["min_pixel_agreement"] = min(agreement)


# -- 5. descriptors ---------------------------------------------------------------------------


def _descriptors_per_frame(module, shot):
    return np.concatenate([
        module.superpixel_descriptors(shot.frames[i], shot.labels[i], int(shot.counts[i]),
                                      REFERENCE)
        for i in range(len(shot.frames))])


def _check_descriptors(out, expected) -> None:
    n_hog = descriptors.descriptor_dim(REFERENCE) - 6 * REFERENCE.color_bins - 2
    assert out.shape == expected.shape
    np.testing.assert_allclose(out[:, :n_hog], expected[:, :n_hog], rtol=0, atol=HOG_TOL)
    np.testing.assert_array_equal(out[:, n_hog:], expected[:, n_hog:])


@pytest.mark.benchmark(group="5 descriptors (8 frames)")
def test_descriptors_oracle(benchmark, shot, oracle_results):
    out = benchmark.pedantic(_descriptors_per_frame, (ref_descriptors, shot),
                             rounds=ORACLE_ROUNDS)
    oracle_results.put("descriptors", out)
    record(benchmark, units=SHOT_FRAMES, unit="frame", baseline=True)


@pytest.mark.benchmark(group="5 descriptors (8 frames)")
def test_descriptors_fast(benchmark, shot, oracle_results):
    out = benchmark.pedantic(_descriptors_per_frame, (descriptors, shot), rounds=FAST_ROUNDS,
                             warmup_rounds=1)
    record(benchmark, units=SHOT_FRAMES, unit="frame")
    _check_descriptors(out, oracle_results.get(
        "descriptors", lambda: _descriptors_per_frame(ref_descriptors, shot)))


@pytest.mark.benchmark(group="5 descriptors (8 frames)")
def test_descriptors_fast_batch(benchmark, shot, oracle_results):
    out, offsets = benchmark.pedantic(
        descriptors.superpixel_descriptors_batch, (shot.frames, shot.labels, shot.counts,
                                                   REFERENCE), rounds=FAST_ROUNDS,
        warmup_rounds=1)
    record(benchmark, units=SHOT_FRAMES, unit="frame")
    np.testing.assert_array_equal(offsets, shot.offsets)
    _check_descriptors(out, oracle_results.get(
        "descriptors", lambda: _descriptors_per_frame(ref_descriptors, shot)))


# -- 6. neighbour graph -------------------------------------------------------------------------


@pytest.mark.benchmark(group="6 graph (8 frames)")
def test_graph_oracle(benchmark, shot, oracle_results):
    out = benchmark.pedantic(ref_graph.transition_matrix, (shot.features, shot.offsets,
                                                           REFERENCE), rounds=ORACLE_ROUNDS)
    oracle_results.put("graph", out)
    record(benchmark, units=SHOT_FRAMES, unit="frame", baseline=True)


@pytest.mark.benchmark(group="6 graph (8 frames)")
def test_graph_fast(benchmark, shot, oracle_results):
    out = benchmark.pedantic(graph.transition_matrix, (shot.features, shot.offsets, REFERENCE),
                             rounds=FAST_ROUNDS, warmup_rounds=1)
    record(benchmark, units=SHOT_FRAMES, unit="frame")
    dense = oracle_results.get("graph", lambda: ref_graph.transition_matrix(
        shot.features, shot.offsets, REFERENCE))
    # Same neighbour sets and weights, up to float32 near-ties (see tests/test_graph.py).
    k = dense.shape[0]
    assert out.shape == (k, k)
    identical = 0
    for r in range(k):
        start, stop = out.indptr[r], out.indptr[r + 1]
        columns = out.indices[start:stop]
        theirs = np.flatnonzero(dense[r])
        assert columns.size == theirs.size
        if np.array_equal(columns, theirs):
            identical += 1
            np.testing.assert_allclose(out.data[start:stop], dense[r, theirs], rtol=T_RTOL)
    benchmark.extra_info["identical_rows"] = identical / k
    assert identical / k >= MIN_IDENTICAL_ROWS


# -- 7. consensus voting and blob removal ------------------------------------------------------


@pytest.fixture(scope="module")
def dense_transition(shot) -> np.ndarray:
    return shot.transition.toarray()


@pytest.mark.benchmark(group="7 voting (8 frames)")
def test_voting_oracle(benchmark, shot, dense_transition, oracle_results):
    out = benchmark.pedantic(ref_voting.consensus_voting,
                             (shot.votes, dense_transition, shot.labels, shot.offsets,
                              REFERENCE), rounds=ORACLE_ROUNDS)
    oracle_results.put("voting", out)
    record(benchmark, units=SHOT_FRAMES, unit="frame", baseline=True)


@pytest.mark.benchmark(group="7 voting (8 frames)")
def test_voting_fast(benchmark, shot, dense_transition, oracle_results):
    out = benchmark.pedantic(voting.consensus_voting,
                             (shot.votes, shot.transition, shot.labels, shot.offsets, REFERENCE),
                             rounds=FAST_ROUNDS, warmup_rounds=1)
    record(benchmark, units=SHOT_FRAMES, unit="frame")
    expected = oracle_results.get("voting", lambda: ref_voting.consensus_voting(
        shot.votes, dense_transition, shot.labels, shot.offsets, REFERENCE))
    np.testing.assert_allclose(out, expected.astype(np.float32), rtol=0, atol=VOTING_ATOL)
    assert (out > REFERENCE.foreground_threshold).any()  # something is segmented
