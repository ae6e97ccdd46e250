"""Milliseconds per frame of the neighbour graph (stage 5) on a real shot's descriptors.

Reads the first ``--frames`` frames of a video (default: Debian opencv-doc's vtest.avi,
768x576 -> 650x487, the reference's working size) as one shot, computes their SLIC
superpixels and descriptors once, then times

- ``graph.knn_graph``: the windowed k-NN search alone (each superpixel's M = 62 nearest
  within +-15 frames);
- ``graph.transition_matrix``: the search, the weights and the sparse matrix;

with 1 and with 2 threads, each the best of ``--repeat`` runs after an untimed call, and
checks that both thread counts give the same graph bit for bit. Prints a Markdown table
and the path of the fastunlc it imported, so that one script times two checkouts: run it
with each checkout's interpreter (the script imports fastunlc before it puts this
repository on ``sys.path`` for the test helpers).

    python benchmarks/bench_graph.py                        # vtest.avi, 40 frames
    /other/venv/bin/python benchmarks/bench_graph.py --repeat 10

Not part of the test run.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np

import fastunlc
from fastunlc import graph
from fastunlc.backend import cpu_threads, set_cpu_threads
from fastunlc.config import REFERENCE
from fastunlc.descriptors import superpixel_descriptors_batch
from fastunlc.superpixels import slic_superpixels_batch
from fastunlc.video import working_size

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.helpers, when run as python benchmarks/....py

from bench_slic import best_seconds  # noqa: E402 (this script's folder is sys.path[0])

from tests.helpers import VTEST, read_video_frames, video_size  # noqa: E402


def shot_descriptors(video: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors (k, d) float64 and frame offsets (count + 1,) int64 of ``video``'s
    first ``count`` frames at the working size."""
    try:
        size = working_size(*video_size(video), REFERENCE.max_side)
        frames = read_video_frames(video, 0, count, size=size)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    labels, counts = slic_superpixels_batch(frames, REFERENCE)
    return superpixel_descriptors_batch(frames, labels, counts, REFERENCE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=VTEST, help="default: %(default)s")
    parser.add_argument("--frames", type=int, default=40, help="default: %(default)s")
    parser.add_argument("--repeat", type=int, default=5, help="default: %(default)s")
    args = parser.parse_args()
    if args.frames < 1 or args.repeat < 1:
        raise SystemExit("--frames and --repeat must be at least 1")

    features, offsets = shot_descriptors(args.video, args.frames)
    n = len(offsets) - 1
    threads = cpu_threads()
    per_frame, graphs = {}, {}
    try:
        for t in sorted({1, min(2, threads)}):
            set_cpu_threads(t)
            for function in (graph.knn_graph, graph.transition_matrix):
                function(features, offsets, REFERENCE)  # untimed first call
                per_frame[f"{function.__name__}, {t} thread{'s' * (t > 1)}"] = best_seconds(
                    lambda f=function: f(features, offsets, REFERENCE), args.repeat) / n
            graphs[t] = graph.knn_graph(features, offsets, REFERENCE)
    finally:
        set_cpu_threads(threads)

    same = all(np.array_equal(g[0], graphs[1][0]) and np.array_equal(g[1], graphs[1][1])
               for g in graphs.values())
    print(f"fastunlc from {Path(fastunlc.__file__).parent}")
    print(f"{args.video.name}: {n} frames, {features.shape[0]} superpixels of "
          f"{features.shape[1]} dimensions; {platform.processor() or platform.machine()}, "
          f"{threads} threads available; same graph on every thread count: "
          f"{'yes' if same else 'no'}\n")
    print("| function | ms / frame |")
    print("| --- | ---: |")
    for name, seconds in per_frame.items():
        print(f"| {name} | {seconds * 1e3:.1f} |")


if __name__ == "__main__":
    main()
