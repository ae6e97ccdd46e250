"""Command line: ``fastunlc segment`` turns videos into soft foreground masks.

Only this module prints. Each input either succeeds or gets one line saying why it
failed; one bad input never stops the others.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import traceback
from pathlib import Path

from . import __version__
from .config import UNLCConfig
from .errors import FastUNLCError

logger = logging.getLogger("fastunlc")

SEGMENT_HELP = """\
Segment the moving objects of each INPUT (a video file, or a folder of .jpg/.png frames
as DAVIS and FBMS lay them out) with unsupervised Non-Local Consensus (uNLC), the method
the paper "Learning Features by Watching Objects Move" uses to make pseudo ground truth.

For every input NAME it writes, under --out:
  NAME/masks/00042.png   soft foreground mask of source frame 42: 8-bit grey,
                         value = round(255 * p); foreground is p > 0.7 (value > 178)
  NAME/report.json       shots, processed frames, which saliency was used and why,
                         seconds per stage, peak memory
  NAME/preview.png       a contact sheet of frames with their masks, to look at

Long shots are subsampled (at most 110 frames each), so not every frame gets a mask:
report.json lists the processed frames. Results appear only when complete.

examples:
  fastunlc segment bikes.mp4 --out masks/
  fastunlc segment DAVIS/JPEGImages/480p/bear --out masks/ --flow dis
  fastunlc segment a.mp4 b.mp4 --out masks/ --start 100 --max-frames 200
"""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastunlc",
        description="fastunlc: fast unsupervised video segmentation (uNLC) for motion-based "
                    "pseudo ground truth.",
        epilog="Run 'fastunlc segment --help' to start.",
    )
    parser.add_argument("--version", action="version", version=f"fastunlc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    seg = sub.add_parser("segment", help="videos or frame folders in, soft masks out",
                         description=SEGMENT_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    seg.add_argument("inputs", nargs="+", metavar="INPUT", help="video file or folder of frames")
    seg.add_argument("--out", required=True, type=Path, metavar="DIR",
                     help="output folder (created if missing)")
    seg.add_argument("--flow", choices=("c2f", "dis"), default="c2f",
                     help="optical flow: c2f = the reference's coarse-to-fine variational flow "
                          "(default), dis = OpenCV's DIS, faster")
    seg.add_argument("--start", type=int, default=0, metavar="N",
                     help="first source frame to use (0-based, default 0)")
    seg.add_argument("--max-frames", type=int, default=None, metavar="N",
                     help="use at most N frames from --start (default: all)")
    seg.add_argument("--no-preview", action="store_true", help="skip preview.png")
    seg.add_argument("--quiet", action="store_true", help="no progress bars, errors only")
    seg.add_argument("--debug", action="store_true",
                     help="print full tracebacks of unexpected errors")
    return parser


def _unique_names(inputs: list[str]) -> list[str]:
    """Output folder name per input: the file stem or folder name, made unique."""
    names, seen = [], {}
    for raw in inputs:
        path = Path(raw)
        base = (path.name if path.is_dir() else path.stem) or "input"
        count = seen.get(base, 0)
        seen[base] = count + 1
        names.append(base if count == 0 else f"{base}_{count + 1}")
    return names


def _segment_one(path: str, name: str, args: argparse.Namespace, config: UNLCConfig) -> Path:
    from tqdm import tqdm

    from . import pipeline
    from .output import ResultWriter, contact_sheet

    timer = pipeline.StageTimer()
    plan = pipeline.SourcePlan()
    began = time.perf_counter()
    bar = None

    def on_stage(stage: str) -> None:
        nonlocal bar
        if args.quiet:
            return
        if bar is None and plan.shots:
            from .shots import shot_frames

            total = sum(len(f) for s, e in plan.shots if (f := shot_frames(s, e, config))
                        is not None)
            bar = tqdm(total=total, desc=name, unit="frame", leave=True, dynamic_ncols=True)
        if bar is not None:
            bar.set_postfix_str(stage)
        else:
            print(f"{name}: {stage}", file=sys.stderr)

    writer = None
    try:
        results = pipeline.iter_segment(path, config, start=args.start, max_frames=args.max_frames,
                                        timer=timer, plan=plan, on_stage=on_stage,
                                        previews_per_shot=0 if args.no_preview else 4)
        shots, tiles = [], []
        for shot in results:
            if writer is None:
                args.out.mkdir(parents=True, exist_ok=True)
                writer = ResultWriter(args.out, name)
            with timer("write"):
                for k, index in enumerate(shot.frame_indices):
                    writer.write_mask(int(index), shot.source_mask(k))
            tiles += [(f"frame {i}", tile) for i, tile in shot.previews]
            shots.append(shot.summary())
            if bar is not None:
                bar.update(len(shot.frame_indices))
        if bar is not None:
            bar.close()
        processed = [i for s in shots for i in s["frames"]]
        info = plan.info
        report = {
            "input": str(path),
            "name": name,
            "fastunlc_version": __version__,
            "source": {
                "kind": info.kind, "width": info.width, "height": info.height,
                "fps": info.fps, "frame_count_claimed": info.frame_count,
                "first_frame": plan.first_frame, "frames_read": plan.frames_read,
                "decode_note": plan.decode_note,
            },
            "working_size": {"width": plan.working_size[1], "height": plan.working_size[0]},
            "flow": config.flow,
            "shots": shots,
            "processed_frames": processed,
            "seconds": {k: round(v, 3) for k, v in timer.seconds.items()}
            | {"total": round(time.perf_counter() - began, 3)},
            "seconds_per_processed_frame": round((time.perf_counter() - began)
                                                 / max(1, len(processed)), 4),
            "peak_memory_mb": round(pipeline.peak_memory_mb(), 1),
            "config": config.to_dict(),
        }
        if not processed:
            report["note"] = "no shot had at least min_shot frames: no masks were written"
        if tiles and not args.no_preview:
            writer.write_preview(contact_sheet(tiles))
        writer.write_report(report)
        return writer.commit()
    except BaseException:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.discard()
        raise


def _run_segment(args: argparse.Namespace) -> int:
    config = UNLCConfig(flow=args.flow)
    failures = 0
    names = _unique_names(args.inputs)
    for path, name in zip(args.inputs, names, strict=True):
        try:
            final = _segment_one(path, name, args, config)
        except FastUNLCError as err:
            failures += 1
            print(f"error: {err}", file=sys.stderr)
            continue
        except OSError as err:  # disk full, permissions: the user's to fix
            failures += 1
            print(f"error: {path}: {err.strerror or err}", file=sys.stderr)
            continue
        except Exception as err:
            failures += 1
            print(f"error: {path}: internal error ({type(err).__name__}: {err}); "
                  "rerun with --debug for the traceback", file=sys.stderr)
            if args.debug:
                traceback.print_exc()
            continue
        if not args.quiet:
            print(f"{path}: masks in {final}", file=sys.stderr)
    if failures and len(args.inputs) > 1:
        print(f"{failures} of {len(args.inputs)} inputs failed", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fastunlc`` command; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.ERROR if args.quiet else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    try:
        if args.start < 0 or (args.max_frames is not None and args.max_frames < 1):
            parser.error("--start must be >= 0 and --max-frames >= 1")
        return _run_segment(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
