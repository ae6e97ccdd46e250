"""The CUDA backend on a real GPU: frames/s per stage and end to end, memory, agreement.

Measures, for 110-frame shots of vtest.avi at its working size (650 x 487):

- seconds per stage and frames/s of one resident shot (:func:`fastunlc.resident.segment_shot`,
  frames already decoded and on the host);
- frames/s with 1, 2 and 4 shots in flight on separate streams
  (:func:`fastunlc.resident.segment_shots`);
- frames/s with decoding: :func:`fastunlc.pipeline.segment_video` of the whole clip with
  ``device="cuda"`` (decoding, shot detection and the GPU work);
- GPU memory in use at the stage boundaries of one shot, the most seen (a lower bound
  of the peak: a stage's own transients between its boundaries are not seen);
- the CPU backend on the same shot and machine (its speed-up) and the agreement of the
  two backends' masks (mean IoU of ``p > 0.7`` per frame) on that shot and on the
  synthetic ground-truth clips of ``tests/test_groundtruth.py``, whose IoU against the
  exact masks is given for both backends.

It refuses to run without a GPU (Numba's simulator is ~10^5 times slower and would
measure Python, not the GPU). Prints a Markdown table for ``benchmarks/RESULTS.md`` and
writes the figures as JSON::

    python benchmarks/gpu_throughput.py [--out gpu.json] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastunlc import pipeline, resident  # noqa: E402
from fastunlc.config import REFERENCE  # noqa: E402
from fastunlc.synthetic import make_clip  # noqa: E402
from fastunlc.video import working_size  # noqa: E402
from tests.helpers import OPENCV_DATA, read_video_frames, video_size  # noqa: E402

CLIP = OPENCV_DATA / "vtest.avi"
SHOT_FRAMES = 110
GROUND_TRUTH = [("static", 1, 4), ("pan", 1, 4), ("zoom", 1, 4), ("shake", 2, 4)]


def mean_iou(a: np.ndarray, b: np.ndarray, threshold: float = 0.7) -> float:
    """Mean over frames of the IoU of ``a > threshold`` and ``b`` (bool, or > threshold)."""
    scores = []
    for x, y in zip(a, b, strict=True):
        x, y = x > threshold, y if y.dtype == bool else y > threshold
        union = np.logical_or(x, y).sum()
        scores.append(np.logical_and(x, y).sum() / union if union else 1.0)
    return float(np.mean(scores))


def gpu_name() -> str:
    from numba import cuda

    name = cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else str(name)


def memory_in_use() -> int:
    """Bytes of GPU memory in use on the current device (all processes)."""
    from numba import cuda

    free, total = cuda.current_context().get_memory_info()
    return int(total - free)


def one_shot(frames: np.ndarray, repeats: int) -> dict:
    """Best-of-``repeats`` stage seconds of one resident shot, and its memory."""
    gpu = REFERENCE.replace(device="cuda")
    resident.segment_shot(frames, gpu)  # compiles every kernel
    best: dict[str, float] = {}
    totals = []
    for _ in range(repeats):
        timer = pipeline.StageTimer()
        began = time.perf_counter()
        result = resident.segment_shot(frames, gpu, timer=timer)
        totals.append(time.perf_counter() - began)
        for stage, seconds in timer.seconds.items():
            best[stage] = min(best.get(stage, np.inf), seconds)
    before = memory_in_use()
    seen = [before]
    resident.segment_shot(frames, gpu, on_stage=lambda stage: seen.append(memory_in_use()))
    seen.append(memory_in_use())
    return {"stage_seconds": best, "seconds": min(totals), "masks": result.masks,
            "memory_bytes": max(seen) - before}


def in_flight(frames: np.ndarray, shots: int, counts: tuple[int, ...]) -> dict[int, float]:
    """Frames/s of ``shots`` copies of the shot with each number of shots in flight."""
    gpu = REFERENCE.replace(device="cuda")
    rates = {}
    for count in counts:
        began = time.perf_counter()
        for _ in resident.segment_shots([frames] * shots, gpu, in_flight=count):
            pass
        rates[count] = shots * len(frames) / (time.perf_counter() - began)
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_throughput.json"))
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (best kept)")
    args = parser.parse_args()

    import numba
    from numba import cuda

    if numba.config.ENABLE_CUDASIM or not cuda.is_available():
        print("not measured on a GPU: no CUDA GPU is visible (or NUMBA_ENABLE_CUDASIM is "
              "set); run this on a machine with one", file=sys.stderr)
        return 2
    if not CLIP.exists():
        print(f"{CLIP} is missing: apt-get install opencv-doc", file=sys.stderr)
        return 2
    h, w = working_size(*video_size(CLIP), REFERENCE.max_side)
    frames = read_video_frames(CLIP, 0, SHOT_FRAMES, size=(h, w))
    report: dict = {"device": gpu_name(), "host": platform.node(),
                    "date": time.strftime("%Y-%m-%d"), "frames": len(frames),
                    "size": [h, w]}

    gpu = one_shot(frames, args.repeats)
    report["stage_frames_per_second"] = {s: len(frames) / t
                                         for s, t in gpu["stage_seconds"].items()}
    report["one_shot_frames_per_second"] = len(frames) / gpu["seconds"]
    report["memory_mb_per_shot"] = gpu["memory_bytes"] / 2**20
    report["in_flight_frames_per_second"] = in_flight(frames, 8, (1, 2, 4))

    began = time.perf_counter()
    decoded = pipeline.segment_video(CLIP, REFERENCE.replace(device="cuda"))
    report["with_decoding_frames_per_second"] = (
        sum(len(s.frame_indices) for s in decoded.shots) / (time.perf_counter() - began))

    began = time.perf_counter()
    cpu = pipeline.segment_shot(frames, REFERENCE)
    report["cpu_frames_per_second"] = len(frames) / (time.perf_counter() - began)
    report["speed_up"] = report["one_shot_frames_per_second"] / report["cpu_frames_per_second"]
    report["agreement_vtest"] = mean_iou(gpu["masks"], cpu.masks)

    report["ground_truth"] = {}
    for camera, objects, seed in GROUND_TRUTH:
        clip = make_clip(24, (180, 240), camera=camera, n_objects=objects, seed=seed)
        on_gpu = pipeline.segment_shot(clip.frames, REFERENCE.replace(device="cuda")).masks
        on_cpu = pipeline.segment_shot(clip.frames, REFERENCE).masks
        report["ground_truth"][camera] = {
            "agreement": mean_iou(on_gpu, on_cpu), "gpu_iou": mean_iou(on_gpu, clip.masks),
            "cpu_iou": mean_iou(on_cpu, clip.masks)}

    args.out.write_text(json.dumps(report, indent=2))
    print(f"| what | {report['device']}, {report['date']} |\n|---|---|")
    for stage, rate in report["stage_frames_per_second"].items():
        print(f"| {stage}, frames/s | {rate:,.0f} |")
    print(f"| one shot end to end, no decoding, frames/s | "
          f"{report['one_shot_frames_per_second']:,.0f} |")
    for count, rate in report["in_flight_frames_per_second"].items():
        print(f"| {count} shots in flight, frames/s | {rate:,.0f} |")
    print(f"| with decoding (segment_video), frames/s | "
          f"{report['with_decoding_frames_per_second']:,.0f} |")
    print(f"| GPU memory per shot (stage boundaries), MB | {report['memory_mb_per_shot']:,.0f} |")
    print(f"| CPU backend, same shot and machine, frames/s | "
          f"{report['cpu_frames_per_second']:,.1f} (speed-up {report['speed_up']:,.0f}x) |")
    print(f"| masks, GPU vs CPU, vtest.avi, mean IoU | {report['agreement_vtest']:.3f} |")
    for camera, row in report["ground_truth"].items():
        print(f"| ground truth {camera}: GPU vs CPU / GPU vs truth / CPU vs truth | "
              f"{row['agreement']:.3f} / {row['gpu_iou']:.3f} / {row['cpu_iou']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
