"""Shared inputs of the stage benchmarks: real vtest.avi frames and one shot's intermediates.

Every input is computed once per session with the fast path, so that each benchmark
times one stage on the output of the stages before it, exactly as the pipeline hands
it over. Frames are OpenCV's ``vtest.avi`` (Debian's opencv-doc samples) resized to
650x487, the reference's working size; a benchmark that needs them is skipped when
the samples are not installed.

Each benchmark records what it processed (frames, pairs) with :func:`record`; at the
end of the session a table gives seconds per unit and every variant's speed-up over
its group's baseline (the oracle; for flow, the C++ solving one pair at a time). Times
are the minimum over the rounds, the least disturbed by other processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from fastunlc import descriptors, flow, graph, saliency, superpixels
from fastunlc.config import REFERENCE

# The fixture is re-exported: pytest finds fixtures by name in this module.
from tests.conftest import opencv_data  # noqa: F401
from tests.helpers import read_video_frames

FRAME_SIZE = (487, 650)
"""(h, w) of the benchmark frames: vtest.avi's 768x576 at the reference's max side 650."""
FEATURE_FRAMES = 40
"""Frames of the shot-feature benchmark (the issue's 40-frame measurements)."""
SHOT_FRAMES = 8
"""Frames of the shot on which the dense oracles (graph, voting) still fit comfortably."""
FLOW_FRAMES = 16
"""Frames of the flow benchmark: 84 pairs of 100x100 frames at flow_radius 3."""
KTS_SIZE = (243, 325)
"""(h, w) at which every frame of vtest.avi is read for the KTS benchmark's features
(half the working size: the histograms of a whole video, read quickly)."""


@dataclass(frozen=True)
class Shot:
    """One shot of real frames and everything the fast stages make of it.

    Attributes
    ----------
    frames : (n, 487, 650, 3) uint8
        RGB frames.
    small : (n, 100, 100, 3) uint8
        Frames at flow resolution.
    pairs : (P, 2) int32
        Flow pairs at the reference's radius.
    flows : (P, 100, 100, 2) float32
        c2f flow of every pair.
    motion : fastunlc.saliency.MotionSaliency
        Motion saliency at flow resolution.
    labels : (n, 487, 650) int32
        SLIC superpixels of every frame.
    counts : (n,) int64
        Superpixels per frame.
    offsets : (n + 1,) int64
        Frame f owns superpixels ``offsets[f] .. offsets[f + 1] - 1``.
    features : (k, 176) float64
        Superpixel descriptors.
    votes : (k,) float64
        Initial votes (mean saliency per superpixel) in [0, 1].
    transition : (k, k) scipy.sparse.csr_matrix
        Transition matrix of the neighbour graph.
    """

    frames: np.ndarray
    small: np.ndarray
    pairs: np.ndarray
    flows: np.ndarray
    motion: saliency.MotionSaliency
    labels: np.ndarray
    counts: np.ndarray
    offsets: np.ndarray
    features: np.ndarray
    votes: np.ndarray
    transition: object


@pytest.fixture(scope="session")
def vtest_path(opencv_data: Path) -> Path:  # noqa: F811 (the imported fixture)
    return opencv_data / "vtest.avi"


@pytest.fixture(scope="session")
def vtest_frames(vtest_path: Path) -> np.ndarray:
    """The first FEATURE_FRAMES frames of vtest.avi, ``(40, 487, 650, 3)`` uint8 RGB."""
    return read_video_frames(vtest_path, count=FEATURE_FRAMES, size=FRAME_SIZE)


@pytest.fixture(scope="session")
def shot(vtest_frames: np.ndarray) -> Shot:
    """The first SHOT_FRAMES frames as a shot, with every stage's fast output."""
    frames = np.ascontiguousarray(vtest_frames[:SHOT_FRAMES])
    n = len(frames)
    small = flow.resize_for_flow(frames, REFERENCE.flow_size)
    pairs = flow.flow_pairs(n, REFERENCE.flow_radius)
    flows = flow.optical_flow(small, pairs, REFERENCE)
    motion = saliency.motion_saliency(flows, pairs, n, REFERENCE)
    segmented = [superpixels.slic_superpixels(f, REFERENCE) for f in frames]
    labels = np.stack([lab for lab, _ in segmented])
    counts = np.array([k for _, k in segmented], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    features = np.concatenate([
        descriptors.superpixel_descriptors(frames[i], labels[i], int(counts[i]), REFERENCE)
        for i in range(n)])
    votes, _ = saliency.superpixel_saliency(motion.saliency, labels, offsets, REFERENCE)
    transition = graph.transition_matrix(features, offsets, REFERENCE)
    return Shot(frames, small, pairs, flows, motion, labels, counts, offsets, features, votes,
                transition)


class OracleResults:
    """Results of the oracle benchmarks, kept so that the fast benchmarks of the same
    group check against them without running the oracle a second time."""

    def __init__(self) -> None:
        self._results: dict[str, object] = {}

    def put(self, key: str, value: object) -> None:
        self._results[key] = value

    def get(self, key: str, compute) -> object:
        """The stored result, or ``compute()`` when its benchmark did not run."""
        if key not in self._results:
            self._results[key] = compute()
        return self._results[key]


@pytest.fixture(scope="session")
def oracle_results() -> OracleResults:
    return OracleResults()


# -- the speed-up summary --------------------------------------------------------------------

_RECORDS: list[dict] = []


def record(benchmark, *, units: int, unit: str, baseline: bool = False) -> None:
    """Note a finished benchmark for the session's speed-up table.

    Parameters
    ----------
    benchmark : pytest-benchmark fixture
        After its run.
    units : int
        How many ``unit`` (frames, pairs) the timed call processed.
    unit : str
        ``"frame"``, ``"pair"``, ...
    baseline : bool
        Whether this is what the group's speed-ups are relative to: the oracle
        (``fastunlc.reference``), or for flow the C++ solving one pair at a time.
    """
    benchmark.extra_info.update(units=units, unit=unit, baseline=baseline)
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable: nothing was timed
        return
    seconds = stats.stats.min
    benchmark.extra_info[f"min_s_per_{unit}"] = seconds / units
    _RECORDS.append({"group": benchmark.group, "name": benchmark.name, "seconds": seconds,
                     "units": units, "unit": unit, "baseline": baseline})


def pytest_terminal_summary(terminalreporter) -> None:
    if not _RECORDS:
        return
    write = terminalreporter.write_line
    write("")
    write("fastunlc stage benchmarks: minimum seconds per unit, speed-up over the group's "
          "baseline")
    write(f"{'group':<34} {'benchmark':<44} {'s/unit':>12} {'unit':<6} {'speed-up':>9}")
    for group in dict.fromkeys(r["group"] for r in _RECORDS):
        rows = [r for r in _RECORDS if r["group"] == group]
        base = next((r for r in rows if r["baseline"]), None)
        for r in rows:
            per_unit = r["seconds"] / r["units"]
            ratio = ("baseline" if r["baseline"] else
                     f"{base['seconds'] / base['units'] / per_unit:8.1f}x" if base else "")
            write(f"{group:<34} {r['name']:<44} {per_unit:12.6f} {r['unit']:<6} {ratio:>9}")
