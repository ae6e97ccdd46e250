"""Fine-tune the trunk for semantic segmentation as FCN-32s and score it on PASCAL VOC
2011 val (Pathak et al., CVPR 2017, section 6, Figure 9): mean IoU over the 21 classes.

Network: the trunk's conv1 ... conv5, fc6 made a 6x6 convolution and fc7 a 1x1 one (the
same weights), dropout after each, a new 1x1 score layer to 21 classes, and a fixed
bilinear upsampling x32 back to the image's pixels; the input is padded by 100 px of the
mean colour (FCN's pad 100), and each score cell is placed at the centre of the 227-px
window it sees, so no crop offset is needed.

Data: VOC 2011 segmentation train plus SBD train, less the images of VOC 2011 val (the
test set); without --sbd, VOC 2011 train alone (1,112 images; SBD adds several thousand).
Void pixels (255) are ignored in training and scoring.

Recipe (the defaults, FCN-AlexNet's solver in FCN's reference code): whole images at
full resolution, no augmentation; per-image mean cross-entropy over labelled pixels,
averaged over 20 images an iteration; SGD, momentum 0.9, weight decay 5e-4, fixed lr
1e-4, 100,000 iterations. --freeze LAYER keeps the trunk up to and including LAYER
fixed (none: everything trains). Metrics: mean IoU, pixel accuracy, mean accuracy and
frequency-weighted IoU from the confusion matrix over all val pixels, as FCN's
score.py computes them.

Examples:

    python eval/segmentation.py --voc /data/VOCdevkit --sbd /data/benchmark_RELEASE \\
        --weights runs/yfcc --freeze none --out runs/seg-yfcc
    python eval/segmentation.py --voc /data/VOCdevkit --weights random --out runs/seg-rand

RUN gets config.json, checkpoint.pt (every --checkpoint-every iterations; --resume
continues from it with the same options), results.json (metrics, one row per class)
and results.csv.
"""

import argparse
import json
import sys

from fastunlc.errors import FastUNLCError
from fastunlc.evaluation.finetune import add_schedule_arguments, schedule_from_args
from fastunlc.evaluation.runs import add_run_arguments, add_transfer_arguments
from fastunlc.evaluation.segmentation import SCHEDULE, run_segmentation


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voc", required=True, metavar="VOCDEVKIT",
                        help="the VOCdevkit folder holding VOC2011/ (segmentation train, val)")
    parser.add_argument("--sbd", metavar="SBD_DIR",
                        help="SBD's benchmark_RELEASE (or its dataset/) folder; without it "
                             "VOC 2011 train alone")
    add_transfer_arguments(parser)
    add_schedule_arguments(parser, SCHEDULE)
    add_run_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    try:
        results = run_segmentation(
            args.voc, args.sbd, args.weights, args.freeze, args.out,
            schedule=schedule_from_args(args, SCHEDULE), resume=args.resume,
            device=args.device, workers=args.workers, checkpoint_every=args.checkpoint_every,
            progress=not args.quiet, label=args.label,
            keep_checkpoint=args.keep_checkpoint)
    except (FastUNLCError, ValueError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    print(json.dumps(results["metrics"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
