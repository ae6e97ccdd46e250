"""Mask quality against human masks: J (region IoU) and F (boundary F-measure) means,
recalls and decays, computed as the DAVIS 2017 toolkit computes them (paper, section 5).

Recipe: the predictions are ``fastunlc segment``'s output (uNLC's masks, or the
ConvNet's written in the same layout: PRED/SEQ/masks/00042.png), soft masks thresholded
at 0.7; the human masks are a DAVIS, FBMS or SegTrack v2 folder in its own layout
(found by itself unless --layout says). Multi-object annotations are merged into one
foreground. All annotated frames are scored (--skip-ends drops each sequence's first
and last, as the toolkit's semi-supervised task does); DAVIS's void pixels are left out
(--void background counts them as background). A frame without a predicted mask
scores as an empty mask and is counted; sequences without predictions are listed and
not scored. Tolerance of F: ceil(0.008 x image diagonal) pixels (--bound-th).

Examples:

    fastunlc segment DAVIS/JPEGImages/480p/* --out masks/davis
    python eval/masks.py --pred masks/davis --gt DAVIS --split val --out runs/davis
    python eval/masks.py --pred masks/fbms --gt FBMS/Testset --out runs/fbms
    python eval/masks.py --pred masks/st --gt SegTrackv2 --sequences bird_of_paradise,bmx \\
        --out runs/segtrack

RUN gets config.json, results.json (metrics and one row per sequence) and results.csv
(the rows); a RUN that holds a run already is refused.
"""

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from fastunlc.errors import FastUNLCError
from fastunlc.evaluation.masks import LAYOUTS, VOID_MODES, detect_layout, evaluate_masks
from fastunlc.evaluation.runs import CONFIG, RunFolderError, start_run, write_results


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pred", required=True, metavar="DIR",
                        help="predicted masks in fastunlc segment's layout (SEQ/masks/*.png)")
    parser.add_argument("--gt", required=True, metavar="DIR",
                        help="human masks: a DAVIS, FBMS or SegTrack v2 folder")
    parser.add_argument("--out", required=True, metavar="RUN", help="the run folder")
    parser.add_argument("--layout", choices=LAYOUTS, help="--gt's layout (default: detected)")
    parser.add_argument("--threshold", type=float, default=0.7,
                        help="foreground is value/255 > THRESHOLD (default 0.7)")
    parser.add_argument("--bound-th", type=float, default=0.008,
                        help="F's tolerance: a fraction of the image diagonal (< 1) or "
                             "pixels (>= 1; default 0.008)")
    parser.add_argument("--sequences", metavar="A,B",
                        help="evaluate only these sequences (comma-separated)")
    parser.add_argument("--split", metavar="NAME",
                        help="DAVIS only: the sequences of ImageSets/2017/NAME.txt "
                             "(or YEAR/NAME)")
    parser.add_argument("--skip-ends", action="store_true",
                        help="leave out each sequence's first and last annotated frame")
    parser.add_argument("--void", choices=VOID_MODES, default="exclude",
                        help="DAVIS's void pixels: left out of J and F (default) or "
                             "counted as background")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    run = Path(args.out)
    bar = None

    def progress(row: dict, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="sequences", unit="seq", disable=args.quiet)
        bar.set_postfix_str(row["sequence"])
        bar.update()

    try:
        # Refused before any work; the folder is written only once the scores exist, so
        # that a failed evaluation leaves nothing behind to refuse the next one.
        if (run / CONFIG).is_file():
            raise RunFolderError(run, "holds a run already; choose another --out")
        layout = args.layout or detect_layout(args.gt)
        sequences = [s for s in (args.sequences or "").split(",") if s] or None
        config = {"pred": str(Path(args.pred).resolve()), "gt": str(Path(args.gt).resolve()),
                  "layout": layout, "threshold": args.threshold, "bound_th": args.bound_th,
                  "sequences": sequences, "split": args.split, "skip_ends": args.skip_ends,
                  "void": args.void}
        started = time.perf_counter()
        try:
            metrics, rows = evaluate_masks(
                args.pred, args.gt, layout, args.threshold, args.bound_th,
                sequences=sequences, split=args.split, skip_ends=args.skip_ends,
                void=args.void, on_sequence=progress)
        finally:
            if bar is not None:
                bar.close()
        write_results(start_run(run, config, resume=False), "masks", config, metrics, rows,
                      time.perf_counter() - started)
    except (FastUNLCError, ValueError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    annotated = metrics["sequences"] + len(metrics["missing_sequences"])
    print(f"J&F {metrics['J&F_mean']:.3f}  J {metrics['J_mean']:.3f}  "
          f"F {metrics['F_mean']:.3f}  ({metrics['sequences']} of {annotated} sequences, "
          f"{metrics['frames']} frames, {metrics['missing_frames']} without a mask) "
          f"-> {run / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
