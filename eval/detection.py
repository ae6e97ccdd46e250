"""Transfer to detection: Fast R-CNN-style training of the AlexNet trunk on PASCAL VOC
(Pathak et al., CVPR 2017, section 6.1: Table 1, Figures 8 and 10), on torchvision's
FasterRCNN.

Protocol (the defaults): backbone conv1-conv5 at stride 16, RPN anchors 64-512 px ×
ratios 0.5/1/2, RoI max pooling 6×6 into the trunk's fc6 and fc7, a new 21-way
predictor; training shorter sides drawn from 480/576/688/864/1200 (longer side ≤ 2000),
horizontal flips, difficult objects dropped, 2 images × 64 RoIs per step with 25%
foreground, SGD momentum 0.9, weight decay 5e-4, biases at 2× lr, lr 0.001 (the paper's
set: 0.001, 0.002, 0.003) ×0.1 after 3/4 of the iterations; testing at the same five
scales, merged by per-class NMS 0.3, 100 boxes per image. Layers up to --freeze keep
their weights (and BatchNorm statistics). Scored with the VOC protocol: per-class AP and
mAP both as VOC 2007's 11-point AP and as the VOC 2010+ area AP, difficult objects
ignored. --year 2012 trains on VOC 2012 train and tests on val (the paper's Table 1);
--year 2007 trains on trainval and tests on test.

Sanity anchor: an ImageNet AlexNet reaches about 56-57% mAP on VOC 2007 with Fast R-CNN.

Examples:

    python eval/detection.py --voc /data/VOCdevkit --year 2007 --weights runs/yfcc \\
        --freeze conv5 --device cuda --out runs/det-yfcc-conv5
    python eval/detection.py --voc /data/VOCdevkit --year 2012 --weights random \\
        --freeze none --images 150 --seed 1 --device cuda --out runs/det-random-150
    python eval/detection.py ... --out runs/det-yfcc-conv5 --resume   # after a stop

The run folder gets config.json, checkpoint.pt (every --checkpoint-every iterations and
at the end of training), results.csv (per-class AP) and results.json (config, metrics
map_voc07 and map_area, rows), which eval/table.py collates.
"""

import argparse
import json
import sys
from pathlib import Path

from fastunlc.errors import FastUNLCError
from fastunlc.evaluation.detection import (
    LEARNING_RATES,
    MAX_SIZE,
    SCALES,
    SPLITS,
    DetectionConfig,
    run_detection,
)
from fastunlc.evaluation.runs import add_run_arguments, add_transfer_arguments
from fastunlc.evaluation.trunk import RANDOM


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voc", required=True, metavar="VOCDEVKIT",
                        help="the VOCdevkit folder holding VOC<year>/")
    parser.add_argument("--year", required=True, choices=list(SPLITS))
    add_transfer_arguments(parser, freeze=None)
    parser.add_argument("--images", type=int, metavar="N",
                        help="train on N images of the split drawn with --seed (low-shot)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the image pick, the order, the flips and the new layers")
    parser.add_argument("--iterations", type=int, default=40000, metavar="N")
    parser.add_argument("--lr", type=float, default=LEARNING_RATES[0],
                        help="base learning rate (the paper's: 0.001, 0.002, 0.003)")
    parser.add_argument("--batch-size", type=int, default=2, help="images per step")
    parser.add_argument("--rois-per-image", type=int, default=64)
    parser.add_argument("--scales", type=int, nargs="+", default=list(SCALES), metavar="PX",
                        help="training shorter sides, one drawn per image")
    parser.add_argument("--test-scales", type=int, nargs="+", default=None, metavar="PX",
                        help="test shorter sides whose detections are merged (default: "
                             "--scales)")
    parser.add_argument("--max-size", type=int, default=MAX_SIZE, metavar="PX",
                        help="cap on the longer side")
    parser.add_argument("--train-split", help="override the year's training split")
    parser.add_argument("--test-split", help="override the year's test split")
    add_run_arguments(parser, device="cpu")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    weights = args.weights if args.weights == RANDOM else str(Path(args.weights).resolve())
    try:
        config = DetectionConfig(
            voc=str(Path(args.voc).resolve()), year=args.year, weights=weights,
            freeze=args.freeze, train_split=args.train_split, test_split=args.test_split,
            images=args.images, seed=args.seed, lr=args.lr, iterations=args.iterations,
            batch_size=args.batch_size, scales=tuple(args.scales),
            test_scales=tuple(args.test_scales or args.scales), max_size=args.max_size,
            rois_per_image=args.rois_per_image, label=args.label)
        results = run_detection(config, args.out, device=args.device, workers=args.workers,
                                checkpoint_every=args.checkpoint_every, resume=args.resume,
                                keep_checkpoint=args.keep_checkpoint,
                                progress=not args.quiet)
    except (FastUNLCError, ValueError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    print(json.dumps(results["metrics"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
