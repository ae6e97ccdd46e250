"""How the stages of ``fastunlc.pipeline.segment_shot`` scale, on real frames.

Three studies, each timing one shot per setting with the pipeline's own StageTimer:

(a) frames per shot: 10, 20, 40, 80, 110 frames at 650 px;
(b) superpixels per frame: n_segments 100, 200, 400, 800 on 40 frames at 650 px;
(c) resolution: longer side 160, 320, 480, 650 px on 40 frames.

Frames are the first ones of a clip (OpenCV's vtest.avi by default, 768x576), decoded
and resized by ``fastunlc.video`` as the pipeline does. Every setting runs once per
flow method (flow itself is always computed on 100x100 frames, so in (b) and (c) only
its per-frame share changes, not its cost). With ``--repeat N`` each stage's time is
the minimum over N runs. Numba's kernels are compiled (or loaded from its cache) by
a warm-up shot first.

Writes the measurements as JSON and a plot (one panel per study, seconds per frame
per stage) and prints a Markdown table::

    python benchmarks/scaling.py                           # all studies, ~5 min on 2 cores
    python benchmarks/scaling.py --quick                   # a smaller grid, ~1 min
    python benchmarks/scaling.py --out results/scaling.png # also writes results/scaling.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from fastunlc.config import REFERENCE, UNLCConfig
from fastunlc.pipeline import StageTimer, segment_shot
from fastunlc.video import FrameSource, resize_frame, working_size

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.helpers, when run as python benchmarks/....py

from tests.helpers import VTEST  # noqa: E402

STAGES = ("flow", "saliency", "superpixels", "descriptors", "graph", "voting")
STUDIES = {  # panel titles, filled in with the grid's base_frames
    "frames": "(a) frames per shot, 650 px",
    "n_segments": "(b) superpixels per frame (n_segments), {} frames",
    "max_side": "(c) longer side (px), {} frames",
}
FULL_GRID = {"frames": [10, 20, 40, 80, 110], "n_segments": [100, 200, 400, 800],
             "max_side": [160, 320, 480, 650], "base_frames": 40}
QUICK_GRID = {"frames": [10, 40], "n_segments": [100, 800], "max_side": [160, 650],
              "base_frames": 10}


def read_frames(video: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` frames of ``video`` at their own size, RGB uint8."""
    frames = [frame for _, frame in FrameSource(video).frames(0, count)]
    if len(frames) < count:
        raise SystemExit(f"{video} has {len(frames)} frames, the study needs {count}")
    return frames


def at_side(frames: list[np.ndarray], max_side: int) -> np.ndarray:
    """Frames shrunk as the pipeline does for ``max_side``: ``(n, h, w, 3)`` uint8."""
    h, w = frames[0].shape[:2]
    size = working_size(h, w, max_side)
    return np.stack([resize_frame(frame, size) for frame in frames])


def time_shot(frames: np.ndarray, config: UNLCConfig) -> dict:
    """One run of :func:`segment_shot` on ``frames``: seconds per stage and what it made."""
    timer = StageTimer()
    result = segment_shot(frames, config, timer=timer)
    n, h, w, _ = frames.shape
    return {"frames": n, "height": h, "width": w, "flow": config.flow,
            "n_segments": config.n_segments, "superpixels": result.n_superpixels,
            "saliency_kind": result.saliency,
            "seconds": {stage: timer.seconds.get(stage, 0.0) for stage in STAGES}}


def run_studies(video: Path, grid: dict, flows: list[str], repeat: int) -> list[dict]:
    """Every setting of the three studies, ``repeat`` times; each stage's minimum kept."""
    longest = max(*grid["frames"], grid["base_frames"])
    source = read_frames(video, longest)
    working = at_side(source, REFERENCE.max_side)
    base = working[: grid["base_frames"]]
    sides = {side: base if side == REFERENCE.max_side
             else at_side(source[: grid["base_frames"]], side) for side in grid["max_side"]}
    settings = []  # (study, value, frames, config)
    for flow in flows:
        config = REFERENCE.replace(flow=flow)
        settings += [("frames", n, working[:n], config) for n in grid["frames"]]
        settings += [("n_segments", k, base, config.replace(n_segments=k))
                     for k in grid["n_segments"]]
        settings += [("max_side", side, sides[side], config) for side in grid["max_side"]]

    for flow in flows:  # warm-up: compile or load every kernel
        segment_shot(working[:8], REFERENCE.replace(flow=flow))

    # Whole passes over the grid rather than back-to-back repeats: a burst of load from
    # another process then spoils one run of several settings, not every run of one.
    cases: list[dict] = []
    for run in range(repeat):
        for i, (study, value, frames, config) in enumerate(settings):
            began = time.perf_counter()
            case = {"study": study, "value": value, **time_shot(frames, config)}
            if run:
                case["seconds"] = {stage: min(seconds, cases[i]["seconds"][stage])
                                   for stage, seconds in case["seconds"].items()}
                cases[i] = case
            else:
                cases.append(case)
            print(f"  run {run + 1}/{repeat} {study}={value} flow={config.flow}: "
                  f"{case['frames']} frames {case['width']}x{case['height']}, "
                  f"{case['superpixels']} superpixels, "
                  f"{time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
    for case in cases:
        case["total_seconds"] = sum(case["seconds"].values())
    return cases


def markdown(cases: list[dict]) -> str:
    head = ["study", "setting", "flow", "frames", "size", "superpixels",
            *STAGES, "total s/frame"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in sorted(cases, key=lambda c: (list(STUDIES).index(c["study"]), c["flow"],
                                          c["value"])):
        per_frame = [f"{c['seconds'][s] / c['frames']:.4f}" for s in STAGES]
        lines.append("| " + " | ".join([
            c["study"], str(c["value"]), c["flow"], str(c["frames"]),
            f"{c['width']}x{c['height']}", str(c["superpixels"]), *per_frame,
            f"{c['total_seconds'] / c['frames']:.4f}"]) + " |")
    return "\n".join(lines)


def plot(cases: list[dict], path: Path, title: str, base_frames: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    flows = sorted({c["flow"] for c in cases})
    styles = dict(zip(flows, ["-", "--", ":"], strict=False))
    colours = dict(zip(STAGES, plt.get_cmap("tab10").colors, strict=False))
    fig, axes = plt.subplots(1, len(STUDIES), figsize=(5.2 * len(STUDIES), 4.6), sharey=True)
    for ax, (study, label) in zip(axes, STUDIES.items(), strict=True):
        for flow in flows:
            rows = sorted((c for c in cases if c["study"] == study and c["flow"] == flow),
                          key=lambda c: c["value"])
            if not rows:
                continue
            x = [c["value"] for c in rows]
            for stage in STAGES:
                ax.plot(x, [c["seconds"][stage] / c["frames"] for c in rows], styles[flow],
                        color=colours[stage], marker="o", markersize=3)
            ax.plot(x, [c["total_seconds"] / c["frames"] for c in rows], styles[flow],
                    color="black", linewidth=2, marker="o", markersize=3)
        ax.set_title(label.format(base_frames), fontsize=10)
        ax.set_xlabel(study)
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("seconds per frame")
    # Colour says the stage, line style the flow method.
    handles = [Line2D([], [], color=colours[stage], label=stage) for stage in STAGES]
    handles.append(Line2D([], [], color="black", linewidth=2, label="total"))
    handles += [Line2D([], [], color="grey", linestyle=styles[flow], label=f"{flow} flow")
                for flow in flows]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8,
               frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=VTEST,
                        help="clip whose first frames are used (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("scaling.png"),
                        help="plot to write; the JSON goes beside it with a .json suffix "
                             "(default: %(default)s)")
    parser.add_argument("--flow", nargs="+", choices=("c2f", "dis"), default=None,
                        help="flow methods (default: c2f dis; c2f with --quick)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per setting, each stage's minimum kept (default: 2; "
                             "1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a smaller grid on 10-frame shots, for trying the script out")
    args = parser.parse_args(argv)
    if not args.video.exists():
        raise SystemExit(f"{args.video} not found (Debian: apt-get install opencv-doc), "
                         "or pass --video")
    grid = QUICK_GRID if args.quick else FULL_GRID
    flows = args.flow or (["c2f"] if args.quick else ["c2f", "dis"])
    repeat = args.repeat or (1 if args.quick else 2)

    began = time.perf_counter()
    load_before = os.getloadavg()
    cases = run_studies(args.video, grid, flows, repeat)
    wall = time.perf_counter() - began

    from fastunlc.backend import cpu_threads

    report = {
        "video": str(args.video), "quick": args.quick, "repeat": repeat, "flows": flows,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "wall_seconds": wall,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpu_count": os.cpu_count(), "cpu_threads": cpu_threads(),
                    "python": platform.python_version(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "stages": list(STAGES), "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    json_path = args.out.with_suffix(".json")
    json_path.write_text(json.dumps(report, indent=1))
    plot(cases, args.out, f"fastunlc segment_shot scaling on {args.video.name} "
                          f"({os.cpu_count()} cores, minimum of {repeat} run(s))",
         grid["base_frames"])
    print(markdown(cases))
    print(f"\n{len(cases)} settings in {wall:.0f} s; wrote {json_path} and {args.out}")


if __name__ == "__main__":
    main()
