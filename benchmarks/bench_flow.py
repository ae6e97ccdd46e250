"""Seconds per pair of the compiled coarse-to-fine flow (``flow="c2f"``) on a real shot.

Times ``fastunlc._C.coarse2fine_flow_pairs`` on the pairs of a shot of real frames at the
reference's flow size (100 x 100, pairs up to 3 frames apart: 228 pairs for 40 frames),
on 1 and 2 threads, both packed (the default: 8 pairs per SIMD lane group with AVX-512)
and one pair at a time (``pack=1``, the path the previous, per-pair version took), and
checks that both give the same flow bit for bit. Then times the NumPy oracle
(``fastunlc.reference.flow``) against the compiled flow on a small input and reports
their largest difference. Every time is the best of ``--repeat`` runs (this machine may
be shared), and includes building the frames' pyramids (once per frame).

    python benchmarks/bench_flow.py                      # vtest.avi, 40 frames
    python benchmarks/bench_flow.py --video clip.mp4 --frames 110 --repeat 5

Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from fastunlc import _C
from fastunlc.config import REFERENCE
from fastunlc.flow import flow_pairs, resize_for_flow
from fastunlc.reference import flow as ref_flow

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.helpers, when run as python benchmarks/....py

from tests.helpers import VTEST, read_video_frames  # noqa: E402

PARAMS = (REFERENCE.c2f_alpha, REFERENCE.c2f_ratio, REFERENCE.c2f_min_width,
          REFERENCE.c2f_outer_iterations, REFERENCE.c2f_inner_iterations,
          REFERENCE.c2f_sor_iterations)


def read_frames(video: Path, count: int) -> np.ndarray:
    """The first ``count`` frames of ``video``, RGB uint8."""
    frames = read_video_frames(video, 0, count) if video.is_file() else []
    if len(frames) < 2:
        raise SystemExit(f"{video}: fewer than 2 frames could be read")
    return frames


def best_seconds(repeat: int, run, *args) -> tuple[float, np.ndarray]:
    """Fastest of ``repeat`` calls of ``run(*args)`` and the last result."""
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        result = run(*args)
        best = min(best, time.perf_counter() - began)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=VTEST)
    parser.add_argument("--frames", type=int, default=40, help="frames of the shot (>= 2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best counts")
    parser.add_argument("--oracle-size", type=int, default=32,
                        help="side of the frames of the oracle comparison (pixels)")
    args = parser.parse_args()

    small = resize_for_flow(read_frames(args.video, args.frames), REFERENCE.flow_size) / 255.0
    pairs = flow_pairs(len(small), REFERENCE.flow_radius)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"date: {time.strftime('%Y-%m-%d')}; lanes per pack: {_C.C2F_PACK_WIDTH}")
    print(f"shot: {args.video.name}, {len(small)} frames at {small.shape[2]}x{small.shape[1]}, "
          f"{len(pairs)} pairs; best of {args.repeat}\n")
    print("| solver | threads | s/pair |")
    print("|---|---|---|")
    flows = {}
    for pack, name in ((0, "packed"), (1, "one pair at a time")):
        for threads in (1, 2):
            seconds, flows[pack, threads] = best_seconds(
                args.repeat, _C.coarse2fine_flow_pairs, small, pairs, *PARAMS, threads, pack,
                True)
            print(f"| {name} | {threads} | {seconds / len(pairs):.5f} |")
    same = all(np.array_equal(f.view(np.uint64), flows[0, 1].view(np.uint64))
               for f in flows.values())
    print(f"\nall four give the same float64 flow bit for bit: {same}")

    side = args.oracle_size
    tiny = resize_for_flow(read_frames(args.video, 2), side) / 255.0
    oracle_seconds, expected = best_seconds(1, ref_flow.coarse2fine_flow, tiny[0], tiny[1],
                                            *PARAMS)
    fast_seconds, got = best_seconds(args.repeat, _C.coarse2fine_flow_pairs, tiny,
                                     np.array([[0, 1]]), *PARAMS, 1, 1, True)
    print(f"\noracle ({side}x{side}, 1 pair): NumPy {oracle_seconds:.2f} s, C++ one pair "
          f"{fast_seconds:.5f} s ({oracle_seconds / fast_seconds:.0f}x); "
          f"max |C++ - NumPy| = {np.abs(got[0] - expected).max():.2e} px")


if __name__ == "__main__":
    main()
