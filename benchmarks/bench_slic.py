"""Milliseconds per frame of the compiled SLIC against scikit-image's ``slic`` on real frames.

Reads the first ``--frames`` frames of a video (default: Debian opencv-doc's vtest.avi,
768x576 -> 650x487, the reference's working size) and times

- scikit-image's ``slic`` as the reference calls it (``fastunlc.reference.superpixels``),
  on the first ``--oracle-frames`` frames (it is slow);
- ``fastunlc.superpixels.slic_superpixels``, one frame per call (one thread);
- ``slic_superpixels_batch`` on all frames with 1 and with 2 threads;

each the best of ``--repeat`` runs (this machine may be shared), after a warm-up call
that compiles or loads the kernels. Then compares the labels with scikit-image's on the
oracle frames: superpixel counts, the share of pixels that agree after matching each
superpixel to the scikit-image one it overlaps most, and how many frames are identical.
``--max-iter N`` (repeatable) also times the faster variant with N k-means iterations
instead of the reference's ``slic_max_iter`` (10), on 1 and 2 threads, and gives its
agreement with the reference's labels on every frame (mean and worst frame).
Prints Markdown tables.

    python benchmarks/bench_slic.py                        # vtest.avi, 40 frames
    python benchmarks/bench_slic.py --video clip.mp4 --frames 110 --repeat 5
    python benchmarks/bench_slic.py --max-iter 5 --max-iter 3

Not part of the test run.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

from fastunlc.backend import cpu_threads, set_cpu_threads
from fastunlc.config import REFERENCE
from fastunlc.reference import superpixels as oracle
from fastunlc.superpixels import slic_superpixels, slic_superpixels_batch
from fastunlc.video import working_size

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.helpers, when run as python benchmarks/....py

from tests.helpers import VTEST, read_video_frames, video_size  # noqa: E402


def read_frames(video: Path, count: int) -> np.ndarray:
    """The first ``count`` frames of ``video`` at the working size, RGB uint8."""
    try:
        size = working_size(*video_size(video), REFERENCE.max_side)
        return read_video_frames(video, 0, count, size=size)
    except ValueError as err:
        raise SystemExit(str(err)) from None


def best_seconds(run, repeat: int) -> float:
    """Smallest wall time of ``repeat`` calls of ``run``."""
    best = float("inf")
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
    return best


def matched_agreement(labels: np.ndarray, reference: np.ndarray) -> float:
    """Share of pixels whose reference label is the one their superpixel overlaps most."""
    table = np.zeros((labels.max() + 1, reference.max() + 1), np.int64)
    np.add.at(table, (labels.ravel(), reference.ravel()), 1)
    return table.max(axis=1).sum() / labels.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=VTEST)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--oracle-frames", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--original-ms", type=float, default=None,
                        help="the original uNLC's SLIC milliseconds per frame on this machine "
                             "(superpixels seconds / frames from compare_reference.py): adds a "
                             "column of ratios against it")
    parser.add_argument("--max-iter", type=int, action="append", default=[], metavar="N",
                        help="also time slic_max_iter=N and score it against the reference's "
                             "labels (repeatable)")
    args = parser.parse_args()
    if any(n < 1 for n in args.max_iter):
        parser.error("--max-iter must be >= 1")

    frames = read_frames(args.video, args.frames)
    n, h, w = frames.shape[:3]
    checked = frames[:args.oracle_frames]
    threads = cpu_threads()
    slic_superpixels_batch(frames[:2])  # untimed first call (page faults, allocations)

    per_frame = {}
    per_frame["scikit-image slic (reference)"] = best_seconds(
        lambda: [oracle.slic_superpixels(f) for f in checked], 1) / len(checked)
    per_frame["slic_superpixels, one call per frame"] = best_seconds(
        lambda: [slic_superpixels(f) for f in frames], args.repeat) / n
    variants = {f"slic_max_iter={it}": REFERENCE.replace(slic_max_iter=it)
                for it in args.max_iter}
    try:
        for t in sorted({1, min(2, threads)}):
            set_cpu_threads(t)
            per_frame[f"slic_superpixels_batch, {t} thread{'s' * (t > 1)}"] = best_seconds(
                lambda: slic_superpixels_batch(frames), args.repeat) / n
            for name, config in variants.items():
                per_frame[f"{name}, {t} thread{'s' * (t > 1)}"] = best_seconds(
                    lambda config=config: slic_superpixels_batch(frames, config),
                    args.repeat) / n
    finally:
        set_cpu_threads(threads)

    print(f"{args.video.name}: {n} frames of {w}x{h}; {platform.processor() or platform.machine()}"
          f", {threads} threads available\n")
    reference = per_frame["scikit-image slic (reference)"]
    original = args.original_ms
    print("| variant | ms / frame | vs scikit-image |"
          + (f" vs original uNLC ({original:.1f} ms) |" if original else ""))
    print("| --- | ---: | ---: |" + (" ---: |" if original else ""))
    for name, seconds in per_frame.items():
        print(f"| {name} | {seconds * 1e3:.1f} | {reference / seconds:.1f}x |"
              + (f" {original / (seconds * 1e3):.1f}x |" if original else ""))

    print("\n| frame | superpixels (ours / scikit-image) | matched agreement | identical |")
    print("| ---: | ---: | ---: | :---: |")
    labels, counts = slic_superpixels_batch(checked)
    for i, frame in enumerate(checked):
        expected, n_expected = oracle.slic_superpixels(frame)
        agreement = min(matched_agreement(labels[i], expected),
                        matched_agreement(expected, labels[i]))
        identical = "yes" if np.array_equal(labels[i], expected) else "no"
        print(f"| {i} | {counts[i]} / {n_expected} | {agreement:.5f} | {identical} |")

    if variants:
        exact, _ = slic_superpixels_batch(frames)
        print(f"\n| variant | matched agreement with slic_max_iter={REFERENCE.slic_max_iter}, "
              f"mean over {n} frames | worst frame | superpixels (mean) |")
        print("| --- | ---: | ---: | ---: |")
        for name, config in variants.items():
            labels, counts = slic_superpixels_batch(frames, config)
            scores = [min(matched_agreement(a, b), matched_agreement(b, a))
                      for a, b in zip(labels, exact, strict=True)]
            print(f"| {name} | {np.mean(scores):.4f} | {min(scores):.4f} | "
                  f"{counts.mean():.1f} |")


if __name__ == "__main__":
    main()
